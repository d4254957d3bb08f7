"""Testbench of ``ditto_pe`` and ``itc_pe`` against ``golden.ditto.pe_step``.

One module serves both PEs (``DITGEN_UNIT`` tells them apart): ``ditto_pe``
lanes carry signed 5-bit operands with the ×16 shifter on lanes 0 and 2,
``itc_pe`` lanes signed INT8 operands and no shifter.

Arguments (``sim.env.args()``): ``exhaustive`` (every lane sees every
(operand, weight, hi flag) combination), ``beats`` (random beats otherwise),
``rows`` (probability that a beat closes its row; 1.0 checks each beat's sum
on its own), ``idle``, ``backpressure``.
"""

import cocotb
import numpy as np

from golden.ditto import pe_step
from sim import env
from sim.stream import TB, check_timing, reset_under_traffic

LANES = 4
LATENCY = 2  # docstring: result 2 cycles after the row's last beat


class PeTB(TB):
    """``i`` (operands, weights, hi flags, clear, last) → ``o`` row sums; operand
    width and lane count from the layout; only the Ditto PE has shifters."""

    def __init__(self, dut, **kw):
        super().__init__(dut, **kw)
        self.unit = env.unit()
        self.bits = self.i.packer["a"].elem.width
        self.shifters = self.unit == "ditto_pe"

    def queue(self, a, w, h, clear, last):
        self.i.send({"a": a[n], "w": w[n], "hi": int(h[n, 0] | h[n, 1] << 1), "clear": int(clear[n]),
                     "last": int(last[n])} for n in range(len(a)))
        self.o.expect(_expected(a, w, h, clear, last))


def _operands(rng, bits, shifters, exhaustive, beats):
    """(a, w, hi) arrays of shape (beats, 4), (beats, 4), (beats, 2)."""
    lo, hi_ = -(1 << (bits - 1)), 1 << (bits - 1)
    if exhaustive:
        av, wv = np.meshgrid(np.arange(lo, hi_), np.arange(-128, 128), indexing="ij")
        combos = np.stack([av.ravel(), wv.ravel()], axis=1)          # every (operand, weight)
        if shifters:  # lanes 0 and 2 also sweep the hi flag
            flagged = np.concatenate([np.c_[combos, np.zeros(len(combos), int)],
                                      np.c_[combos, np.ones(len(combos), int)]])
        else:
            flagged = np.c_[combos, np.zeros(len(combos), int)]
        n = len(flagged)
        a = np.zeros((n, LANES), dtype=np.int64)
        w = np.zeros((n, LANES), dtype=np.int64)
        h = np.zeros((n, 2), dtype=np.int64)
        for lane in range(LANES):
            if shifters and lane in (0, 2):
                pick = flagged[rng.permutation(n)]
                h[:, lane // 2] = pick[:, 2]
            else:  # plain lanes: every (operand, weight) at least once
                pick = combos[rng.permutation(np.resize(np.arange(len(combos)), n))]
            a[:, lane], w[:, lane] = pick[:, 0], pick[:, 1]
        return a, w, h
    a = rng.integers(lo, hi_, size=(beats, LANES))
    w = rng.integers(-128, 128, size=(beats, LANES))
    h = rng.integers(0, 2, size=(beats, 2)) if shifters else np.zeros((beats, 2), dtype=np.int64)
    return a, w, h


def _wrap32(x):
    return int((int(x) + (1 << 31)) % (1 << 32) - (1 << 31))


def _expected(a, w, h, clear, last):
    """Golden results: partial sums closed by ``last``, restarted by ``clear``."""
    sums = pe_step(a, h, w)
    out, psum = [], 0
    for s, c, l in zip(sums, clear, last):
        psum = (0 if c else psum) + int(s)
        if l:
            out.append(_wrap32(psum))
    return out


def _controls(rng, n, rows):
    last = (rng.random(n) < rows).astype(np.int64)
    last[-1] = 1
    # A row normally starts with clear; sometimes it keeps accumulating onto
    # the previous result (K tiling), and a mid-row clear restarts the sum.
    after_last = np.r_[1, last[:-1]]
    clear = np.where(after_last == 1, (rng.random(n) >= 0.1).astype(np.int64), (rng.random(n) < 0.02).astype(np.int64))
    clear[0] = 1
    return clear, last


@cocotb.test()
async def results_match_golden(dut):
    """Every row result equals the golden sum, under random gaps and back-pressure."""
    a_ = env.args()
    rnd, rng = env.rngs()
    tb = PeTB(dut, idle=a_.get("idle", 0.0), backpressure=a_.get("backpressure", 0.0), rng=rnd)
    await tb.reset()
    a, w, h = _operands(rng, tb.bits, tb.shifters, a_.get("exhaustive", False), a_.get("beats", 4096))
    clear, last = _controls(rng, len(a), a_.get("rows", 0.5))
    tb.queue(a, w, h, clear, last)
    await tb.finish(timeout=20 * len(a) + 100)


@cocotb.test()
async def latency_and_ii(dut):
    """With a ready sink, a beat enters every cycle and a row's result appears
    2 cycles after its last beat (documented latency)."""
    _, rng = env.rngs(1)
    tb = PeTB(dut)
    await tb.reset()
    a, w, h = _operands(rng, tb.bits, tb.shifters, False, 256)
    clear, last = _controls(rng, len(a), 0.4)
    tb.queue(a, w, h, clear, last)
    await tb.finish(timeout=10 * len(a))
    check_timing(tb.unit, tb.i.accepted, tb.o.cycles, input_ii=1)
    check_timing(tb.unit, [tb.i.accepted[n] for n in np.flatnonzero(last)], tb.o.cycles, latency=LATENCY)


@cocotb.test()
async def accumulator_wraps_at_32_bits(dut):
    """One row of the largest products, never cleared, read out every 1,024
    beats: the partial sum passes 2^24 and 2^31 and wraps modulo 2^32
    exactly (a narrower accumulator fails at the first read-out past its width)."""
    a_ = env.args()
    tb = PeTB(dut, backpressure=0.2)
    await tb.reset()
    lo = -(1 << (tb.bits - 1))
    n = a_.get("wrap_beats", 36 * 1024)
    a = np.full((n, LANES), lo)
    w = np.full((n, LANES), -128)
    h = np.ones((n, 2), dtype=np.int64) if tb.shifters else np.zeros((n, 2), dtype=np.int64)
    clear = np.zeros(n, dtype=np.int64)
    clear[0] = 1
    last = np.zeros(n, dtype=np.int64)
    last[1023::1024] = 1
    last[-1] = 1
    exact = int(pe_step(a, h, w).sum())
    assert exact >= 1 << 31, "the row does not reach the 32-bit wrap"
    tb.queue(a, w, h, clear, last)
    await tb.finish(timeout=4 * n)
    assert min(tb.o.items) < 0 < max(tb.o.items), "the read-outs never wrapped"


@cocotb.test()
async def reset_mid_row(dut):
    """Reset with a partial sum and results in flight, then rows that must
    pass: the first row after the reset starts with ``clear``, as every run
    does (the partial sum is not documented to survive a reset)."""
    _, rng = env.rngs(3)
    tb = PeTB(dut, idle=0.2, backpressure=0.3)
    await tb.reset()
    a, w, h = _operands(rng, tb.bits, tb.shifters, False, 200)
    clear, last = _controls(rng, len(a), 0.2)

    async def transaction(tb):
        tb.queue(a, w, h, clear, last)

    await reset_under_traffic(tb, transaction)
