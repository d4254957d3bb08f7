"""Testbench of ``ditto_compute_unit``: a generated activation trajectory
through the golden encoder, the unit's row results against the golden
products, and their running sum against the plain INT8 matmul A_t·W.

Arguments (``sim.env.args()``): ``steps`` (timesteps, the first on
activations), ``rows`` (M), ``k`` (row length), ``idle``, ``backpressure``.
"""

import cocotb
import numpy as np

from golden.ditto import differences, encode, matmul, trajectory
from sim import env
from sim.stream import TB, check_timing, reset_under_traffic

LATENCY = 3  # docstring: a row's result 3 cycles after its last beat


class ComputeTB(TB):
    """``w`` weight rows and ``i`` encoded lanes in, one ``o`` beat of PES sums
    per row out; PES and the lane layout from the ports."""

    def __init__(self, dut, **kw):
        super().__init__(dut, **kw)
        self.pes = self.w.packer["row"].length

    def beat(self, b):
        """An encoder beat (golden.ditto.encode) as the ``i`` payload."""
        lanes = [{"nib": int(op) & 0xF, "ext": (int(op) >> 4) & 1, "index": int(ix), "valid": int(v)}
                 for op, ix, v in zip(b["operand"], b["index"], b["valid"])]
        return {"lanes": lanes, "hi": int(b["hi"][0]) | int(b["hi"][1]) << 1, "last": int(b["last"])}

    async def load(self, w):
        self.w.send({"addr": k, "row": w[k]} for k in range(w.shape[0]))
        await self.w.wait_drained()
        await self.cycles(2)


def _wrap32(x):
    return (np.asarray(x, dtype=np.int64) + (1 << 31)) % (1 << 32) - (1 << 31)


def _weights(rng, k, n):
    w = rng.integers(-128, 128, size=(k, n))
    w[0, :] = -128
    w[1, :] = 127
    return w


@cocotb.test()
async def trajectory_matches_matmul(dut):
    """Step 0 on activations, later steps on temporal differences: every row
    result equals the golden ΔA·W, and the running sum equals A_t·W."""
    p, a = env.params(), env.args()
    rnd, rng = env.rngs()
    tb = ComputeTB(dut, rng=rnd)
    tb.set_idle(0.3)
    await tb.reset()
    steps, rows, k = a.get("steps", 5), a.get("rows", 16), a.get("k", p["MAX_ROW"])
    acts = trajectory(rng, steps, (rows, k))
    if steps >= 5 and rows >= 5:
        e = min(4, k)
        acts[2, 3] = acts[1, 3]                       # a row without any change
        acts[3, 4, :e] = [127, -128, 127, -128][:e]   # extreme differences
        acts[4, 4, :e] = [-128, 127, -128, 127][:e]
    w = _weights(rng, k, tb.pes)
    await tb.load(w)
    tb.set_idle(a.get("idle", 0.0))
    tb.set_backpressure(a.get("backpressure", 0.0))
    out = np.zeros((rows, tb.pes), dtype=np.int64)
    for t in range(steps):
        d = differences(acts[t], acts[t - 1] if t else None, "act" if t == 0 else "temporal")
        beats = [b for row in d for b in encode(row)]
        start = len(tb.o.items)
        tb.i.send(tb.beat(b) for b in beats)
        tb.o.expect(_wrap32(matmul(d, w)))
        await tb.drain(timeout=50 * len(beats) + 1000)
        got = np.array(tb.o.items[start:start + rows])
        out = _wrap32(out + got)   # the VPU's summation with the previous output
        assert np.array_equal(out, _wrap32(matmul(acts[t], w))), f"step {t}: running sum != A_t·W"
    await tb.finish()
    env.report(beats=int(sum(len(encode(r)) for r in acts[0])))


@cocotb.test()
async def latency_and_ii(dut):
    """Ready sink: a beat enters every cycle, each row result leaves 3 cycles
    after the row's last beat."""
    p = env.params()
    rnd, rng = env.rngs(1)
    k = p["MAX_ROW"]
    tb = ComputeTB(dut, rng=rnd)
    await tb.reset()
    acts = trajectory(rng, 2, (12, k))
    w = _weights(rng, k, tb.pes)
    await tb.load(w)
    d = acts[1] - acts[0]
    beats = [b for row in d for b in encode(row)]
    tb.i.send(tb.beat(b) for b in beats)
    tb.o.expect(_wrap32(matmul(d, w)))
    await tb.finish(timeout=10 * len(beats) + 100)
    lasts = [c for c, b in zip(tb.i.accepted, beats) if b["last"]]
    check_timing("ditto_compute_unit", tb.i.accepted, tb.o.cycles, input_ii=1)
    check_timing("ditto_compute_unit", lasts, tb.o.cycles, latency=LATENCY)


@cocotb.test()
async def accumulator_wraps_at_32_bits(dut):
    """One row of ~33,000 beats of the largest products (every lane −16 × −128,
    lanes 0 and 2 shifted): each PE's sum passes 2^31 and must wrap modulo 2^32
    exactly; shorter rows on the way check 2^24 and beyond."""
    a = env.args()
    tb = ComputeTB(dut, backpressure=0.2)
    await tb.reset()
    k = env.params()["MAX_ROW"]
    w = np.full((k, tb.pes), -128)
    w[1] = np.arange(tb.pes) - 128          # a different sum per PE
    await tb.load(w)
    beat = {"operand": [-16, -16, -16, -16], "index": [0, 1, 0, 1], "valid": [1, 1, 1, 1], "hi": [1, 1]}
    expected = []
    for n in a.get("wrap_rows", [300, 33 * 1024]):
        tb.i.send(tb.beat({**beat, "last": int(j == n - 1)}) for j in range(n))
        per_beat = 2 * 16 * -16 * w[0] + 2 * -16 * w[1]
        expected.append(_wrap32(n * per_beat.astype(np.int64)))
    assert max(np.abs(n * (2 * 16 * 16 * 128 + 2 * 16 * 128)) for n in a.get("wrap_rows", [300, 33 * 1024])) \
        >= 1 << 31, "the row does not reach the 32-bit wrap"
    tb.o.expect(expected)
    await tb.finish(timeout=4 * 34 * 1024)


@cocotb.test()
async def reset_mid_layer(dut):
    """Reset with rows in flight, then a complete layer that must pass. The
    weight memory is not cleared by reset (not documented either way): the
    layer after the reset loads its weights again."""
    p = env.params()
    rnd, rng = env.rngs(2)
    tb = ComputeTB(dut, idle=0.2, backpressure=0.3, rng=rnd)
    await tb.reset()
    k = min(64, p["MAX_ROW"])
    acts = trajectory(rng, 2, (6, k))
    w = _weights(rng, k, tb.pes)
    d = acts[1] - acts[0]
    beats = [b for row in d for b in encode(row)]

    async def transaction(tb):
        await tb.load(w)
        tb.i.send(tb.beat(b) for b in beats)
        tb.o.expect(_wrap32(matmul(d, w)))

    await reset_under_traffic(tb, transaction)
