"""Testbench of ``orbis_dau`` against ``golden.orbis.dau_distance``.

Arguments: ``pairs`` (random token pairs after the corner ones), ``idle``,
``backpressure``. Pairs have 1..⌈CHANNELS/CH_LANES⌉ chunks.
"""

import cocotb
import numpy as np

from golden.orbis import dau_distance
from sim import env
from sim.stream import TB, check_timing, reset_under_traffic


class DauTB(TB):
    """``i`` chunks (src/dst codes, weights, last) → ``o`` one distance per pair."""

    def __init__(self, dut, **kw):
        super().__init__(dut, **kw)
        self.lanes = self.i.packer["src"].length

    def queue(self, pairs):
        lanes = self.lanes
        for s, d, w in pairs:
            k = len(s) // lanes
            self.i.send({"src": s[j * lanes:(j + 1) * lanes], "dst": d[j * lanes:(j + 1) * lanes],
                         "weight": w[j * lanes:(j + 1) * lanes], "last": int(j == k - 1)} for j in range(k))
        self.o.expect(int(dau_distance(s, d, w)) for s, d, w in pairs)


def _pairs(rng, tb, count):
    lanes, c = tb.lanes, env.params()["CHANNELS"]
    cb = -(-c // lanes)
    lo, hi = tb.i.packer["src"].elem.min, tb.i.packer["src"].elem.max
    wmax = tb.i.packer["weight"].elem.max
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
    a = env.args()
    rnd, rng = env.rngs()
    tb = DauTB(dut, idle=a.get("idle", 0.0), backpressure=a.get("backpressure", 0.0), rng=rnd)
    await tb.reset()
    tb.queue(_pairs(rng, tb, a.get("pairs", 200)))
    await tb.finish(timeout=30 * tb.i.sent + 500)


@cocotb.test()
async def latency_and_ii(dut):
    """Single-chunk pairs with ideal streams: one distance per cycle, latency 4 + ⌈log2 L⌉."""
    rnd, rng = env.rngs(1)
    tb = DauTB(dut, rng=rnd)
    await tb.reset()
    src = tb.i.packer["src"].elem
    pairs = [(rng.integers(src.min, src.max + 1, tb.lanes), rng.integers(src.min, src.max + 1, tb.lanes),
              rng.integers(0, tb.i.packer["weight"].elem.max + 1, tb.lanes)) for _ in range(64)]
    tb.queue(pairs)
    await tb.finish(timeout=1000)
    latency = 4 + max(0, (tb.lanes - 1).bit_length())  # docstring
    check_timing("orbis_dau", tb.i.accepted, tb.o.cycles, latency=latency, input_ii=1, output_ii=1)


@cocotb.test()
async def reset_mid_pair(dut):
    """Reset with a pair part-accumulated and distances in flight, then pairs that must pass."""
    rnd, rng = env.rngs(2)
    tb = DauTB(dut, idle=0.2, backpressure=0.3, rng=rnd)
    await tb.reset()
    pairs = _pairs(rng, tb, 20)

    async def transaction(tb):
        tb.queue(pairs)

    await reset_under_traffic(tb, transaction)
