"""Testbench of ``systolic_array`` against ``golden.systolic`` (matmul, tiler,
cycle model).

Arguments (``sim.env.args()``): ``jobs``, a list of products run one after the
other on the same array, each a dict with

* ``m``, ``k``, ``n`` -- the product (M x K) @ (K x N), tiled by the golden
  tiler (K by ROWS, N by COLS, zero padding);
* ``values`` -- ``"random"`` (uniform, a quarter of the entries replaced by
  the extremes -2^(b-1) and 2^(b-1)-1), ``"min_min"`` (every activation and
  weight the most negative value: the largest positive sums) or ``"min_max"``
  (activations most negative, weights most positive: the largest negative sums);
* ``idle`` -- probability of a gap before each weight and activation beat;
* ``backpressure`` -- probability that the sink holds ``ready`` low;
* ``check_cycles`` -- assert that the job's cycle count (first weight beat
  taken to last result beat, both included) equals ``golden.systolic.cycles``
  (only meaningful with ``idle = backpressure = 0``).

Every result beat is checked in order (Scoreboard: nothing lost, duplicated or
reordered), the per-tile results are assembled into the full product and
compared with ``matmul(a, w)``, and the cycle counts are reported.
"""

import time

import cocotb
import numpy as np

from golden.systolic import assemble, cycles, matmul, tiles
from sim import env
from sim.stream import TB, reset_under_traffic


def operands(rng, job, in_bits, w_bits):
    m, k, n = job["m"], job["k"], job["n"]
    kind = job.get("values", "random")
    alo, ahi = -(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1
    wlo, whi = -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1
    if kind == "min_min":
        return np.full((m, k), alo, np.int64), np.full((k, n), wlo, np.int64)
    if kind == "min_max":
        return np.full((m, k), alo, np.int64), np.full((k, n), whi, np.int64)
    if kind != "random":
        raise ValueError(f"unknown values {kind!r}")
    a = rng.integers(alo, ahi + 1, size=(m, k))
    w = rng.integers(wlo, whi + 1, size=(k, n))
    a = np.where(rng.random(a.shape) < 0.25, rng.choice([alo, ahi], size=a.shape), a)
    w = np.where(rng.random(w.shape) < 0.25, rng.choice([wlo, whi], size=w.shape), w)
    return a.astype(np.int64), w.astype(np.int64)


def _queue(tb, parts, m):
    tb.w.send(row for t in parts for row in t.weights)
    tb.a.send({"data": row, "last": int(i == m - 1)} for t in parts for i, row in enumerate(t.activations))
    expected = [{"data": row, "last": int(i == m - 1)} for t in parts for i, row in enumerate(t.expected)]
    tb.o.expect(expected)
    return expected


@cocotb.test()
async def matmul_tiles(dut):
    """Tiled products bit-exact against the golden model, cycle counts against the model."""
    p, args = env.params(), env.args()
    rows, cols = p["ROWS"], p["COLS"]
    ib, wb, acc = p["IN_BITS"], p["W_BITS"], p["ACC_BITS"]
    rnd, rng = env.rngs()
    tb = TB(dut, rng=rnd)
    await tb.reset()
    report = []
    for number, job in enumerate(args["jobs"]):
        a, w = operands(rng, job, ib, wb)
        m = a.shape[0]
        parts = tiles(a, w, rows, cols, acc)
        tb.set_backpressure(job.get("backpressure", 0.0))
        tb.set_idle(job.get("idle", 0.0))
        wall = time.perf_counter()
        base_w = len(tb.w.accepted)
        base_o = len(tb.o.items)
        expected = _queue(tb, parts, m)
        budget = 50 * (len(expected) + len(parts) * (rows + 1)) + 10 * (rows + cols) + 1000
        await tb.drain(timeout=budget)
        wall = time.perf_counter() - wall
        await tb.cycles(rows + cols + 8)  # an extra beat would show up here
        tb.check()
        got = tb.o.items[base_o:]
        results = [(t, np.array([b["data"] for b in got[i * m:(i + 1) * m]])) for i, t in enumerate(parts)]
        product = assemble(results, m, w.shape[1], acc)
        want = matmul(a, w, acc)
        assert np.array_equal(product, want), f"job {number}: assembled product differs from matmul"
        measured = tb.o.cycles[-1] - tb.w.accepted[base_w] + 1
        model = cycles(m, a.shape[1], w.shape[1], rows, cols)
        report.append({"job": job, "tiles": len(parts), "cycles": measured, "model": model.total,
                       "utilization_model": model.utilization, "wall_s": wall})
        if job.get("check_cycles"):
            assert measured == model.total, (f"job {number} ({job}): {measured} cycles, model {model.total} "
                                             f"({model})")
    env.report(jobs=report)


@cocotb.test()
async def stall_holds_everything(dut):
    """With the sink stalled, the array takes only what fits and emits nothing
    beyond its one presented beat; releasing it resumes with no loss."""
    p = env.params()
    rows, cols = p["ROWS"], p["COLS"]
    ib, wb, acc = p["IN_BITS"], p["W_BITS"], p["ACC_BITS"]
    rnd, rng = env.rngs(7)
    tb = TB(dut, backpressure=1.0, rng=rnd)
    await tb.reset()
    m = 3 * (rows + cols)
    a, w = operands(rng, {"m": m, "k": rows, "n": cols}, ib, wb)
    (tile,) = tiles(a, w, rows, cols, acc)
    _queue(tb, [tile], m)
    await tb.cycles(4 * (rows + cols) + 50)
    # Nothing left; the pipeline holds latency rows (ROWS + COLS) and the input stops.
    assert len(tb.o.items) == 0
    assert len(tb.a.accepted) == rows + cols, f"{len(tb.a.accepted)} rows taken while stalled"
    tb.set_backpressure(0.0)
    await tb.finish(timeout=20 * m, quiet=rows + cols + 8)


@cocotb.test()
async def reset_mid_tile(dut):
    """Reset with weights loaded and activations in the array, then a tiled
    product that must pass (weights are loaded again: nothing survives a reset)."""
    p = env.params()
    rows, cols = p["ROWS"], p["COLS"]
    rnd, rng = env.rngs(8)
    tb = TB(dut, idle=0.2, backpressure=0.3, rng=rnd)
    await tb.reset()
    a, w = operands(rng, {"m": 2 * rows + 3, "k": 2 * rows, "n": cols}, p["IN_BITS"], p["W_BITS"])
    parts = tiles(a, w, rows, cols, p["ACC_BITS"])

    async def transaction(tb):
        _queue(tb, parts, a.shape[0])

    await reset_under_traffic(tb, transaction)
