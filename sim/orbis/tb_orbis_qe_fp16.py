"""Testbench of ``orbis_qe`` with ``DTYPE = "fp16"`` against ``golden.orbis.qe_fp16``.

Arguments: ``matrices`` (random matrices after the corner ones), ``idle``,
``backpressure``. Padding lanes (past ``CHANNELS`` in the last chunk) carry
random bit patterns, inf and NaN included, which the unit must ignore. The
``nonfinite`` flag is sampled with every scale and code beat and scoreboarded
like them.
"""

import cocotb
import numpy as np

from golden.orbis import qe_cycles, qe_fp16
from sim import env
from sim.orbis.tb_orbis_qe import chunks
from sim.stream import TB, Scoreboard, reset_under_traffic

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


class QeFP16TB(TB):
    """``i`` binary16 activations in; ``scales`` then ``o`` codes per matrix
    out, each beat with the ``nonfinite`` flag of its matrix."""

    def __init__(self, dut, **kw):
        super().__init__(dut, **kw)
        self.lanes = self.i.packer.length
        self.flags = {"scales": [], "o": []}
        self.want_flags = {"scales": [], "o": []}
        for name, got in self.flags.items():
            self.sinks[name].callback = lambda _, got=got: got.append(int(dut.nonfinite.value))

    def queue(self, x, rng):
        q, sigma, nonfinite = qe_fp16(x, env.params()["SCALE_FRAC"])
        beats, cb = chunks(x, self.lanes, fill=lambda size: random_fp16(rng, size, max_field=31))
        self.i.send(beats)
        self.o.expect(chunks(q, self.lanes)[0])
        self.scales.expect(chunks(sigma[None, :], self.lanes)[0])
        self.want_flags["o"] += [int(nonfinite)] * len(beats)
        self.want_flags["scales"] += [int(nonfinite)] * cb

    async def reset(self, cycles: int = 3):
        for got, want in zip(self.flags.values(), self.want_flags.values()):
            got.clear()
            want.clear()
        await super().reset(cycles)

    def check(self):
        super().check()
        for name, got in self.flags.items():
            Scoreboard(f"{self.label}.nonfinite ({name} beats)", self.want_flags[name]).check(got)


async def _run(dut, mats, idle, bp, rnd, rng):
    tb = QeFP16TB(dut, idle=idle, backpressure=bp, rng=rnd)
    await tb.reset()
    f = env.params()["SCALE_FRAC"]
    for x in mats:
        tb.queue(x, rng)
    await tb.finish(timeout=40 * len(tb.o.expected) + 100 * (f + 3) * len(tb.scales.expected) + 1000)
    return tb, tb.i, tb.o, tb.scales


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


@cocotb.test()
async def reset_mid_matrix(dut):
    """Reset while a matrix loads (maxima part-way, an infinity among them),
    then matrices that must pass: the maxima restart (no state survives)."""
    p = env.params()
    rnd, rng = env.rngs(2)
    tb = QeFP16TB(dut, idle=0.2, backpressure=0.3, rng=rnd)
    await tb.reset()
    n, c = p["NUM_TOKENS"], p["CHANNELS"]
    first = random_fp16(rng, (n, c))
    first[0, 0] = POS_INF
    mats = [first, random_fp16(rng, (n, c))]

    async def transaction(tb):
        for x in mats:
            tb.queue(x, rng)

    await reset_under_traffic(tb, transaction, fraction=0.25)
