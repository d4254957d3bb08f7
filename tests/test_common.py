"""Shared building blocks in hdl/common, checked in Amaranth's own simulator
(they are pieces of units, not units; the units' co-simulation covers them in
Verilog)."""

import random

import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hdl.common.arith import adder_tree, popcount, tree_latency
from hdl.common.stream import SkidBuffer, stall_pipeline


def _simulate(dut, bench, *, deadline=100_000):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run_until(deadline * 1e-6)


async def _produce(ctx, port, items, rnd, idle):
    for item in items:
        while rnd.random() < idle:
            ctx.set(port.valid, 0)
            await ctx.tick()
        ctx.set(port.valid, 1)
        ctx.set(port.payload, item)
        await ctx.tick().until(port.ready)
    ctx.set(port.valid, 0)


async def _consume(ctx, port, count, rnd, backpressure, out, cycles=None):
    n = 0
    while len(out) < count:
        ready = rnd.random() >= backpressure
        ctx.set(port.ready, ready)
        _, _, valid, payload = await ctx.tick().sample(port.valid, port.payload)
        n += 1
        if ready and valid:
            out.append(payload)
            if cycles is not None:
                cycles.append(n)
        if n > 100_000:
            raise AssertionError("consumer timed out")


@pytest.mark.parametrize("idle, bp", [(0.0, 0.0), (0.3, 0.5), (0.0, 0.9), (0.8, 0.1)])
def test_skid_buffer_keeps_order_under_backpressure(idle, bp):
    dut = SkidBuffer(8)
    rnd = random.Random(7)
    items = [rnd.randrange(256) for _ in range(400)]
    got = []

    async def bench(ctx):
        # Run producer and consumer in one testbench, interleaved cycle by cycle.
        pending = list(items)
        cur = None
        cycles = 0
        while len(got) < len(items):
            if cur is None and pending and rnd.random() >= idle:
                cur = pending.pop(0)
            ctx.set(dut.i.valid, cur is not None)
            if cur is not None:
                ctx.set(dut.i.payload, cur)
            ready = rnd.random() >= bp
            ctx.set(dut.o.ready, ready)
            _, _, i_ready, o_valid, o_payload = await ctx.tick().sample(dut.i.ready, dut.o.valid, dut.o.payload)
            if cur is not None and i_ready:
                cur = None
            if ready and o_valid:
                got.append(o_payload)
            cycles += 1
            assert cycles < 50_000
        if idle == 0 and bp == 0:
            assert cycles <= len(items) + 2, "skid buffer is not full throughput"

    _simulate(dut, bench)
    assert got == items


class _Pipe(wiring.Component):
    """+3 through stall_pipeline: three +1 stages, or one combinational +3 (depth 0)."""

    i: In(stream.Signature(8))
    o: Out(stream.Signature(8))

    def __init__(self, depth=3):
        self.depth = depth
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        ce = stall_pipeline(m, self.i.valid, self.i.ready, self.o.valid, self.o.ready, self.depth)
        if self.depth == 0:
            m.d.comb += self.o.payload.eq(self.i.payload + 3)
            m.d.sync += Signal(name="clocked").eq(1)  # a clock domain for the testbench
            return m
        a = Signal(8)
        b = Signal(8)
        with m.If(ce):
            m.d.sync += [a.eq(self.i.payload + 1), b.eq(a + 1), self.o.payload.eq(b + 1)]
        return m


@pytest.mark.parametrize("depth", [0, 3])
@pytest.mark.parametrize("idle, bp", [(0.0, 0.0), (0.4, 0.6)])
def test_stall_pipeline_loses_nothing(idle, bp, depth):
    dut = _Pipe(depth)
    rnd = random.Random(3)
    items = [rnd.randrange(253) for _ in range(300)]
    got = []
    cycles = []

    async def producer(ctx):
        await _produce(ctx, dut.i, items, rnd, idle)

    async def consumer(ctx):
        await _consume(ctx, dut.o, len(items), rnd, bp, got, cycles)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run_until(100_000e-6)
    assert got == [(x + 3) & 0xFF for x in items]
    if idle == 0 and bp == 0:
        assert cycles[-1] - cycles[0] == len(items) - 1  # II = 1


@pytest.mark.parametrize("n, every", [(1, 1), (2, None), (5, 1), (8, 2), (13, 3), (16, 1)])
def test_adder_tree_sums_signed_terms_with_documented_latency(n, every):
    m = Module()
    xs = [Signal(signed(8), name=f"x{i}") for i in range(n)]
    total = adder_tree(xs, m=m, register_every=every)
    out = Signal(signed(16))
    m.d.comb += out.eq(total)
    m.d.sync += Signal(name="clocked").eq(1)  # a clock domain even for combinational trees
    lat = tree_latency(n, every)
    rnd = random.Random(n)
    vectors = [[rnd.choice([-128, 127, rnd.randrange(-128, 128)]) for _ in range(n)] for _ in range(60)]
    vectors += [[-128] * n, [127] * n]

    async def bench(ctx):
        seen = []
        for k in range(len(vectors) + lat):
            if k < len(vectors):
                for x, v in zip(xs, vectors[k]):
                    ctx.set(x, v)
            if k >= lat:
                seen.append(ctx.get(out))
            await ctx.tick()
        assert seen == [sum(v) for v in vectors]

    _simulate(m, bench)


def test_adder_tree_needs_module_when_pipelined():
    with pytest.raises(ValueError):
        adder_tree([Signal(4), Signal(4)], register_every=1)


def test_popcount_exhaustive_10_bits():
    m = Module()
    x = Signal(10)
    y = Signal(4)
    m.d.comb += y.eq(popcount(x))

    async def bench(ctx):
        for v in range(1 << 10):
            ctx.set(x, v)
            assert ctx.get(y) == bin(v).count("1")

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


def test_check_int_bool_choice_messages():
    import numpy as np

    from hdl.common.params import check_bool, check_choice, check_int

    assert check_int("lanes", np.int16(4)) == 4 and type(check_int("lanes", np.int16(4))) is int
    assert check_int("frac", 0, minimum=0) == 0
    with pytest.raises(TypeError, match="lanes must be an integer, not True"):
        check_int("lanes", True)
    with pytest.raises(TypeError, match="lanes must be an integer"):
        check_int("lanes", 4.0)
    with pytest.raises(ValueError, match="lanes must be >= 1 and <= 8, not 9"):
        check_int("lanes", 9, maximum=8)
    with pytest.raises(ValueError, match="size must be a power of two, not 6"):
        check_int("size", 6, power_of_two=True)
    assert check_bool("saturate", False) is False
    with pytest.raises(TypeError, match="saturate must be a bool, not 1"):
        check_bool("saturate", 1)
    assert check_choice("reference", "computed", ("previous", "computed")) == "computed"
    with pytest.raises(TypeError, match="reference must be a string"):
        check_choice("reference", 0, ("previous", "computed"))
    with pytest.raises(ValueError, match="reference must be one of 'previous', 'computed', not 'x'"):
        check_choice("reference", "x", ("previous", "computed"))


def test_delay_line_lags_by_its_length():
    from hdl.common.stream import delay

    m = Module()
    x = Signal(4)
    ce = Signal()
    y = delay(m, x, 3, ce=ce, name="x")
    assert delay(m, x, 0, name="none") is not None

    async def bench(ctx):
        seen = []
        for t in range(12):
            ctx.set(x, t)
            ctx.set(ce, t % 4 != 3)  # every fourth cycle holds the line
            await ctx.tick()
            seen.append(ctx.get(y))
        # Values loaded on enabled cycles only, three enabled cycles late.
        loaded = [t for t in range(12) if t % 4 != 3]
        assert seen[-1] == loaded[-3]

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_run_status_checks_its_counters():
    from amaranth.hdl import Module, Signal

    from hdl.common.run_status import run_status

    m = Module()
    with pytest.raises(ValueError, match="kept"):
        run_status(m, start=Signal(), overflow=Signal(), overflow_code=4, counters=("cycles",), kept=("stall",))
    with pytest.raises(TypeError, match="counter_bits"):
        run_status(m, start=Signal(), overflow=Signal(), overflow_code=4, counters=("cycles",), counter_bits=1.5)
    with pytest.raises(ValueError, match="counter_bits"):
        run_status(m, start=Signal(), overflow=Signal(), overflow_code=4, counters=("cycles",), counter_bits=65)
    rs = run_status(m, start=Signal(), overflow=Signal(), overflow_code=4, counters=("cycles", "stall"),
                    counter_bits=64)
    assert set(rs.ctr) == {"cycles", "stall"} and len(rs.code) == 4 and len(rs.ctr["cycles"]) == 64


def test_two_tops_in_one_design():
    """Each top's soft-reset domain is local to it, so a design may hold two."""
    from amaranth.back import rtlil
    from amaranth.hdl import Module

    from hdl.accel.gemm_accelerator import GemmAccelerator

    m = Module()
    small = dict(rows=2, cols=2, a_depth=4, w_depth=4, acc_depth=4, queue_depth=2, stream_bytes=2)
    m.submodules.a = GemmAccelerator(**small)
    m.submodules.b = GemmAccelerator(**small)
    assert "module" in rtlil.convert(m, ports=[])
