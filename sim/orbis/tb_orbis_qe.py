"""Testbench of ``orbis_qe`` against ``golden.orbis.qe``.

Arguments: ``matrices`` (random matrices after the corner ones), ``idle``,
``backpressure``.
"""

import cocotb
import numpy as np

from golden.orbis import qe
from sim import env
from sim.stream import TB, check_timing, reset_under_traffic


def corner_matrices(rng, n, c, dw):
    lo, hi = -(1 << (dw - 1)), (1 << (dw - 1)) - 1
    out = []
    out.append(np.full((n, c), 5, dtype=np.int64))                       # all-equal tokens
    z = rng.integers(lo, hi + 1, size=(n, c))
    z[:, ::3] = 0                                                         # zero channels
    out.append(z)
    t = rng.integers(-14, 15, size=(n, c))                               # every rounding tie
    t[0, :] = 14
    out.append(t)
    e = rng.choice([lo, hi, 0, 1, -1], size=(n, c))                      # extremes
    out.append(e)
    return out


def chunks(x, lanes, fill=None):
    """Token-major chunks of ``lanes`` channels; lanes past the last channel
    hold ``fill`` (random values in range: the unit must ignore them) or 0."""
    n, c = x.shape
    cb = -(-c // lanes)
    pad = np.zeros((n, cb * lanes), dtype=np.int64) if fill is None else fill(size=(n, cb * lanes))
    pad[:, :c] = x
    return pad.reshape(n * cb, lanes), cb


class QeTB(TB):
    """``i`` activations in; ``scales`` then ``o`` codes per matrix out."""

    def __init__(self, dut, **kw):
        super().__init__(dut, **kw)
        self.lanes = self.i.packer.length

    def queue(self, x, rng):
        f = env.params()["SCALE_FRAC"]
        elem = self.i.packer.elem
        q, s = qe(x, f)
        beats, cb = chunks(x, self.lanes, fill=lambda size: rng.integers(elem.min, elem.max + 1, size=size))
        qb, _ = chunks(q, self.lanes)
        sp = np.full(cb * self.lanes, 1 << f, dtype=np.int64)
        sp[:x.shape[1]] = s
        self.i.send(beats)
        self.o.expect(qb)
        self.scales.expect(sp.reshape(cb, self.lanes))


async def _run(dut, mats, idle, bp, rnd, rng):
    tb = QeTB(dut, idle=idle, backpressure=bp, rng=rnd)
    await tb.reset()
    for x in mats:
        tb.queue(x, rng)
    await tb.finish(timeout=40 * len(tb.o.expected) + 1000)
    return tb, tb.i, tb.o, tb.scales


@cocotb.test()
async def matches_golden(dut):
    """Corner and random matrices, back to back, under random gaps and back-pressure."""
    p, a = env.params(), env.args()
    rnd, rng = env.rngs()
    n, c, dw = p["NUM_TOKENS"], p["CHANNELS"], p["DATA_WIDTH"]
    mats = corner_matrices(rng, n, c, dw)
    lo, hi = -(1 << (dw - 1)), (1 << (dw - 1))
    for _ in range(a.get("matrices", 3)):
        scale = rng.integers(1, hi + 1, size=c)
        mats.append(np.clip(np.round(rng.normal(size=(n, c)) * scale / 3), lo, hi - 1).astype(np.int64))
    await _run(dut, mats, a.get("idle", 0.2), a.get("backpressure", 0.3), rnd, rng)


@cocotb.test()
async def cycle_model(dut):
    """Ideal streams: N·CB load, CB scales, codes from 3 cycles after the last scale, II = 1."""
    p = env.params()
    rnd, rng = env.rngs(1)
    n, c, lanes, dw = p["NUM_TOKENS"], p["CHANNELS"], p["CH_LANES"], p["DATA_WIDTH"]
    x = rng.integers(-(1 << (dw - 1)), 1 << (dw - 1), size=(n, c))
    tb, src, sink, ssink = await _run(dut, [x], 0.0, 0.0, rnd, rng)
    cb = -(-c // lanes)
    assert np.all(np.diff(src.accepted) == 1)
    assert ssink.cycles[0] == src.accepted[-1] + 1, "scales do not follow the last input beat"
    assert np.all(np.diff(ssink.cycles) == 1) and np.all(np.diff(sink.cycles) == 1)
    assert sink.cycles[0] == ssink.cycles[-1] + 3, "codes do not start 3 cycles after the last scale"
    total = sink.cycles[-1] - src.accepted[0] + 1
    assert total == 2 * n * cb + cb + 2, f"{total} cycles, model {2 * n * cb + cb + 2}"


@cocotb.test()
async def reset_mid_matrix(dut):
    """Reset while a matrix loads (max registers part-way), then matrices that
    must pass: the per-channel maxima restart (no state survives a reset)."""
    p = env.params()
    rnd, rng = env.rngs(2)
    tb = QeTB(dut, idle=0.2, backpressure=0.3, rng=rnd)
    await tb.reset()
    elem = tb.i.packer.elem
    mats = [rng.integers(elem.min, elem.max + 1, size=(p["NUM_TOKENS"], p["CHANNELS"])) for _ in range(2)]

    async def transaction(tb):
        for x in mats:
            tb.queue(x, rng)

    await reset_under_traffic(tb, transaction, fraction=0.25)
