"""Testbench of ``orbis_topk`` against ``golden.orbis.topk_smallest``.

Arguments: ``sets``, ``idle``, ``backpressure``.
"""

import cocotb
import numpy as np

from golden.orbis import bitonic_latency, topk_smallest
from sim import env
from sim.stream import TB, Packer, Scoreboard, StreamSink, StreamSource


def _packers(p):
    n, lw = p["SIZE"], p["LOSS_WIDTH"]
    iw = (n - 1).bit_length()
    kw = n.bit_length()
    inp = Packer([("loss", lw, False, n), ("valid", n), ("k", kw)])
    out = Packer([("loss", lw), ("index", iw), ("last", 1)])
    return inp, out


def _sets(rng, n, lw, count):
    top = (1 << lw) - 1
    full = (1 << n) - 1
    out = [
        (np.zeros(n, int), full, n),                          # all equal, k = max
        (np.full(n, top), full, n // 2),                      # largest losses
        (rng.integers(0, top + 1, n), 0, 3),                  # no real key: nothing out
        (rng.integers(0, top + 1, n), full, 0),               # k = 0
        (rng.integers(0, 3, n), (1 << (n - 3)) - 1, n),       # padded count, k > count
        (rng.integers(0, 3, n), full & 0b1010101010101010101, n // 2),
    ]
    for _ in range(count):
        hi = top + 1 if rng.random() < 0.5 else 3
        out.append((rng.integers(0, hi, n), int(rng.integers(0, full + 1)), int(rng.integers(0, n + 1))))
    return out


def _expected(sets, n):
    want = []
    for loss, valid, k in sets:
        mask = [(valid >> j) & 1 for j in range(n)]
        idx = topk_smallest(loss, k, mask)
        for j, i in enumerate(idx):
            want.append({"loss": int(loss[i]), "index": int(i), "last": int(j == len(idx) - 1)})
    return want


@cocotb.test()
async def matches_golden(dut):
    """Random, tied and padded sets, k from 0 to SIZE, with gaps and back-pressure."""
    p, a = env.params(), env.args()
    rnd, rng = env.rngs()
    n, lw = p["SIZE"], p["LOSS_WIDTH"]
    inp, out = _packers(p)
    sets = _sets(rng, n, lw, a.get("sets", 150))
    tb = TB(dut)
    await tb.reset(idle=("i__valid", "o__ready"))
    sink = StreamSink(tb, "o", backpressure=a.get("backpressure", 0.0), rng=rnd, decode=out.unpack)
    src = StreamSource(tb, "i", idle=a.get("idle", 0.0), rng=rnd)
    src.send(inp.pack(loss=l, valid=v, k=k) for l, v, k in sets)
    want = _expected(sets, n)
    await sink.wait_for(len(want), timeout=40 * len(want) + 1000)
    await src.wait_drained()
    await tb.cycles(40)
    Scoreboard("orbis_topk.o", want).check(sink.items)


@cocotb.test()
async def latency_and_throughput(dut):
    """Ideal streams: first key after bitonic latency + 2; back-to-back sets of k keys
    leave without a bubble (a set costs max(1, k) cycles)."""
    p = env.params()
    rnd, rng = env.rngs(1)
    n, lw = p["SIZE"], p["LOSS_WIDTH"]
    inp, out = _packers(p)
    full = (1 << n) - 1
    sets = [(rng.integers(0, 1 << lw, n), full, k) for k in (3, 1, n, 2, 1, 1)]
    tb = TB(dut)
    await tb.reset(idle=("i__valid", "o__ready"))
    sink = StreamSink(tb, "o", decode=out.unpack)
    src = StreamSource(tb, "i")
    src.send(inp.pack(loss=l, valid=v, k=k) for l, v, k in sets)
    want = _expected(sets, n)
    await sink.wait_for(len(want), timeout=2000)
    Scoreboard("orbis_topk.o", want).check(sink.items)
    lat = bitonic_latency(n, p["REGISTER_EVERY"]) + 2
    assert sink.cycles[0] - src.accepted[0] == lat, f"latency {sink.cycles[0] - src.accepted[0]}, documented {lat}"
    assert np.all(np.diff(sink.cycles) == 1), "bubbles between keys of back-to-back sets"
