"""Testbench of ``orbis_dau`` against ``golden.orbis.dau_distance``.

Arguments: ``pairs`` (random token pairs after the corner ones), ``idle``,
``backpressure``. Pairs have 1..⌈CHANNELS/CH_LANES⌉ chunks.
"""

import cocotb
import numpy as np

from golden.orbis import dau_distance
from sim import env
from sim.stream import TB, Packer, Scoreboard, StreamSink, StreamSource


def _pairs(rng, p, count):
    lanes, cw, ww, c = p["CH_LANES"], p["CODE_WIDTH"], p["WEIGHT_WIDTH"], p["CHANNELS"]
    cb = -(-c // lanes)
    lo, hi = -(1 << (cw - 1)), (1 << (cw - 1)) - 1
    wmax = (1 << ww) - 1
    out = []
    full = cb * lanes
    # corners: equal tokens, extreme differences at the largest weights, zero weights, ties
    q = rng.integers(lo, hi + 1, size=full)
    out.append((q, q.copy(), rng.integers(0, wmax + 1, size=full)))
    out.append((np.full(full, lo), np.full(full, hi), np.full(full, wmax)))
    out.append((np.full(full, hi), np.full(full, lo), np.full(full, wmax)))
    out.append((rng.integers(lo, hi + 1, size=full), rng.integers(lo, hi + 1, size=full), np.zeros(full, int)))
    out.append((np.full(lanes, lo), np.full(lanes, hi), np.full(lanes, wmax)))   # one chunk
    for _ in range(count):
        n = int(rng.integers(1, cb + 1)) * lanes
        out.append((rng.integers(lo, hi + 1, size=n), rng.integers(lo, hi + 1, size=n),
                    rng.integers(0, wmax + 1, size=n)))
    return out


@cocotb.test()
async def matches_golden(dut):
    """Every pair's distance equals the golden model under random gaps and back-pressure."""
    p, a = env.params(), env.args()
    rnd, rng = env.rngs()
    lanes, cw, ww = p["CH_LANES"], p["CODE_WIDTH"], p["WEIGHT_WIDTH"]
    packer = Packer([("src", cw, True, lanes), ("dst", cw, True, lanes), ("weight", ww, False, lanes), ("last", 1)])
    pairs = _pairs(rng, p, a.get("pairs", 200))
    tb = TB(dut)
    await tb.reset(idle=("i__valid", "o__ready"))
    sink = StreamSink(tb, "o", backpressure=a.get("backpressure", 0.0), rng=rnd)
    src = StreamSource(tb, "i", idle=a.get("idle", 0.0), rng=rnd)
    beats = []
    for s, d, w in pairs:
        k = len(s) // lanes
        for j in range(k):
            sl = slice(j * lanes, (j + 1) * lanes)
            beats.append(packer.pack(src=s[sl], dst=d[sl], weight=w[sl], last=int(j == k - 1)))
    want = [int(dau_distance(s, d, w)) for s, d, w in pairs]
    src.send(beats)
    await sink.wait_for(len(want), timeout=30 * len(beats) + 500)
    await tb.cycles(20)
    Scoreboard("orbis_dau.o", want).check(sink.items)


@cocotb.test()
async def latency_and_ii(dut):
    """Single-chunk pairs with ideal streams: one distance per cycle, latency 4 + ⌈log2 L⌉."""
    p = env.params()
    rnd, rng = env.rngs(1)
    lanes, cw, ww = p["CH_LANES"], p["CODE_WIDTH"], p["WEIGHT_WIDTH"]
    packer = Packer([("src", cw, True, lanes), ("dst", cw, True, lanes), ("weight", ww, False, lanes), ("last", 1)])
    lo, hi = -(1 << (cw - 1)), (1 << (cw - 1)) - 1
    pairs = [(rng.integers(lo, hi + 1, lanes), rng.integers(lo, hi + 1, lanes), rng.integers(0, 1 << ww, lanes))
             for _ in range(64)]
    tb = TB(dut)
    await tb.reset(idle=("i__valid", "o__ready"))
    sink = StreamSink(tb, "o")
    src = StreamSource(tb, "i")
    src.send(packer.pack(src=s, dst=d, weight=w, last=1) for s, d, w in pairs)
    await sink.wait_for(len(pairs), timeout=1000)
    latency = 4 + max(0, (lanes - 1).bit_length())
    assert np.all(np.diff(src.accepted) == 1) and np.all(np.diff(sink.cycles) == 1), "not II = 1"
    assert sink.cycles[0] - src.accepted[0] == latency, f"latency {sink.cycles[0] - src.accepted[0]}, documented {latency}"
    Scoreboard("orbis_dau.o", [int(dau_distance(s, d, w)) for s, d, w in pairs]).check(sink.items)
