"""The stream VIP as it was before the harness of sim/stream.py: kept only for
the FP16 testbenches (tb_fp_units, tb_systolic_pe_fp16, tb_systolic_array_fp16,
tb_orbis_qe_fp16) until they move to the harness and sim.ports layouts."""

from __future__ import annotations

import random
from collections import deque
from typing import Any, Callable, Iterable, Sequence

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

__all__ = ["TB", "StreamSource", "StreamSink", "Scoreboard", "Packer", "lanes_pack", "lanes_unpack"]


class TB:
    """Clock, reset and a cycle counter for one DUT with ``clk``/``rst``."""

    def __init__(self, dut, period_ns: int = 10):
        self.dut = dut
        self.period = period_ns
        self.clk = dut.clk
        cocotb.start_soon(Clock(dut.clk, period_ns, unit="ns").start())

    @property
    def cycle(self) -> int:
        """Index of the current clock cycle (rising edges since time 0)."""
        return int(get_sim_time(unit="ns")) // self.period

    async def reset(self, cycles: int = 3, *, idle: Sequence[str] = ()):
        """Hold ``rst`` for ``cycles`` edges; signals in ``idle`` are driven 0 first."""
        for name in idle:
            getattr(self.dut, name).value = 0
        self.dut.rst.value = 1
        await ClockCycles(self.clk, cycles)
        self.dut.rst.value = 0
        await RisingEdge(self.clk)

    async def cycles(self, n: int):
        await ClockCycles(self.clk, n)


class StreamSource:
    """Drives the stream ``prefix`` of ``dut`` with queued payloads.

    ``idle`` is the probability of inserting an idle cycle before a beat.
    ``accepted`` holds the cycle index of every accepted beat.
    """

    def __init__(self, tb: TB, prefix: str, *, idle: float = 0.0, rng: random.Random | None = None):
        self.tb = tb
        self.valid = getattr(tb.dut, f"{prefix}__valid")
        self.ready = getattr(tb.dut, f"{prefix}__ready")
        self.payload = getattr(tb.dut, f"{prefix}__payload")
        self.idle = idle
        self.rng = rng or random.Random(0)
        self.queue: deque = deque()
        self.accepted: list[int] = []
        self._current = None  # the beat on the bus, held until accepted
        self.valid.value = 0
        self._task = None

    def send(self, items: Iterable[int]) -> None:
        self.queue.extend(int(x) for x in items)
        if self._task is None:
            self._task = cocotb.start_soon(self._run())

    @property
    def idle_now(self) -> bool:
        return not self.queue and self._current is None

    async def _run(self):
        while True:
            await RisingEdge(self.tb.clk)
            if self._current is None and self.queue and (self.idle <= 0 or self.rng.random() >= self.idle):
                self._current = self.queue.popleft()
            if self._current is not None:
                self.payload.value = self._current
                self.valid.value = 1
            else:
                self.valid.value = 0
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
        raise AssertionError(f"source still holds {len(self.queue)} beats after {timeout} cycles")


class StreamSink:
    """Consumes the stream ``prefix`` of ``dut`` with random back-pressure.

    ``backpressure`` is the probability of holding ``ready`` low in a cycle.
    Every beat is stored in ``items`` (as an int, or through ``decode``) with
    its cycle index in ``cycles``; ``callback`` sees each decoded beat.
    """

    def __init__(self, tb: TB, prefix: str, *, backpressure: float = 0.0,
                 rng: random.Random | None = None, decode: Callable[[int], Any] | None = None,
                 callback: Callable[[Any], None] | None = None):
        self.tb = tb
        self.valid = getattr(tb.dut, f"{prefix}__valid")
        self.ready = getattr(tb.dut, f"{prefix}__ready")
        self.payload = getattr(tb.dut, f"{prefix}__payload")
        self.backpressure = backpressure
        self.rng = rng or random.Random(1)
        self.decode = decode
        self.callback = callback
        self.items: list = []
        self.cycles: list[int] = []
        self.ready.value = 0
        self._task = cocotb.start_soon(self._run())

    async def _run(self):
        while True:
            await RisingEdge(self.tb.clk)
            ready = self.backpressure <= 0 or self.rng.random() >= self.backpressure
            self.ready.value = int(ready)
            await ReadOnly()
            if ready and int(self.valid.value):
                raw = int(self.payload.value)
                item = self.decode(raw) if self.decode else raw
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
        raise AssertionError(f"sink got {len(self.items)} of {count} beats after {timeout} cycles")


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
    return repr(item)


def _equal(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    return a == b


def lanes_pack(values: Sequence[int], width: int) -> int:
    """Pack lane values (lane 0 in the LSBs) into one integer; negatives wrap."""
    mask = (1 << width) - 1
    out = 0
    for n, v in enumerate(values):
        out |= (int(v) & mask) << (n * width)
    return out


def lanes_unpack(word: int, width: int, count: int, *, signed: bool = False) -> np.ndarray:
    """Inverse of :func:`lanes_pack` as an int64 array."""
    mask = (1 << width) - 1
    vals = [(word >> (n * width)) & mask for n in range(count)]
    arr = np.array(vals, dtype=np.int64)
    if signed:
        arr = np.where(arr >= 1 << (width - 1), arr - (1 << width), arr)
    return arr


class Packer:
    """Packs and unpacks a struct payload given as ``(name, width[, signed])``
    fields in declaration order (first field in the LSBs).

    A field may be an array: ``(name, width, signed, count)``.
    """

    def __init__(self, fields: Sequence[tuple]):
        self.fields = []
        offset = 0
        for f in fields:
            name, width = f[0], f[1]
            signed = f[2] if len(f) > 2 else False
            count = f[3] if len(f) > 3 else None
            self.fields.append((name, width, signed, count, offset))
            offset += width * (count or 1)
        self.width = offset

    def pack(self, **values) -> int:
        word = 0
        for name, width, _signed, count, offset in self.fields:
            v = values.get(name, 0)
            if count is None:
                word |= (int(v) & ((1 << width) - 1)) << offset
            else:
                word |= lanes_pack(v, width) << offset
        return word

    def unpack(self, word: int) -> dict:
        out = {}
        for name, width, signed, count, offset in self.fields:
            if count is None:
                v = (word >> offset) & ((1 << width) - 1)
                if signed and v >= 1 << (width - 1):
                    v -= 1 << width
                out[name] = v
            else:
                out[name] = lanes_unpack(word >> offset, width, count, signed=signed)
        return out
