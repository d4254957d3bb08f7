"""Testbench of ``ccu_compress`` against ``golden.radit.compress_fp16``.

Arguments (``sim.env.args()``): ``patterns`` ("all" for the 65,536 FP16
patterns, else a count of seeded random ones), ``idle`` and ``backpressure``
probabilities.
"""

import cocotb
import numpy as np

from golden.radit import compress_fp16
from sim import env
from sim.stream import TB, Scoreboard, StreamSink, StreamSource, lanes_pack, lanes_unpack


def _patterns(rng, spec, lanes):
    if spec == "all":
        values = rng.permutation(np.arange(1 << 16, dtype=np.uint32)).astype(np.uint16)
    else:
        values = rng.integers(0, 1 << 16, size=int(spec), dtype=np.uint32).astype(np.uint16)
    pad = (-len(values)) % lanes
    if pad:
        values = np.concatenate([values, values[:pad]])
    return values.reshape(-1, lanes)


async def _start(dut):
    tb = TB(dut)
    await tb.reset(idle=("i__valid", "o__ready"))
    return tb


@cocotb.test()
async def codes_match_golden(dut):
    """Every beat's codes equal the golden model, under random gaps and back-pressure."""
    p, a = env.params(), env.args()
    lanes = p["LANES"]
    rnd, rng = env.rngs()
    beats = _patterns(rng, a.get("patterns", 4096), lanes)
    expected = compress_fp16(beats, saturate=p["SATURATE"])
    tb = await _start(dut)
    sink = StreamSink(tb, "o", backpressure=a.get("backpressure", 0.0), rng=rnd,
                      decode=lambda w: lanes_unpack(w, 4, lanes))
    src = StreamSource(tb, "i", idle=a.get("idle", 0.0), rng=rnd)
    src.send(lanes_pack(b, 16) for b in beats)
    await sink.wait_for(len(beats), timeout=20 * len(beats) + 100)
    await tb.cycles(20)  # anything extra would show up here
    Scoreboard("ccu_compress.o", list(expected)).check(sink.items)


@cocotb.test()
async def initiation_interval_one(dut):
    """With the sink always ready, one beat enters and leaves every cycle."""
    p = env.params()
    lanes = p["LANES"]
    _, rng = env.rngs()
    beats = _patterns(rng, 64 * lanes, lanes)
    tb = await _start(dut)
    sink = StreamSink(tb, "o", decode=lambda w: lanes_unpack(w, 4, lanes))
    src = StreamSource(tb, "i")
    src.send(lanes_pack(b, 16) for b in beats)
    await sink.wait_for(len(beats), timeout=10 * len(beats))
    n = len(beats)
    assert np.all(np.diff(src.accepted) == 1), "input stalled with a ready sink"
    assert np.all(np.diff(sink.cycles) == 1), "output has bubbles with a ready sink"
    latency = sink.cycles[0] - src.accepted[0]
    total = sink.cycles[-1] - src.accepted[0] + 1
    assert latency == 1, f"latency {latency}, documented 1"
    assert total == n + latency, f"{n} beats took {total} cycles, model {n + latency}"
    Scoreboard("ccu_compress.o", list(compress_fp16(beats, saturate=p["SATURATE"]))).check(sink.items)


@cocotb.test()
async def throughput(dut):
    """Measure elements per cycle for the ``idle``/``backpressure`` in the arguments."""
    p, a = env.params(), env.args()
    lanes = p["LANES"]
    rnd, rng = env.rngs()
    beats = _patterns(rng, a.get("patterns", 1024 * lanes), lanes)
    tb = await _start(dut)
    sink = StreamSink(tb, "o", backpressure=a.get("backpressure", 0.0), rng=rnd)
    src = StreamSource(tb, "i", idle=a.get("idle", 0.0), rng=rnd)
    src.send(lanes_pack(b, 16) for b in beats)
    await sink.wait_for(len(beats), timeout=50 * len(beats))
    cycles = sink.cycles[-1] - src.accepted[0] + 1
    env.report(beats=len(beats), elements=int(beats.size), cycles=cycles,
               elements_per_cycle=beats.size / cycles)
