"""Scratchpad and accumulator memories of the accelerator tops, on
``amaranth.lib.memory`` (docs/SPEC.md "GEMM core").

Both keep their storage as one :class:`~amaranth.lib.memory.Memory`, so the
area flow prices it as an SRAM macro (:mod:`synth.sram`) instead of flops.
Read ports are synchronous with an enable: a read issued in cycle ``t`` (``en``
high) returns its row in cycle ``t + 1`` and the row stays on ``data`` while
``en`` is low, so a read port is itself a stall-able pipeline register.
"""

import re

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .fp import fp32_add
from .params import check_choice, check_int
from .stream import register

__all__ = ["ReadPort", "WritePort", "Scratchpad", "Accumulator", "compact_memory_init"]


def ReadPort(depth, width):
    """Signature of a read port, seen from its user: ``addr``, ``en`` out, ``data`` in."""
    return wiring.Signature({"addr": Out(range(depth)), "en": Out(1), "data": In(width)})


def WritePort(depth, width):
    """Signature of a write port, seen from its user: ``addr``, ``data``, ``en`` out."""
    return wiring.Signature({"addr": Out(range(depth)), "data": Out(width), "en": Out(1)})


class Scratchpad(wiring.Component):
    """A ``depth x width`` memory with one write port and ``read_ports`` read ports.

    Parameters
    ----------
    depth : int
        Rows (>= 2).
    width : int
        Bits per row (>= 1).
    read_ports : int
        Number of read ports (default 1).

    Members
    -------
    w : ``In(WritePort(depth, width))``
        Writes ``data`` at ``addr`` at the clock edge where ``en`` is high.
    r : ``In(ReadPort(depth, width)).array(read_ports)``
        ``data`` is the row read at the last edge where ``en`` was high;
        transparent: a read of the row being written returns the new row.

    Latency: reads 1 cycle; one write and ``read_ports`` reads per cycle.
    Implements docs/SPEC.md "GEMM core" (input and weight scratchpads).
    """

    def __init__(self, *, depth=1024, width=128, read_ports=1):
        self._depth = check_int("depth", depth, minimum=2)
        self._width = check_int("width", width)
        self._read_ports = check_int("read_ports", read_ports, maximum=4)
        super().__init__({
            "w": In(WritePort(depth, width)),
            "r": In(ReadPort(depth, width)).array(read_ports),
        })

    @property
    def depth(self):
        return self._depth

    @property
    def width(self):
        return self._width

    @property
    def read_ports(self):
        return self._read_ports

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=self._width, depth=self._depth, init=[])
        wp = mem.write_port()
        m.d.comb += [wp.addr.eq(self.w.addr), wp.data.eq(self.w.data), wp.en.eq(self.w.en)]
        for port in self.r:
            rp = mem.read_port(transparent_for=(wp,))
            m.d.comb += [rp.addr.eq(port.addr), rp.en.eq(port.en), port.data.eq(rp.data)]
        return m


class Accumulator(wiring.Component):
    """INT32 (or binary32) accumulator memory: ``depth`` rows of ``lanes`` sums,
    updated by read-modify-write at one row per cycle.

    A row presented on ``acc`` (``valid``) either replaces the stored row
    (``first``: the first K tile of an output block) or is added to it lane by
    lane: with two's-complement wrap at ``lane_bits`` (``arith="int"``), or
    as binary32 patterns with round to nearest even (``arith="fp32"``,
    :func:`hdl.common.fp.fp32_add`; docs/SPEC.md "FP16"). The read happens in the
    cycle the row is presented, the write one cycle later; the read port is
    transparent, so a row that updates the address written in the same cycle
    (back-to-back updates of one row) sees the newer sum.

    Parameters
    ----------
    depth : int
        Rows (>= 2).
    lanes : int
        Sums per row (>= 1).
    lane_bits : int
        Bits per sum (default 32; 32 with ``arith="fp32"``).
    read_ports : int
        Plain read ports besides the update path (default 2).
    arith : str
        ``"int"`` (default, wrapping integer sums) or ``"fp32"`` (binary32 sums).

    Members
    -------
    acc : ``In(Signature({"valid", "addr", "first", "data"}))``
        One update per cycle where ``valid`` is high (no back-pressure).
    w : ``In(WritePort(depth, lanes * lane_bits))``
        Plain writes (loading a bias row); ignored in a cycle where an update writes.
    r : ``In(ReadPort(depth, lanes * lane_bits)).array(read_ports)``
        Plain reads; port 0 shares the memory port with the update path and
        must not be used while updates run.

    Latency: an update is stored 2 cycles after it is presented (read, then
    write); II = 1. Implements docs/SPEC.md "GEMM core" (accumulator).
    """

    def __init__(self, *, depth=1024, lanes=16, lane_bits=32, read_ports=2, arith="int"):
        self._depth = check_int("depth", depth, minimum=2)
        self._lanes = check_int("lanes", lanes)
        self._lane_bits = check_int("lane_bits", lane_bits, minimum=2)
        self._read_ports = check_int("read_ports", read_ports, maximum=4)
        self._arith = check_choice("arith", arith, ("int", "fp32"))
        if arith == "fp32" and lane_bits != 32:
            raise ValueError(f"lane_bits must be 32 with arith='fp32', not {lane_bits}")
        width = lanes * lane_bits
        super().__init__({
            "acc": In(wiring.Signature({"valid": Out(1), "addr": Out(range(depth)), "first": Out(1),
                                        "data": Out(width)})),
            "w": In(WritePort(depth, width)),
            "r": In(ReadPort(depth, width)).array(read_ports),
        })

    @property
    def depth(self):
        return self._depth

    @property
    def lanes(self):
        return self._lanes

    @property
    def lane_bits(self):
        return self._lane_bits

    @property
    def read_ports(self):
        return self._read_ports

    @property
    def arith(self):
        return self._arith

    def elaborate(self, platform):
        m = Module()
        width = self._lanes * self._lane_bits
        m.submodules.store = mem = Scratchpad(depth=self._depth, width=width, read_ports=self._read_ports)
        upd = self.acc
        # Stage 1: the read of the row to update is in flight.
        pend = register(m, upd.valid, name="upd_valid")
        addr = register(m, upd.addr, name="upd_addr")
        first = register(m, upd.first, name="upd_first")
        row = register(m, upd.data, name="upd_row")
        old = mem.r[0].data
        lane = self._lane_bits
        summed = Signal(width, name="upd_sum")
        if self._arith == "fp32":
            m.d.comb += summed.eq(Cat(fp32_add(m, old.word_select(i, lane), row.word_select(i, lane),
                                               name=f"upd_add{i}") for i in range(self._lanes)))
        else:
            m.d.comb += summed.eq(Cat((old.word_select(i, lane) + row.word_select(i, lane))[:lane]
                                      for i in range(self._lanes)))
        m.d.comb += [
            mem.r[0].addr.eq(Mux(upd.valid, upd.addr, self.r[0].addr)),
            mem.r[0].en.eq(upd.valid | self.r[0].en),
            self.r[0].data.eq(old),
            mem.w.addr.eq(Mux(pend, addr, self.w.addr)),
            mem.w.data.eq(Mux(pend, Mux(first, row, summed), self.w.data)),
            mem.w.en.eq(pend | self.w.en),
        ]
        for mine, theirs in zip(mem.r[1:], self.r[1:]):
            m.d.comb += [mine.addr.eq(theirs.addr), mine.en.eq(theirs.en), theirs.data.eq(mine.data)]
        return m


_ZERO_INIT = re.compile(r"^(\s*)initial begin\n((?:\s*(\w+)\[\d+\] = \d+'[hd]0+;\n)+)\s*end\n", re.M)


def compact_memory_init(verilog_text):
    """Rewrite Amaranth's all-zero memory initialisation (one assignment per
    row: megabytes for a deep scratchpad) as one loop per memory."""
    def loop(match):
        indent, body, name = match.group(1), match.group(2), match.group(3)
        rows = body.count("\n")
        if any(f"{name}[" not in line for line in body.strip().splitlines()):
            return match.group(0)
        var = f"{name}_init_row"
        return (f"{indent}integer {var};\n{indent}initial begin\n"
                f"{indent}  for ({var} = 0; {var} < {rows}; {var} = {var} + 1) {name}[{var}] = 0;\n{indent}end\n")
    return _ZERO_INIT.sub(loop, verilog_text)
