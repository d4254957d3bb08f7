"""Testbench of ``orbis_qe`` with ``DTYPE = "fp16"`` against ``golden.orbis.qe_fp16``.

Arguments: ``matrices`` (random matrices after the corner ones), ``idle``,
``backpressure``. Padding lanes (past ``CHANNELS`` in the last chunk) carry
random bit patterns, inf and NaN included, which the unit must ignore.
"""

import cocotb
import numpy as np

from golden.orbis import qe_cycles, qe_fp16
from sim import env
from sim.stream_legacy import TB, Scoreboard, StreamSink, StreamSource, lanes_pack, lanes_unpack

POS_INF, NEG_INF, NAN, NEG_ZERO = 0x7C00, 0xFC00, 0x7E00, 0x8000


def _h(values):
    return np.asarray(values, dtype=np.float16).view(np.uint16)


def random_fp16(rng, shape, *, max_field=30):
    """Bit patterns with every sign, exponent field 0..max_field and mantissa."""
    sign = rng.integers(0, 2, size=shape) << 15
    field = rng.integers(0, max_field + 1, size=shape) << 10
    return (sign | field | rng.integers(0, 1 << 10, size=shape)).astype(np.uint16)


def corner_matrices(rng, n, c, scale_frac):
    """Zeros of both signs, subnormals, code and scale ties, extreme ranges, inf/NaN."""
    out = []
    x = _h(rng.normal(size=(n, c)))
    x[:, 0] = 0                                                          # all-zero channel
    x[::2, 1 % c] = NEG_ZERO                                             # -0 and +0
    x[1::2, 1 % c] = 0
    x[:, 2 % c] = rng.integers(0, 1 << 10, size=n) | (rng.integers(0, 2, size=n) << 15)  # subnormals only
    out.append(x)
    # Code ties: M_c = 14, |x| odd integers lie on (k + 1/2)·M_c/7; M_c = 7·2^-20, halves of 2^-20.
    t = _h(rng.integers(-14, 15, size=(n, c)).astype(np.float64))
    t[0, :] = _h(14.0)
    t[:, 1 % c] = _h(rng.integers(-14, 15, size=n) * 2.0 ** -21)
    t[0, 1 % c] = _h(7 * 2.0 ** -20)
    out.append(t)
    # Scale ties: M = 2^10 and M_c = (2k+1)·2^(9-F) give M_c·2^F / M = k + 1/2.
    s = np.zeros((n, c), dtype=np.float64)
    s[0, 0] = 1024.0
    for j in range(1, c):
        s[j % n, j] = (2 * (j % 7) + 1) * 2.0 ** (9 - scale_frac)
    out.append(_h(s * np.where(rng.integers(0, 2, size=(n, c)) == 1, -1.0, 1.0)))
    # One huge channel, tiny others (normal, subnormal): the relative weights underflow.
    h = _h(rng.normal(size=(n, c)) * 1e-4)
    h[:, 0] = _h(rng.normal(size=n) * 1.5e4)
    h[:, 1 % c] = _h(rng.normal(size=n) * 1e-6)
    out.append(h)
    out.append(np.zeros((n, c), dtype=np.uint16))                         # all-zero matrix
    # inf and NaN in used lanes: read as ±65504, the matrix is flagged.
    f = random_fp16(rng, (n, c))
    f[rng.integers(0, n), rng.integers(0, c)] = POS_INF
    f[rng.integers(0, n), rng.integers(0, c)] = NEG_INF
    f[rng.integers(0, n), rng.integers(0, c)] = NAN
    out.append(f)
    out.append(random_fp16(rng, (n, c), max_field=8))                   # subnormal-heavy, tiny
    return out


def _beats(x, lanes, rng):
    """Token-major beats; padding lanes get random patterns."""
    n, c = x.shape
    cb = -(-c // lanes)
    pad = random_fp16(rng, (n, cb * lanes), max_field=31)
    pad[:, :c] = x
    return pad.reshape(n * cb, lanes).astype(np.int64), cb


def _lanes(v, c, lanes, fill):
    cb = -(-c // lanes)
    out = np.full((v.shape[0], cb * lanes), fill, dtype=np.int64)
    out[:, :c] = v
    return out.reshape(-1, lanes)


async def _run(dut, mats, idle, bp, rnd, rng):
    p = env.params()
    lanes, f = p["CH_LANES"], p["SCALE_FRAC"]
    sw = int(len(dut.scales__payload)) // lanes
    tb = TB(dut)
    await tb.reset(idle=("i__valid", "o__ready", "scales__ready"))
    flags, sflags = [], []
    sink = StreamSink(tb, "o", backpressure=bp, rng=rnd,
                      decode=lambda w: lanes_unpack(w, 4, lanes, signed=True),
                      callback=lambda _: flags.append(int(dut.nonfinite.value)))
    ssink = StreamSink(tb, "scales", backpressure=bp, rng=rnd, decode=lambda w: lanes_unpack(w, sw, lanes),
                       callback=lambda _: sflags.append(int(dut.nonfinite.value)))
    src = StreamSource(tb, "i", idle=idle, rng=rnd)
    want_q, want_s, want_f, want_sf = [], [], [], []
    for x in mats:
        q, sigma, nonfinite = qe_fp16(x, f)
        beats, cb = _beats(x, lanes, rng)
        want_q.extend(_lanes(q, x.shape[1], lanes, 0))
        want_s.extend(_lanes(sigma[None, :], x.shape[1], lanes, 0))
        want_f.extend([int(nonfinite)] * len(beats))
        want_sf.extend([int(nonfinite)] * cb)
        src.send(lanes_pack(b, 16) for b in beats)
    await sink.wait_for(len(want_q), timeout=40 * len(want_q) + 100 * (f + 3) * len(want_s) + 1000)
    await tb.cycles(20)
    Scoreboard("orbis_qe.scales", want_s).check(ssink.items)
    Scoreboard("orbis_qe.o", want_q).check(sink.items)
    Scoreboard("orbis_qe.nonfinite (scale beats)", want_sf).check(sflags)
    Scoreboard("orbis_qe.nonfinite (code beats)", want_f).check(flags)
    return tb, src, sink, ssink


@cocotb.test()
async def matches_golden(dut):
    """Corner and random matrices, back to back, under random gaps and back-pressure."""
    p, a = env.params(), env.args()
    rnd, rng = env.rngs()
    n, c, f = p["NUM_TOKENS"], p["CHANNELS"], p["SCALE_FRAC"]
    mats = corner_matrices(rng, n, c, f)
    for _ in range(a.get("matrices", 3)):
        # Channel amplitudes over many binades, as SDPA outputs have.
        amp = 2.0 ** rng.uniform(-16, 8, size=c)
        mats.append(_h(rng.normal(size=(n, c)) * amp))
        mats.append(random_fp16(rng, (n, c)))
    await _run(dut, mats, a.get("idle", 0.2), a.get("backpressure", 0.3), rnd, rng)


@cocotb.test()
async def cycle_model(dut):
    """Ideal streams: the cycle count of one matrix equals ``golden.orbis.qe_cycles``."""
    p = env.params()
    rnd, rng = env.rngs(1)
    n, c, lanes, f = p["NUM_TOKENS"], p["CHANNELS"], p["CH_LANES"], p["SCALE_FRAC"]
    x = random_fp16(rng, (n, c))
    tb, src, sink, ssink = await _run(dut, [x], 0.0, 0.0, rnd, rng)
    cb = -(-c // lanes)
    assert np.all(np.diff(src.accepted) == 1)
    assert np.all(np.diff(ssink.cycles) == f + 3), "a scale beat does not take F + 3 cycles"
    assert np.all(np.diff(sink.cycles) == 1)
    assert sink.cycles[0] == ssink.cycles[-1] + 3, "codes do not start 3 cycles after the last scale"
    total = sink.cycles[-1] - src.accepted[0] + 1
    model = qe_cycles(n, c, lanes, "fp16", f)
    assert total == model, f"{total} cycles, model {model} (CB = {cb})"
