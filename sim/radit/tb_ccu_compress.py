"""Testbench of ``ccu_compress`` against ``golden.radit.compress_fp16``.

Arguments (``sim.env.args()``): ``patterns`` ("all" for the 65,536 FP16
patterns, else a count of seeded random ones), ``idle`` and ``backpressure``
probabilities.
"""

import cocotb
import numpy as np

from golden.radit import compress_fp16
from sim import env
from sim.stream import TB, check_timing, reset_under_traffic

LATENCY = 1  # docstring: codes one cycle after the beat


class CompressTB(TB):
    """``i`` → ``o``; the lane count comes from the payload layout."""

    def __init__(self, dut, **kw):
        super().__init__(dut, **kw)
        self.lanes = self.i.packer.length

    def patterns(self, rng, spec):
        if spec == "all":
            values = rng.permutation(np.arange(1 << 16, dtype=np.uint32)).astype(np.uint16)
        else:
            values = rng.integers(0, 1 << 16, size=int(spec), dtype=np.uint32).astype(np.uint16)
        pad = (-len(values)) % self.lanes
        if pad:
            values = np.concatenate([values, values[:pad]])
        return values.reshape(-1, self.lanes)

    def queue(self, beats):
        self.i.send(beats)
        self.o.expect(compress_fp16(beats, saturate=env.params()["SATURATE"]))


async def _start(dut, idle=0.0, backpressure=0.0):
    tb = CompressTB(dut, idle=idle, backpressure=backpressure, rng=env.rngs()[0])
    await tb.reset()
    return tb


@cocotb.test()
async def codes_match_golden(dut):
    """Every beat's codes equal the golden model, under random gaps and back-pressure."""
    a = env.args()
    _, rng = env.rngs()
    tb = await _start(dut, a.get("idle", 0.0), a.get("backpressure", 0.0))
    beats = tb.patterns(rng, a.get("patterns", 4096))
    tb.queue(beats)
    await tb.finish(timeout=20 * len(beats) + 100)


@cocotb.test()
async def initiation_interval_one(dut):
    """With the sink always ready, one beat enters and leaves every cycle, latency 1."""
    _, rng = env.rngs()
    tb = await _start(dut)
    beats = tb.patterns(rng, 64 * tb.lanes)
    tb.queue(beats)
    await tb.finish(timeout=10 * len(beats))
    check_timing("ccu_compress", tb.i.accepted, tb.o.cycles, latency=LATENCY, input_ii=1, output_ii=1)


@cocotb.test()
async def throughput(dut):
    """Measure elements per cycle for the ``idle``/``backpressure`` in the
    arguments; with neither, assert the documented II = 1: LANES elements
    every cycle, no gap from the first output beat to the last."""
    a = env.args()
    _, rng = env.rngs()
    idle, bp = a.get("idle", 0.0), a.get("backpressure", 0.0)
    tb = await _start(dut, idle, bp)
    beats = tb.patterns(rng, a.get("patterns", 1024 * tb.lanes))
    tb.queue(beats)
    await tb.finish(timeout=50 * len(beats))
    cycles = tb.o.cycles[-1] - tb.i.accepted[0] + 1
    steady = tb.o.cycles[-1] - tb.o.cycles[0] + 1
    result = dict(beats=len(beats), elements=int(beats.size), cycles=cycles,
                  elements_per_cycle=beats.size / cycles, steady_elements_per_cycle=beats.size / steady)
    env.report(**result)
    if idle == 0 and bp == 0:
        check_timing("ccu_compress", tb.i.accepted, tb.o.cycles, latency=LATENCY, input_ii=1, output_ii=1)
        assert result["steady_elements_per_cycle"] == tb.lanes, \
            f"{result['steady_elements_per_cycle']} elements per cycle, documented {tb.lanes} (II = 1)"


@cocotb.test()
async def reset_mid_stream(dut):
    """Reset with beats in flight, then a complete stream that must pass
    (no state survives a reset: the unit has none beyond its pipeline)."""
    _, rng = env.rngs(5)
    tb = await _start(dut, 0.2, 0.3)
    beats = tb.patterns(rng, 40 * tb.lanes)

    async def transaction(tb):
        tb.queue(beats)

    await reset_under_traffic(tb, transaction)
