"""Stream verification IP for ``amaranth.lib.stream`` ports: a testbench
harness, sources, sinks, a protocol checker and a scoreboard.

An Amaranth stream named ``i`` appears in Verilog as ``i__valid``,
``i__ready`` and ``i__payload``; the payload's layout comes from the
component's signature through :func:`sim.env.ports`, never from the
testbench.

:class:`TB` is built once per DUT, in the spirit of cocotbext-axi's tests: it
starts the clock, makes a :class:`StreamSource` for every ``In`` stream and a
:class:`StreamSink` plus a :class:`ProtocolChecker` for every ``Out`` stream
of the signature, drives every input idle during :meth:`TB.reset` (which may
come in the middle of traffic) and, in :meth:`TB.finish`, fails on a missing,
wrong or unexpected beat on any sink and on any protocol violation.

Idle cycles and back-pressure come from pause generators (any iterator of
booleans, ``True`` = pause this cycle): :func:`random_pause` for a seeded
probability, ``itertools.cycle([...])`` for a fixed pattern.

Handshakes are sampled in the ``ReadOnly`` phase just before the clock edge
that completes them, which Icarus and Verilator agree on; inputs are driven
right after the edge. A source never drops ``valid`` before its beat is taken
and drives a random payload while ``valid`` is low, so a design that reads
the payload without ``valid`` fails.
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from typing import Any, Callable, Iterable, Iterator, Sequence

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

from sim import env
from sim.ports import Port, Stream, flat

__all__ = ["TB", "StreamSource", "StreamSink", "ProtocolChecker", "Scoreboard", "ANY", "random_pause",
           "cycle_pause", "check_timing", "reset_under_traffic"]


def random_pause(probability: float, rng: random.Random) -> Iterator[bool] | None:
    """Pause with ``probability`` each cycle (``None``: never pause)."""
    if probability <= 0:
        return None

    def gen():
        while True:
            yield rng.random() < probability

    return gen()


def cycle_pause(pattern: Sequence[int]) -> Iterator[bool]:
    """A fixed pause pattern repeated forever (e.g. ``[0, 0, 1]``: every third cycle)."""
    return itertools.cycle(bool(p) for p in pattern)


class _Pausable:
    _pause: Iterator[bool] | None = None

    def set_pause_generator(self, generator: Iterable[bool] | None) -> None:
        self._pause = iter(generator) if generator is not None else None

    def clear_pause_generator(self) -> None:
        self._pause = None

    def _paused(self) -> bool:
        return bool(next(self._pause)) if self._pause is not None else False


class StreamSource(_Pausable):
    """Drives an ``In`` stream of the DUT with queued beats.

    ``send()`` takes payload values (``dict`` for a struct, a sequence for an
    array, an int otherwise) and packs them with the stream's layout.
    ``accepted`` holds the cycle index of every accepted beat since the last
    reset.
    """

    def __init__(self, tb: "TB", stream: Stream, rng: random.Random):
        self.tb = tb
        self.stream = stream
        self.name = stream.member
        self.packer = stream.payload
        self.valid = getattr(tb.dut, stream.valid)
        self.ready = getattr(tb.dut, stream.ready)
        self.payload = getattr(tb.dut, stream.payload_name)
        self.rng = rng
        self.queue: deque = deque()
        self.accepted: list[int] = []
        self.sent = 0
        self._current = None  # the beat on the bus, held until accepted
        self.valid.value = 0
        self.payload.value = self.packer.random(rng)
        self._task = cocotb.start_soon(self._run())

    def encode(self, item) -> int:
        return self.packer.pack(**item) if isinstance(item, dict) else self.packer.pack(item)

    def send(self, items: Iterable[Any]) -> None:
        words = [self.encode(x) for x in items]
        self.sent += len(words)
        self.queue.extend(words)

    def send_raw(self, words: Iterable[int]) -> None:
        """Queue already packed words (garbage in padding fields, for instance)."""
        words = [int(w) for w in words]
        self.sent += len(words)
        self.queue.extend(words)

    def flush(self) -> None:
        self.queue.clear()
        self._current = None
        self.accepted = []
        self.sent = 0

    @property
    def idle_now(self) -> bool:
        return not self.queue and self._current is None

    async def _run(self):
        while True:
            await RisingEdge(self.tb.clk)
            if self.tb.in_reset:
                self._current = None
            elif self._current is None and self.queue and not self._paused():
                self._current = self.queue.popleft()
            if self._current is not None:
                self.payload.value = self._current
                self.valid.value = 1
            else:
                self.valid.value = 0
                self.payload.value = self.packer.random(self.rng)
            await ReadOnly()
            if self._current is not None and int(self.ready.value):
                self.accepted.append(self.tb.cycle)
                self._current = None

    async def wait_drained(self, timeout: int = 1_000_000):
        """Wait until every queued beat has been accepted."""
        for _ in range(timeout):
            if self.idle_now:
                return
            await RisingEdge(self.tb.clk)
        raise AssertionError(f"{self.name}: source still holds {len(self.queue)} beats after {timeout} cycles")


class StreamSink(_Pausable):
    """Consumes an ``Out`` stream of the DUT.

    Every beat is unpacked with the stream's layout into ``items`` with its
    cycle index in ``cycles``; ``callback`` sees each one. ``expect()``
    queues the beats the sink must receive, checked in order by
    :meth:`check` (and by :meth:`TB.finish`).
    """

    def __init__(self, tb: "TB", stream: Stream, rng: random.Random):
        self.tb = tb
        self.stream = stream
        self.name = stream.member
        self.packer = stream.payload
        self.valid = getattr(tb.dut, stream.valid)
        self.ready = getattr(tb.dut, stream.ready)
        self.payload = getattr(tb.dut, stream.payload_name)
        self.rng = rng
        self.callback: Callable[[Any], None] | None = None
        self.decode: Callable[[Any], Any] | None = None  # applied after unpacking
        self.items: list = []
        self.cycles: list[int] = []
        self.expected: list = []
        self.ready.value = 0
        self._task = cocotb.start_soon(self._run())

    def expect(self, items: Iterable[Any]) -> None:
        self.expected.extend(items)

    def clear(self) -> None:
        self.items = []
        self.cycles = []
        self.expected = []

    async def _run(self):
        while True:
            await RisingEdge(self.tb.clk)
            ready = not self.tb.in_reset and not self._paused()
            self.ready.value = int(ready)
            await ReadOnly()
            if ready and int(self.valid.value):
                item = self.packer.unpack(int(self.payload.value))
                if self.decode is not None:
                    item = self.decode(item)
                self.items.append(item)
                self.cycles.append(self.tb.cycle)
                if self.callback:
                    self.callback(item)

    async def wait_for(self, count: int, timeout: int = 1_000_000):
        """Wait until ``count`` beats arrived (fails after ``timeout`` cycles)."""
        for _ in range(timeout):
            if len(self.items) >= count:
                return
            await RisingEdge(self.tb.clk)
        raise AssertionError(f"{self.name}: sink got {len(self.items)} of {count} beats after {timeout} cycles")

    def check(self, fmt: Callable[[Any], str] | None = None) -> None:
        Scoreboard(f"{self.tb.label}.{self.name}", self.expected, fmt=fmt).check(self.items)


class ProtocolChecker:
    """Watches an ``Out`` stream of the DUT every cycle: once ``valid`` is high,
    it stays high and the payload stays unchanged until the beat is taken
    (``ready`` high). A violation names the port and the cycle; it fails the
    test at once and again in :meth:`TB.finish`. Reset cycles are exempt."""

    def __init__(self, tb: "TB", stream: Stream):
        self.tb = tb
        self.name = stream.member
        self.valid = getattr(tb.dut, stream.valid)
        self.ready = getattr(tb.dut, stream.ready)
        self.payload = getattr(tb.dut, stream.payload_name)
        self.violations: list[str] = []
        self.beats = 0
        self.stalls = 0
        self._task = cocotb.start_soon(self._run())

    async def _run(self):
        pending = None  # (cycle offered, payload) of a beat offered but not taken
        while True:
            await RisingEdge(self.tb.clk)
            await ReadOnly()
            if self.tb.in_reset or int(self.tb.dut.rst.value):
                pending = None
                continue
            valid = int(self.valid.value)
            payload = int(self.payload.value) if valid else None
            cycle = self.tb.cycle
            if pending is not None:
                since, held = pending
                error = None
                if not valid:
                    error = f"valid dropped at cycle {cycle} before the beat offered at cycle {since} was taken"
                elif payload != held:
                    error = (f"payload changed at cycle {cycle} while stalled (offered at cycle {since}): "
                             f"0x{held:x} -> 0x{payload:x}")
                if error:
                    message = f"{self.tb.label}.{self.name}: protocol violation: {error}"
                    self.violations.append(message)
                    raise AssertionError(message)
            if valid and not int(self.ready.value):
                self.stalls += 1
                pending = pending if pending is not None else (cycle, payload)
            else:
                self.beats += valid
                pending = None


class TB:
    """Clock, reset, sources, sinks and protocol checkers for one DUT.

    Every ``In`` stream of the signature becomes a :class:`StreamSource` and
    every ``Out`` stream a :class:`StreamSink` with a
    :class:`ProtocolChecker`, reachable as ``tb.sources[name]`` /
    ``tb.sinks[name]`` and as attributes ``tb.<name>``. ``idle`` and
    ``backpressure`` set seeded random pause generators on every source /
    sink. Plain input ports are driven to ``idle_values`` (default 0) during
    reset. A DUT's testbench subclasses this class for its side ports.
    """

    def __init__(self, dut, *, idle: float = 0.0, backpressure: float = 0.0, rng: random.Random | None = None,
                 period_ns: int = 10, idle_values: dict | None = None, label: str | None = None):
        self.dut = dut
        self.period = period_ns
        self.clk = dut.clk
        self.label = label or env.unit()
        self.rng = rng or random.Random(env.seed())
        self.ports = env.ports()
        self.in_reset = False
        self.idle_values = dict(idle_values or {})
        self.sources: dict[str, StreamSource] = {}
        self.sinks: dict[str, StreamSink] = {}
        self.checkers: dict[str, ProtocolChecker] = {}
        self.inputs: dict[str, Port] = {}
        cocotb.start_soon(Clock(dut.clk, period_ns, unit="ns", impl="gpi").start())
        for p in flat(self.ports):
            if isinstance(p, Stream):
                if p.dir == "in":
                    self.sources[p.member] = StreamSource(self, p, self.rng)
                else:
                    self.sinks[p.member] = StreamSink(self, p, self.rng)
                    self.checkers[p.member] = ProtocolChecker(self, p)
            elif p.dir == "in" and p.name not in ("clk", "rst"):
                self.inputs[p.name] = p
        for name, obj in {**self.sources, **self.sinks}.items():
            if not hasattr(type(self), name) and name not in self.__dict__:
                setattr(self, name, obj)
        self.set_idle(idle)
        self.set_backpressure(backpressure)

    # -- configuration
    def _pauses(self, spec):
        """A pause generator from a probability, a pattern (list/tuple, repeated)
        or a factory returning a generator."""
        if callable(spec):
            return spec()
        if isinstance(spec, (list, tuple)):
            return cycle_pause(spec)
        return random_pause(float(spec), self.rng)

    def set_idle(self, idle) -> None:
        """Idle cycles on every source (see :meth:`_pauses` for ``idle``)."""
        for src in self.sources.values():
            src.set_pause_generator(self._pauses(idle))

    def set_backpressure(self, backpressure) -> None:
        """Back-pressure on every sink (see :meth:`_pauses`)."""
        for sink in self.sinks.values():
            sink.set_pause_generator(self._pauses(backpressure))

    # -- time
    @property
    def cycle(self) -> int:
        """Index of the current clock cycle (rising edges since time 0)."""
        return int(get_sim_time(unit="ns")) // self.period

    async def cycles(self, n: int):
        await ClockCycles(self.clk, n)

    # -- reset
    async def reset(self, cycles: int = 3):
        """Hold ``rst`` for ``cycles`` edges with every input idle: sources drop
        their queues (``valid`` low, random payload), sinks hold ``ready`` low,
        plain inputs go to their idle values; sinks forget what they received
        and expected. Safe in the middle of traffic."""
        self.in_reset = True
        for src in self.sources.values():
            src.flush()
            src.valid.value = 0
        for sink in self.sinks.values():
            sink.clear()
            sink.ready.value = 0
        for name in self.inputs:
            getattr(self.dut, name).value = self.idle_values.get(name, 0)
        self.dut.rst.value = 1
        await ClockCycles(self.clk, cycles)
        self.dut.rst.value = 0
        self.in_reset = False
        await RisingEdge(self.clk)

    # -- end of test
    async def drain(self, timeout: int = 1_000_000):
        """Wait until every source is empty and every sink got what it expects."""
        for _ in range(timeout):
            if all(s.idle_now for s in self.sources.values()) and \
                    all(len(k.items) >= len(k.expected) for k in self.sinks.values()):
                return
            await RisingEdge(self.clk)
        short = {n: f"{len(k.items)}/{len(k.expected)}" for n, k in self.sinks.items()
                 if len(k.items) < len(k.expected)}
        full = {n: len(s.queue) for n, s in self.sources.items() if not s.idle_now}
        raise AssertionError(f"{self.label}: after {timeout} cycles sinks short {short}, sources holding {full}")

    async def finish(self, timeout: int = 1_000_000, quiet: int = 20):
        """Drain, wait ``quiet`` more cycles (an extra beat would show up), then
        check every sink against its expectations and every protocol checker."""
        await self.drain(timeout)
        await self.cycles(quiet)
        self.check()

    def check(self) -> None:
        for sink in self.sinks.values():
            sink.check()
        violations = [v for c in self.checkers.values() for v in c.violations]
        assert not violations, "\n".join(violations)


class _Any:
    def __repr__(self):
        return "ANY"


ANY = _Any()
"""Matches any received beat (for sinks whose content a test checks itself)."""


class Scoreboard:
    """In-order comparison of received against expected items.

    ``check()`` fails on the first mismatch (with its index), on missing items
    and on leftover ones, so nothing lost, duplicated or reordered passes.
    """

    def __init__(self, name: str, expected: Iterable[Any] = (), *, fmt: Callable[[Any], str] | None = None):
        self.name = name
        self.expected = list(expected)
        self.fmt = fmt or _fmt

    def expect(self, item: Any) -> None:
        self.expected.append(item)

    def check(self, received: Sequence[Any]) -> None:
        errors = []
        for index, (got, want) in enumerate(zip(received, self.expected)):
            if not _equal(got, want):
                errors.append(f"  beat {index}: got {self.fmt(got)}, expected {self.fmt(want)}")
                if len(errors) >= 8:
                    break
        if errors:
            raise AssertionError(f"{self.name}: mismatches (first {len(errors)}):\n" + "\n".join(errors))
        if len(received) < len(self.expected):
            raise AssertionError(f"{self.name}: {len(self.expected) - len(received)} of "
                                 f"{len(self.expected)} expected beats missing")
        if len(received) > len(self.expected):
            raise AssertionError(f"{self.name}: {len(received) - len(self.expected)} unexpected extra "
                                 f"beats, first {self.fmt(received[len(self.expected)])}")


def _fmt(item: Any) -> str:
    if isinstance(item, np.ndarray):
        return str(item.tolist())
    if isinstance(item, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in item.items()) + "}"
    if isinstance(item, list):
        return "[" + ", ".join(_fmt(v) for v in item) + "]"
    return repr(item)


def _equal(a, b) -> bool:
    if a is ANY or b is ANY:
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


def check_timing(name: str, inputs: Sequence[int], outputs: Sequence[int], *, latency: int | None = None,
                 input_ii: int | None = None, output_ii: int | None = None) -> None:
    """Assert the documented timing: ``outputs[n] - inputs[n] == latency``
    (cycle of each output beat against the cycle of the input beat it answers),
    and a constant spacing ``input_ii`` / ``output_ii`` between consecutive
    accepted input / output beats."""
    assert len(inputs) and len(outputs), f"{name}: no beats to time"
    if latency is not None:
        lat = [o - i for o, i in zip(outputs, inputs)]
        bad = [(n, v) for n, v in enumerate(lat) if v != latency]
        assert not bad, f"{name}: latency {sorted(set(lat))} (first off at beat {bad[0][0]}), documented {latency}"
    for what, cyc, ii in (("input", inputs, input_ii), ("output", outputs, output_ii)):
        if ii is not None:
            gaps = np.diff(np.asarray(cyc))
            bad = np.flatnonzero(gaps != ii)
            assert bad.size == 0, (f"{name}: {what} beats {int(bad[0])}->{int(bad[0]) + 1} are {int(gaps[bad[0]])} "
                                   f"cycles apart, documented II = {ii}")


async def reset_under_traffic(tb: TB, transaction, *, fraction: float = 0.5, timeout: int = 100_000):
    """Reset in the middle of a transaction, then run a complete one that must pass.

    ``transaction(tb)`` (a coroutine function) queues the beats of one
    complete, scoreboarded transaction on the sources and its expectations on
    the sinks. The first run is cut by :meth:`TB.reset` once ``fraction`` of
    the queued input beats were accepted and before every expected output
    arrived; after the reset the transaction is queued again from scratch and
    :meth:`TB.finish` checks it. Returns the cycle of the reset.
    """
    await transaction(tb)
    sent = sum(s.sent for s in tb.sources.values())
    assert sent, "the transaction queued no input beats"
    for _ in range(timeout):
        if sum(len(s.accepted) for s in tb.sources.values()) >= max(1, int(fraction * sent)):
            break
        await RisingEdge(tb.clk)
    else:
        raise AssertionError(f"{tb.label}: the transaction did not get under way in {timeout} cycles")
    done = all(len(k.items) >= len(k.expected) for k in tb.sinks.values()) and \
        all(s.idle_now for s in tb.sources.values())
    assert not done, f"{tb.label}: the transaction finished before the reset; make it longer"
    cycle = tb.cycle
    await tb.reset()
    await transaction(tb)
    await tb.finish(timeout=timeout)
    return cycle
