"""Testbench of ``orbis_min_tree`` against ``golden.orbis.min_tree``.

Arguments: ``vectors``, ``idle``, ``backpressure``.
"""

import cocotb
import numpy as np

from golden.orbis import min_tree
from sim import env
from sim.stream import TB, Packer, Scoreboard, StreamSink, StreamSource, lanes_pack


def _vectors(rng, d, w, count):
    top = (1 << w) - 1
    out = [np.zeros(d, int), np.full(d, top), np.arange(d)[::-1] % (top + 1)]
    tie = rng.integers(1, top + 1, size=d)
    tie[[0, -1]] = 0                       # minimum at both ends: the lower index wins
    out.append(tie)
    for _ in range(count):
        hi = top + 1 if rng.random() < 0.5 else 4   # narrow ranges give many ties
        out.append(rng.integers(0, hi, size=d))
    return out


async def _check(dut, vecs, idle, bp, rnd):
    p = env.params()
    d, w = p["NUM_DST"], p["DIST_WIDTH"]
    iw = max(1, (d - 1).bit_length())
    out = Packer([("dist", w), ("index", iw)])
    tb = TB(dut)
    await tb.reset(idle=("i__valid", "o__ready"))
    sink = StreamSink(tb, "o", backpressure=bp, rng=rnd, decode=out.unpack)
    src = StreamSource(tb, "i", idle=idle, rng=rnd)
    src.send(lanes_pack(v, w) for v in vecs)
    await sink.wait_for(len(vecs), timeout=20 * len(vecs) + 200)
    await tb.cycles(10)
    vals, idx = min_tree(np.array(vecs))
    Scoreboard("orbis_min_tree.o", [{"dist": int(v), "index": int(i)} for v, i in zip(vals, idx)]).check(sink.items)
    return src, sink


@cocotb.test()
async def matches_golden(dut):
    """Random and tied distance vectors under random gaps and back-pressure."""
    p, a = env.params(), env.args()
    rnd, rng = env.rngs()
    vecs = _vectors(rng, p["NUM_DST"], p["DIST_WIDTH"], a.get("vectors", 400))
    await _check(dut, vecs, a.get("idle", 0.2), a.get("backpressure", 0.3), rnd)


@cocotb.test()
async def latency_and_ii(dut):
    """Ideal streams: one result per cycle, latency ⌈log2 D⌉."""
    p = env.params()
    rnd, rng = env.rngs(1)
    vecs = _vectors(rng, p["NUM_DST"], p["DIST_WIDTH"], 60)
    src, sink = await _check(dut, vecs, 0.0, 0.0, rnd)
    lat = max(0, (p["NUM_DST"] - 1).bit_length())
    assert np.all(np.diff(src.accepted) == 1) and np.all(np.diff(sink.cycles) == 1), "not II = 1"
    assert sink.cycles[0] - src.accepted[0] == lat, f"latency {sink.cycles[0] - src.accepted[0]}, documented {lat}"
