"""Testbench of ``systolic_array`` with ``DTYPE=fp16`` against
``golden.systolic`` (FP16 matmul in the documented order, tiler, weight beat
order, cycle model).

Arguments (``sim.env.args()``): ``jobs``, products run one after the other on
the same array, each a dict with ``m``, ``k``, ``n``; ``values``:

* ``"random"`` -- binary16 values of mixed magnitudes (normal samples times
  2^e, e uniform in [-12, 6]), so column sums round at every addition;
* ``"corners"`` -- every operand drawn from ``golden.fp16.corners16`` without
  NaN and infinity (zeros of both signs, subnormals, largest finite, ...),
  with a few infinities and NaNs sprinkled in (``inf * 0`` and ``inf - inf``
  included), so special values propagate through the sums;
* ``"cancel"`` -- pairs of rows with ``a[k] = a[k+1]`` and ``w[k] = -w[k+1]``:
  exact cancellation to +0.0 between large terms;

``idle``, ``backpressure`` and ``check_cycles`` as in the INT8 testbench.
Every result beat is compared bit for bit (NaN is the canonical
``0x7FC00000`` on both sides), the per-tile results are assembled in tile
order and compared with ``matmul(a, w, dtype="fp16", rows=ROWS)``. The
harness (``sim.stream.TB``) packs the lanes from the unit's signature, checks
the protocol of ``o`` and drives random payloads while a source idles; a
second test resets the array in the middle of a tile.
"""

import cocotb
import numpy as np

from golden import fp16 as gf
from golden.systolic import assemble, cycles, matmul, tiles, weight_beats
from sim import env
from sim.stream import TB, reset_under_traffic


def operands(rng, job):
    m, k, n = job["m"], job["k"], job["n"]
    kind = job.get("values", "random")

    def mixed(shape):
        return (rng.standard_normal(shape) * np.exp2(rng.integers(-12, 7, shape))).astype(np.float16)

    if kind == "random":
        return mixed((m, k)), mixed((k, n))
    if kind == "corners":
        c = gf.corners16()
        finite = c[(c & 0x7C00) != 0x7C00]
        special = np.array([0x7C00, 0xFC00, 0x7E00], dtype=np.uint16)

        def pick(shape):
            x = rng.choice(finite, size=shape)
            hit = rng.random(shape) < 0.03
            x[hit] = rng.choice(special, size=int(hit.sum()))
            return gf.f16(x)

        return pick((m, k)), pick((k, n))
    if kind == "cancel":
        a, w = mixed((m, k)), mixed((k, n))
        half = k // 2 * 2
        a[:, 1:half:2] = a[:, 0:half:2]
        w[1:half:2] = -w[0:half:2]
        return a, w
    raise ValueError(f"unknown values {kind!r}")


def _bits(x):
    return np.asarray(x).view(np.uint16 if np.asarray(x).dtype == np.float16 else np.uint32)


def _queue(tb, parts, m):
    """Queue the weight and activation beats of ``parts``; expect its result rows."""
    tb.w.send(_bits(row) for t in parts for row in weight_beats(t, "fp16"))
    tb.a.send({"data": _bits(row), "last": int(i == m - 1)} for t in parts for i, row in enumerate(t.activations))
    expected = [{"data": _bits(row).astype(np.int64), "last": int(i == m - 1)}
                for t in parts for i, row in enumerate(t.expected)]
    tb.o.expect(expected)
    return expected


def _hex(beat):
    return str([hex(int(v)) for v in beat["data"]]) if isinstance(beat, dict) else repr(beat)


@cocotb.test()
async def matmul_tiles_fp16(dut):
    """Tiled FP16 products bit-exact against the golden model, cycle counts against the model."""
    p, args = env.params(), env.args()
    rows, cols = p["ROWS"], p["COLS"]
    rnd, rng = env.rngs()
    tb = TB(dut, rng=rnd)
    await tb.reset()
    report = []
    for number, job in enumerate(args["jobs"]):
        a, w = operands(rng, job)
        m = a.shape[0]
        parts = tiles(a, w, rows, cols, dtype="fp16")
        tb.set_backpressure(job.get("backpressure", 0.0))
        tb.set_idle(job.get("idle", 0.0))
        base_w = len(tb.w.accepted)
        base_o = len(tb.o.items)
        expected = _queue(tb, parts, m)
        budget = 50 * (len(expected) + len(parts) * (rows + 1)) + 10 * (rows + cols) + 1000
        await tb.drain(timeout=budget)
        await tb.cycles(rows + cols + 8)  # an extra beat would show up here
        tb.o.check(fmt=_hex)
        tb.check()
        got = tb.o.items[base_o:]
        results = [(t, np.array([b["data"] for b in got[i * m:(i + 1) * m]], dtype=np.uint32).view(np.float32))
                   for i, t in enumerate(parts)]
        product = assemble(results, m, w.shape[1], dtype="fp16")
        want = matmul(a, w, dtype="fp16", rows=rows)
        assert np.array_equal(_bits(product), _bits(want)), f"job {number}: assembled product differs from matmul"
        measured = tb.o.cycles[-1] - tb.w.accepted[base_w] + 1
        model = cycles(m, a.shape[1], w.shape[1], rows, cols, dtype="fp16")
        nans = int(np.isnan(want).sum())
        report.append({"job": job, "tiles": len(parts), "cycles": measured, "model": model.total, "nan_outputs": nans})
        if job.get("check_cycles"):
            assert measured == model.total, f"job {number} ({job}): {measured} cycles, model {model.total}"
    env.report(jobs=report)


@cocotb.test()
async def reset_mid_tile_fp16(dut):
    """Reset with weights loaded and activations in the array, then an FP16
    product that must pass bit for bit (nothing survives a reset)."""
    p = env.params()
    rows, cols = p["ROWS"], p["COLS"]
    rnd, rng = env.rngs(8)
    tb = TB(dut, idle=0.2, backpressure=0.3, rng=rnd)
    await tb.reset()
    a, w = operands(rng, {"m": 2 * rows + 3, "k": 2 * rows, "n": cols})
    parts = tiles(a, w, rows, cols, dtype="fp16")

    async def transaction(tb):
        _queue(tb, parts, a.shape[0])

    await reset_under_traffic(tb, transaction)
