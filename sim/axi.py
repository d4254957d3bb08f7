"""AXI verification IP glue: a firmware-style register driver over a
:class:`~hdl.common.regmap.RegisterMap` and AXI4-Stream endpoints, all
cocotbext-axi underneath (``docs/SPEC.md``, "Host interface").

Port names come from Amaranth's flattening (``s_axil__awaddr``,
``s_axis__tdata``): every bus is found with ``bus_separator="__"``.

Simulation speed (read from cocotbext-axi 0.1.28's source and measured)
-----------------------------------------------------------------------
* An ``AxiStreamSource`` (and the AW/W/AR channel sources inside
  ``AxiLiteMaster``) with an empty queue sleeps on an event: no Python per
  clock cycle.
* An ``AxiStreamSink`` (and the B/R sinks of ``AxiLiteMaster``) sleeps while
  ``tvalid`` is low, woken by a value-change callback on ``tvalid``/``tready``;
  while the DUT holds ``tvalid`` high and the sink is paused it also sleeps.
* A pause generator (``set_pause_generator``) runs a coroutine that wakes on
  **every** clock edge for as long as it is installed, busy or idle. So does
  cocotb's ``ClockCycles`` and a Python clock.

Hence the rule these helpers follow: the clock is cocotb's C++ clock
(``Clock(..., impl="gpi")``, :func:`start_clock`); back-pressure generators are
installed only around a transfer (:meth:`Endpoint.pause` /
:meth:`Endpoint.quiet`, or the ``with endpoint.backpressure(...)`` block);
:meth:`Driver.wait_done` waits on a rising edge of ``irq`` (a value-change
callback) or polls with ``Timer`` (one wake per poll, not per cycle).

Measured on ``axi_shell_demo`` (Verilator, 2 shared cores under load, one
DELAY of 2,000,000 cycles, ``tb_axi_shell_demo.compute_speed``): with an
``AxiStreamSource``, an ``AxiStreamSink`` and an ``AxiLiteMaster`` attached
and quiet, about 137,000 cycles/s; with the two stream pause generators left
running, about 20,000 cycles/s.
"""

from __future__ import annotations

import contextlib
import random
from typing import Iterable, Sequence

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer
from cocotbext.axi import (AxiLiteBus, AxiLiteMaster, AxiResp, AxiStreamBus, AxiStreamFrame,
                           AxiStreamMonitor, AxiStreamSink, AxiStreamSource)

from hdl.common.regmap import CommandFormat, RegisterMap

__all__ = ["start_clock", "AxiError", "BusReset", "Driver", "Endpoint", "axis_source", "axis_sink",
           "axis_monitor", "random_pauses", "AxiStreamFrame", "HandshakeChecker"]


def start_clock(dut, period_ns: int = 10, name: str = "clk"):
    """Start the C++ (GPI) clock on ``dut.<name>``: no Python per cycle."""
    clk = getattr(dut, name)
    cocotb.start_soon(Clock(clk, period_ns, unit="ns", impl="gpi").start())
    return clk


class BusReset(Exception):
    """An access was flushed because the bus reset while it was in flight."""


class AxiError(Exception):
    """A register access answered SLVERR/DECERR."""

    def __init__(self, op: str, name: str, address: int, resp):
        super().__init__(f"{op} {name} at {address:#x} answered {AxiResp(int(resp)).name}")
        self.resp = AxiResp(int(resp))
        self.address = address


def random_pauses(probability: float, seed: int):
    """An endless pause generator: True (pause) with ``probability`` per cycle, seeded."""
    rng = random.Random(seed)
    while True:
        yield rng.random() < probability


class Endpoint:
    """A cocotbext-axi stream endpoint plus switchable, seeded back-pressure.

    ``ep.axis`` is the ``AxiStreamSource``/``Sink``/``Monitor``; attribute
    access falls through to it (``await ep.send(frame)``, ``await ep.recv()``).
    """

    def __init__(self, axis, seed: int = 0):
        self.axis = axis
        self._seed = seed
        self._uses = 0

    def __getattr__(self, name):
        return getattr(self.axis, name)

    def pause(self, probability: float, seed: int | None = None) -> None:
        """Install a random pause generator (idle cycles on a source,
        ``tready`` low on a sink). Costs one Python wake per clock cycle."""
        if probability <= 0:
            self.quiet()
            return
        self._uses += 1
        s = self._seed * 1000003 + self._uses if seed is None else seed
        self.axis.set_pause_generator(random_pauses(probability, s))

    def quiet(self) -> None:
        """Remove the pause generator: the endpoint then sleeps when idle."""
        self.axis.clear_pause_generator()
        self.axis.pause = False

    @contextlib.contextmanager
    def backpressure(self, probability: float, seed: int | None = None):
        """``with ep.backpressure(0.3): ...`` pauses randomly inside the block only."""
        self.pause(probability, seed)
        try:
            yield self
        finally:
            self.quiet()


def _clock(dut, clock):
    return clock if clock is not None else dut.clk


def _reset(dut, reset):
    if reset is not None:
        return reset
    return getattr(dut, "rst", None)


def axis_source(dut, prefix: str = "s_axis", *, clock=None, reset=None, pause: float = 0.0,
                seed: int = 0) -> Endpoint:
    """An ``AxiStreamSource`` driving ``<prefix>__t*``; ``pause`` > 0 installs
    seeded random idle cycles (see :class:`Endpoint`)."""
    bus = AxiStreamBus.from_prefix(dut, prefix, bus_separator="__")
    ep = Endpoint(AxiStreamSource(bus, _clock(dut, clock), _reset(dut, reset), reset_active_level=True), seed)
    ep.axis.log.setLevel("WARNING")
    ep.pause(pause)
    return ep


def axis_sink(dut, prefix: str = "m_axis", *, clock=None, reset=None, pause: float = 0.0,
              seed: int = 1) -> Endpoint:
    """An ``AxiStreamSink`` on ``<prefix>__t*``; ``pause`` > 0 holds ``tready``
    low at random (seeded)."""
    bus = AxiStreamBus.from_prefix(dut, prefix, bus_separator="__")
    ep = Endpoint(AxiStreamSink(bus, _clock(dut, clock), _reset(dut, reset), reset_active_level=True), seed)
    ep.axis.log.setLevel("WARNING")
    ep.pause(pause)
    return ep


def axis_monitor(dut, prefix: str, *, clock=None, reset=None) -> Endpoint:
    """A passive ``AxiStreamMonitor`` on ``<prefix>__t*``."""
    bus = AxiStreamBus.from_prefix(dut, prefix, bus_separator="__")
    ep = Endpoint(AxiStreamMonitor(bus, _clock(dut, clock), _reset(dut, reset), reset_active_level=True))
    ep.axis.log.setLevel("WARNING")
    return ep


class Driver:
    """Firmware-style access to a top through its AXI4-Lite port.

    Parameters
    ----------
    dut : cocotb handle
    regmap : RegisterMap
        Usually the unit's ``REGMAP`` (build it with the run's parameters).
    prefix : str
        The AXI4-Lite port (default ``s_axil``).
    clock, reset : cocotb handles
        Default ``dut.clk`` and ``dut.rst`` (active high).
    commands : CommandFormat, optional
        Enables :meth:`command` (pack and push by field name).
    names : dict, optional
        Registers and fields of the shell convention, overridable:
        ``control`` (fields ``start``, ``soft_reset``), ``status`` (``busy``,
        ``done``, ``error``, ``error_code``), ``irq_status`` (w1c, ``done``),
        ``cmd`` (command push), ``irq`` (the top's interrupt port).

    Every access raises :class:`AxiError` on a non-OKAY response unless
    ``check=False`` (then :meth:`write` / :meth:`read` return the response).
    """

    DEFAULT_NAMES = {"control": "control", "start": "start", "soft_reset": "soft_reset",
                     "status": "status", "done": "done", "busy": "busy", "error": "error",
                     "error_code": "error_code", "irq_status": "irq_status", "cmd": "cmd", "irq": "irq"}

    def __init__(self, dut, regmap: RegisterMap, prefix: str = "s_axil", *, clock=None, reset=None,
                 commands: CommandFormat | None = None, names: dict | None = None):
        if not isinstance(regmap, RegisterMap):
            raise TypeError(f"regmap must be a RegisterMap, not {regmap!r}")
        self.dut = dut
        self.regmap = regmap
        self.commands = commands
        self.clock = _clock(dut, clock)
        self.names = {**self.DEFAULT_NAMES, **(names or {})}
        bus = AxiLiteBus.from_prefix(dut, prefix, bus_separator="__")
        self.master = AxiLiteMaster(bus, self.clock, _reset(dut, reset), reset_active_level=True)
        self.master.write_if.log.setLevel("WARNING")
        self.master.read_if.log.setLevel("WARNING")

    # -- raw access --------------------------------------------------------
    async def write(self, address: int, value: int, *, strb: int = 0xF, check: bool = True, name: str = "") -> AxiResp:
        """Write the bytes of ``value`` that ``strb`` selects (contiguous) at word ``address``."""
        lanes = [b for b in range(4) if strb >> b & 1]
        if not lanes:
            raise ValueError("strb selects no byte")
        if lanes != list(range(lanes[0], lanes[-1] + 1)):
            raise ValueError(f"strb {strb:#x} is not contiguous (cocotbext-axi writes byte ranges)")
        data = int(value).to_bytes(4, "little")[lanes[0]:lanes[-1] + 1]
        res = await self.master.write(address + lanes[0], data)
        if res is None:
            raise BusReset(f"write {name or 'register'} at {address:#x} flushed by reset")
        resp = res.resp
        if check and resp != AxiResp.OKAY:
            raise AxiError("write", name or "register", address, resp)
        return resp

    async def read(self, address: int, *, check: bool = True, name: str = "") -> tuple[int, AxiResp]:
        r = await self.master.read(address, 4)
        if r is None:
            raise BusReset(f"read {name or 'register'} at {address:#x} flushed by reset")
        if check and r.resp != AxiResp.OKAY:
            raise AxiError("read", name or "register", address, r.resp)
        return int.from_bytes(r.data, "little"), r.resp

    # -- by name -----------------------------------------------------------
    async def write_reg(self, name: str, value: int, *, check: bool = True) -> AxiResp:
        reg = self.regmap[name]
        return await self.write(reg.offset, value, check=check, name=reg.name)

    async def read_reg(self, name: str, *, check: bool = True) -> int:
        reg = self.regmap[name]
        value, _ = await self.read(reg.offset, check=check, name=reg.name)
        return value

    async def read_field(self, reg: str, field: str) -> int:
        f = self.regmap[reg].field(field)
        return (await self.read_reg(reg) >> f.lsb) & ((1 << f.width) - 1)

    async def write_field(self, reg: str, field: str, value: int) -> None:
        """Set one field: read-modify-write on ``rw``; on ``wo``/``w1c`` the
        other fields are written 0 (no pulse, no clear)."""
        r = self.regmap[reg]
        f = r.field(field)
        if not 0 <= value < 1 << f.width:
            raise ValueError(f"{r.name}.{f.name} holds {f.width} bits, not {value}")
        word = value << f.lsb
        if r.access == "rw":
            word |= await self.read_reg(reg) & ~f.mask
        await self.write_reg(reg, word)

    def pack(self, reg: str, **fields) -> int:
        """The word of ``reg`` with the named fields set (others 0)."""
        r = self.regmap[reg]
        word = 0
        for name, value in fields.items():
            f = r.field(name)
            if not 0 <= value < 1 << f.width:
                raise ValueError(f"{r.name}.{f.name} holds {f.width} bits, not {value}")
            word |= value << f.lsb
        return word

    def unpack(self, reg: str, word: int) -> dict:
        return {f.name: (word >> f.lsb) & ((1 << f.width) - 1) for f in self.regmap[reg].fields}

    # -- shell convention --------------------------------------------------
    async def push_command(self, words: Sequence[int]) -> None:
        """Push one command's words to the command register, word 0 first."""
        for w in words:
            await self.write_reg(self.names["cmd"], int(w))

    async def command(self, **fields) -> list[int]:
        """Pack a command of ``commands`` by field name and push it."""
        if self.commands is None:
            raise ValueError("this Driver has no CommandFormat (pass commands=...)")
        words = self.commands.pack(**fields)
        await self.push_command(words)
        return words

    async def start(self) -> None:
        n = self.names
        await self.write_reg(n["control"], self.pack(n["control"], **{n["start"]: 1}))

    async def soft_reset(self) -> None:
        n = self.names
        await self.write_reg(n["control"], self.pack(n["control"], **{n["soft_reset"]: 1}))

    async def status(self) -> dict:
        return self.unpack(self.names["status"], await self.read_reg(self.names["status"]))

    async def wait_done(self, irq_signal=None, *, timeout_ns: int | None = None, poll_ns: int = 1000,
                        stop_on_error: bool = True) -> dict:
        """Wait until ``status.done`` (or ``status.error``, unless
        ``stop_on_error`` is False: for a top that keeps running past a bad
        command); return the status fields.

        With an interrupt port (``irq_signal``, else ``dut.<names["irq"]>`` if
        it exists, and ``irq_enable.done`` is set where the map has it) this
        awaits its rising edge: no Python runs while the top computes. On done it clears ``irq_status.done`` (w1c) when the map
        has it, leaving the other causes. Without one it polls the status register every ``poll_ns`` with a
        ``Timer``. ``timeout_ns`` raises ``TimeoutError``.
        """
        n = self.names
        irq = irq_signal if irq_signal is not None else getattr(self.dut, n["irq"], None)
        if irq is not None and irq_signal is None and "irq_enable" in self.regmap:
            # An interrupt the top will not raise: poll instead of waiting forever.
            en = self.regmap["irq_enable"]
            if any(f.name == n["done"] for f in en.fields) and not await self.read_field(en.name, n["done"]):
                irq = None
        deadline = None if timeout_ns is None else Timer(timeout_ns, "ns")
        while True:
            st = await self.status()
            if st.get(n["done"]) or (stop_on_error and st.get(n["error"])):
                break
            if irq is not None:
                await ReadOnly()
                if not int(irq.value):
                    edge = RisingEdge(irq)
                    got = await (First(edge, deadline) if deadline else edge)
                    if got is deadline:
                        raise TimeoutError(f"no irq within {timeout_ns} ns")
                await RisingEdge(self.clock)
            else:
                t = Timer(poll_ns, "ns")
                got = await (First(t, deadline) if deadline else t)
                if got is deadline:
                    raise TimeoutError(f"status.done not set within {timeout_ns} ns")
        if n["irq_status"] in self.regmap:
            r = self.regmap[n["irq_status"]]
            done = [f for f in r.fields if f.name == n["done"]]
            if r.access == "w1c" and done and st.get(n["done"]):
                # Only the done cause: an error cause stays for the caller to see.
                await self.write_reg(r.name, done[0].mask)
        return st


class HandshakeChecker:
    """Checks AXI's valid/ready rule on one channel: once ``valid`` is high
    without ``ready``, ``valid`` stays high and every payload signal stays
    put until the beat is taken. Counts beats and stalled cycles.

    Samples every clock edge in ``ReadOnly``: run it only around a transfer
    (:meth:`stop` ends it) because it wakes Python every cycle.
    """

    def __init__(self, clock, valid, ready, payload: Iterable, name: str):
        self.clock, self.valid, self.ready = clock, valid, ready
        self.payload = list(payload)
        self.name = name
        self.errors: list[str] = []
        self.beats = 0
        self.stalls = 0
        self._task = cocotb.start_soon(self._run())

    @classmethod
    def axis(cls, dut, prefix: str, clock=None):
        """A checker on the AXI4-Stream port ``prefix`` (``tdata``, ``tlast``, ``tuser`` held)."""
        payload = [getattr(dut, f"{prefix}__{n}") for n in ("tdata", "tlast", "tuser", "tkeep")
                   if hasattr(dut, f"{prefix}__{n}")]
        return cls(_clock(dut, clock), getattr(dut, f"{prefix}__tvalid"), getattr(dut, f"{prefix}__tready"),
                   payload, prefix)

    @classmethod
    def axil(cls, dut, prefix: str = "s_axil", clock=None) -> list["HandshakeChecker"]:
        """Checkers on the slave-driven AXI4-Lite channels B and R."""
        def sig(n):
            return getattr(dut, f"{prefix}__{n}")
        clk = _clock(dut, clock)
        return [cls(clk, sig("bvalid"), sig("bready"), [sig("bresp")], f"{prefix}.B"),
                cls(clk, sig("rvalid"), sig("rready"), [sig("rdata"), sig("rresp")], f"{prefix}.R")]

    async def _run(self):
        held = None
        edge = RisingEdge(self.clock)
        while True:
            await ReadOnly()
            v = int(self.valid.value)
            r = int(self.ready.value)
            now = tuple(int(p.value) for p in self.payload)
            if held is not None:
                if not v:
                    self.errors.append(f"{self.name}: valid dropped before ready")
                elif now != held:
                    self.errors.append(f"{self.name}: payload changed while stalled ({held} -> {now})")
            self.beats += v and r
            self.stalls += v and not r
            held = now if (v and not r) else None
            await edge

    def stop(self) -> None:
        self._task.cancel()

    def check(self) -> None:
        """Stop and raise on the first violations."""
        self.stop()
        if self.errors:
            raise AssertionError(f"{len(self.errors)} handshake violation(s): " + "; ".join(self.errors[:5]))
