"""Testbench of ``orbis_qe`` against ``golden.orbis.qe``.

Arguments: ``matrices`` (random matrices after the corner ones), ``idle``,
``backpressure``.
"""

import cocotb
import numpy as np

from golden.orbis import qe
from sim import env
from sim.stream import TB, Scoreboard, StreamSink, StreamSource, lanes_pack, lanes_unpack


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


def _chunks(x, lanes):
    n, c = x.shape
    cb = -(-c // lanes)
    pad = np.zeros((n, cb * lanes), dtype=np.int64)
    pad[:, :c] = x
    return pad.reshape(n * cb, lanes), cb


async def _run(dut, mats, idle, bp, rnd):
    p = env.params()
    lanes, dw, f = p["CH_LANES"], p["DATA_WIDTH"], p["SCALE_FRAC"]
    sw = int(len(dut.scales__payload)) // lanes
    tb = TB(dut)
    await tb.reset(idle=("i__valid", "o__ready", "scales__ready"))
    sink = StreamSink(tb, "o", backpressure=bp, rng=rnd, decode=lambda w: lanes_unpack(w, 4, lanes, signed=True))
    ssink = StreamSink(tb, "scales", backpressure=bp, rng=rnd, decode=lambda w: lanes_unpack(w, sw, lanes))
    src = StreamSource(tb, "i", idle=idle, rng=rnd)
    want_q, want_s = [], []
    for x in mats:
        q, s = qe(x, f)
        beats, cb = _chunks(x, lanes)
        qb, _ = _chunks(q, lanes)
        sp = np.full(cb * lanes, 1 << f, dtype=np.int64)
        sp[:x.shape[1]] = s
        want_q.extend(qb)
        want_s.extend(sp.reshape(cb, lanes))
        src.send(lanes_pack(b, dw) for b in beats)
    await sink.wait_for(len(want_q), timeout=40 * len(want_q) + 1000)
    await tb.cycles(20)
    Scoreboard("orbis_qe.scales", want_s).check(ssink.items)
    Scoreboard("orbis_qe.o", want_q).check(sink.items)
    return tb, src, sink, ssink


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
    await _run(dut, mats, a.get("idle", 0.2), a.get("backpressure", 0.3), rnd)


@cocotb.test()
async def cycle_model(dut):
    """Ideal streams: N·CB load, CB scales, codes from 3 cycles after the last scale, II = 1."""
    p = env.params()
    rnd, rng = env.rngs(1)
    n, c, lanes, dw = p["NUM_TOKENS"], p["CHANNELS"], p["CH_LANES"], p["DATA_WIDTH"]
    x = rng.integers(-(1 << (dw - 1)), 1 << (dw - 1), size=(n, c))
    tb, src, sink, ssink = await _run(dut, [x], 0.0, 0.0, rnd)
    cb = -(-c // lanes)
    assert np.all(np.diff(src.accepted) == 1)
    assert ssink.cycles[0] == src.accepted[-1] + 1, "scales do not follow the last input beat"
    assert np.all(np.diff(ssink.cycles) == 1) and np.all(np.diff(sink.cycles) == 1)
    assert sink.cycles[0] == ssink.cycles[-1] + 3, "codes do not start 3 cycles after the last scale"
    total = sink.cycles[-1] - src.accepted[0] + 1
    assert total == 2 * n * cb + cb + 2, f"{total} cycles, model {2 * n * cb + cb + 2}"
