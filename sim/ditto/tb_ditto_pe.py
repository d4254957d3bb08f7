"""Testbench of ``ditto_pe`` and ``itc_pe`` against ``golden.ditto.pe_step``.

One module serves both PEs (``DITGEN_UNIT`` tells them apart): ``ditto_pe``
lanes carry signed 5-bit operands with the ×16 shifter on lanes 0 and 2,
``itc_pe`` lanes signed INT8 operands and no shifter.

Arguments (``sim.env.args()``): ``exhaustive`` (every lane sees every
(operand, weight, hi flag) combination), ``beats`` (random beats otherwise),
``rows`` (probability that a beat closes its row; 1.0 checks each beat's sum
on its own), ``idle``, ``backpressure``.
"""

import os

import cocotb
import numpy as np

from golden.ditto import pe_step
from sim import env
from sim.stream import TB, Packer, Scoreboard, StreamSink, StreamSource

LANES = 4


def _config():
    unit = os.environ.get("DITGEN_UNIT", "ditto_pe")
    bits, shifters = (5, True) if unit == "ditto_pe" else (8, False)
    packer = Packer([("a", bits, True, LANES), ("w", 8, True, LANES), ("hi", 2), ("clear", 1), ("last", 1)])
    return unit, bits, shifters, packer


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


async def _start(dut):
    tb = TB(dut)
    await tb.reset(idle=("i__valid", "o__ready"))
    return tb


@cocotb.test()
async def results_match_golden(dut):
    """Every row result equals the golden sum, under random gaps and back-pressure."""
    a_ = env.args()
    unit, bits, shifters, packer = _config()
    rnd, rng = env.rngs()
    a, w, h = _operands(rng, bits, shifters, a_.get("exhaustive", False), a_.get("beats", 4096))
    clear, last = _controls(rng, len(a), a_.get("rows", 0.5))
    expected = _expected(a, w, h, clear, last)
    tb = await _start(dut)
    sink = StreamSink(tb, "o", backpressure=a_.get("backpressure", 0.0), rng=rnd,
                      decode=lambda x: x - (1 << 32) if x >> 31 else x)
    src = StreamSource(tb, "i", idle=a_.get("idle", 0.0), rng=rnd)
    src.send(packer.pack(a=a[n], w=w[n], hi=h[n, 0] | h[n, 1] << 1, clear=clear[n], last=last[n])
             for n in range(len(a)))
    await sink.wait_for(len(expected), timeout=20 * len(a) + 100)
    await tb.cycles(20)
    Scoreboard(f"{unit}.o", expected).check(sink.items)


@cocotb.test()
async def latency_and_ii(dut):
    """With a ready sink, a beat enters every cycle and a one-beat row's
    result appears 2 cycles after its beat (documented latency)."""
    unit, bits, shifters, packer = _config()
    _, rng = env.rngs(1)
    a, w, h = _operands(rng, bits, shifters, False, 256)
    clear, last = _controls(rng, len(a), 0.4)
    tb = await _start(dut)
    sink = StreamSink(tb, "o", decode=lambda x: x - (1 << 32) if x >> 31 else x)
    src = StreamSource(tb, "i")
    src.send(packer.pack(a=a[n], w=w[n], hi=h[n, 0] | h[n, 1] << 1, clear=clear[n], last=last[n])
             for n in range(len(a)))
    expected = _expected(a, w, h, clear, last)
    await sink.wait_for(len(expected), timeout=10 * len(a))
    assert np.all(np.diff(src.accepted) == 1), "input stalled with a ready sink"
    lasts = [src.accepted[n] for n in np.flatnonzero(last)]
    lat = [o - i for o, i in zip(sink.cycles, lasts)]
    assert set(lat) == {2}, f"latencies {sorted(set(lat))}, documented 2"
    Scoreboard(f"{unit}.o", expected).check(sink.items)
