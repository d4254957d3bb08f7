"""Testbench of ``orbis_min_tree`` against ``golden.orbis.min_tree``.

Arguments: ``vectors``, ``idle``, ``backpressure``.
"""

import cocotb
import numpy as np

from golden.orbis import min_tree
from sim import env
from sim.stream import TB, check_timing, reset_under_traffic


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
    tb = TB(dut, idle=idle, backpressure=bp, rng=rnd)
    await tb.reset()
    _queue(tb, vecs)
    await tb.finish(timeout=20 * len(vecs) + 200)
    return tb


def _queue(tb, vecs):
    tb.i.send(vecs)
    vals, idx = min_tree(np.array(vecs))
    tb.o.expect({"dist": int(v), "index": int(i)} for v, i in zip(vals, idx))


def _shape():
    i = env.ports()["i"].payload
    return i.length, i.elem.width


@cocotb.test()
async def matches_golden(dut):
    """Random and tied distance vectors under random gaps and back-pressure."""
    a = env.args()
    rnd, rng = env.rngs()
    vecs = _vectors(rng, *_shape(), a.get("vectors", 400))
    await _check(dut, vecs, a.get("idle", 0.2), a.get("backpressure", 0.3), rnd)


@cocotb.test()
async def latency_and_ii(dut):
    """Ideal streams: one result per cycle, latency ⌈log2 D⌉."""
    rnd, rng = env.rngs(1)
    d, w = _shape()
    tb = await _check(dut, _vectors(rng, d, w, 60), 0.0, 0.0, rnd)
    check_timing("orbis_min_tree", tb.i.accepted, tb.o.cycles, latency=max(0, (d - 1).bit_length()),
                 input_ii=1, output_ii=1)


@cocotb.test()
async def reset_mid_stream(dut):
    """Reset with vectors in the tree, then vectors that must pass."""
    rnd, rng = env.rngs(2)
    tb = TB(dut, idle=0.2, backpressure=0.3, rng=rnd)
    await tb.reset()
    vecs = _vectors(rng, *_shape(), 40)

    async def transaction(tb):
        _queue(tb, vecs)

    await reset_under_traffic(tb, transaction)
