"""Testbench of ``orbis_topk`` against ``golden.orbis.topk_smallest``.

Arguments: ``sets``, ``idle``, ``backpressure``.
"""

import cocotb
import numpy as np

from golden.orbis import bitonic_latency, topk_smallest
from sim import env
from sim.stream import TB, check_timing, reset_under_traffic


def _sets(rng, n, lw, count):
    top = (1 << lw) - 1
    full = (1 << n) - 1
    out = [
        (np.zeros(n, int), full, n),                          # all equal, k = max
        (np.full(n, top), full, n // 2),                      # largest losses
        (rng.integers(0, top + 1, n), 0, 3),                  # no real key: nothing out
        (rng.integers(0, top + 1, n), full, 0),               # k = 0
        (rng.integers(0, 3, n), (1 << (n - 3)) - 1, n),       # padded count, k > count
        (rng.integers(0, 3, n), full & 0b1010101010101010101, n // 2),
    ]
    for _ in range(count):
        hi = top + 1 if rng.random() < 0.5 else 3
        out.append((rng.integers(0, hi, n), int(rng.integers(0, full + 1)), int(rng.integers(0, n + 1))))
    return out


def _expected(sets, n):
    want = []
    for loss, valid, k in sets:
        mask = [(valid >> j) & 1 for j in range(n)]
        idx = topk_smallest(loss, k, mask)
        for j, i in enumerate(idx):
            want.append({"loss": int(loss[i]), "index": int(i), "last": int(j == len(idx) - 1)})
    return want


def _queue(tb, sets, n):
    tb.i.send({"loss": l, "valid": v, "k": k} for l, v, k in sets)
    tb.o.expect(_expected(sets, n))


@cocotb.test()
async def matches_golden(dut):
    """Random, tied and padded sets, k from 0 to SIZE, with gaps and back-pressure."""
    p, a = env.params(), env.args()
    rnd, rng = env.rngs()
    n, lw = p["SIZE"], p["LOSS_WIDTH"]
    tb = TB(dut, idle=a.get("idle", 0.0), backpressure=a.get("backpressure", 0.0), rng=rnd)
    await tb.reset()
    sets = _sets(rng, n, lw, a.get("sets", 150))
    _queue(tb, sets, n)
    await tb.finish(timeout=40 * len(tb.o.expected) + 1000, quiet=40)


@cocotb.test()
async def latency_and_throughput(dut):
    """Ideal streams: first key after bitonic latency + 2; back-to-back sets of k keys
    leave without a bubble (a set costs max(1, k) cycles)."""
    p = env.params()
    rnd, rng = env.rngs(1)
    n, lw = p["SIZE"], p["LOSS_WIDTH"]
    tb = TB(dut, rng=rnd)
    await tb.reset()
    full = (1 << n) - 1
    sets = [(rng.integers(0, 1 << lw, n), full, k) for k in (3, 1, n, 2, 1, 1)]
    _queue(tb, sets, n)
    await tb.finish(timeout=2000)
    lat = bitonic_latency(n, p["REGISTER_EVERY"]) + 2
    check_timing("orbis_topk", tb.i.accepted[:1], tb.o.cycles[:1], latency=lat)
    check_timing("orbis_topk", tb.i.accepted, tb.o.cycles, output_ii=1)


@cocotb.test()
async def reset_mid_sets(dut):
    """Reset with sets in the sorter and keys leaving, then sets that must pass."""
    p = env.params()
    rnd, rng = env.rngs(2)
    n, lw = p["SIZE"], p["LOSS_WIDTH"]
    tb = TB(dut, idle=0.2, backpressure=0.3, rng=rnd)
    await tb.reset()
    full = (1 << n) - 1
    sets = [(rng.integers(0, 1 << lw, n), full, int(k)) for k in rng.integers(1, n + 1, size=12)]

    async def transaction(tb):
        _queue(tb, sets, n)

    await reset_under_traffic(tb, transaction)
