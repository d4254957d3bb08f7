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
from sim.stream import TB, Packer, Scoreboard, StreamSink, StreamSource, lanes_unpack

LANES = 4


class Codec:
    def __init__(self, p):
        self.pes = p["PES"]
        self.index_bits = max(1, (p["MAX_ROW"] - 1).bit_length())
        self.lane_bits = 4 + 1 + self.index_bits + 1
        self.w = Packer([("addr", max(1, (p["MAX_ROW"] - 1).bit_length())), ("row", 8, True, self.pes)])

    def lanes(self, beat):
        word = 0
        for lane in range(LANES):
            f = (int(beat["operand"][lane]) & 0x1F) | int(beat["index"][lane]) << 5 \
                | int(beat["valid"][lane]) << (5 + self.index_bits)
            word |= f << (lane * self.lane_bits)
        rest = int(beat["hi"][0]) | int(beat["hi"][1]) << 1 | int(beat["last"]) << 2
        return word | rest << (LANES * self.lane_bits)

    def result(self, word):
        return lanes_unpack(word, 32, self.pes, signed=True)


def _wrap32(x):
    return (np.asarray(x, dtype=np.int64) + (1 << 31)) % (1 << 32) - (1 << 31)


def _weights(rng, k, n):
    w = rng.integers(-128, 128, size=(k, n))
    w[0, :] = -128
    w[1, :] = 127
    return w


async def _start(dut):
    tb = TB(dut)
    await tb.reset(idle=("i__valid", "o__ready", "w__valid"))
    return tb


async def _load(tb, codec, w, rnd):
    src = StreamSource(tb, "w", idle=0.3, rng=rnd)
    src.send(codec.w.pack(addr=k, row=w[k]) for k in range(w.shape[0]))
    await src.wait_drained()
    await tb.cycles(2)


@cocotb.test()
async def trajectory_matches_matmul(dut):
    """Step 0 on activations, later steps on temporal differences: every row
    result equals the golden ΔA·W, and the running sum equals A_t·W."""
    p, a = env.params(), env.args()
    codec = Codec(p)
    rnd, rng = env.rngs()
    steps, rows, k = a.get("steps", 5), a.get("rows", 16), a.get("k", p["MAX_ROW"])
    acts = trajectory(rng, steps, (rows, k))
    acts[2, 3] = acts[1, 3]                   # a row without any change
    acts[3, 4, :4] = [127, -128, 127, -128]   # extreme differences
    acts[4, 4, :4] = [-128, 127, -128, 127]
    w = _weights(rng, k, codec.pes)
    tb = await _start(dut)
    await _load(tb, codec, w, rnd)
    sink = StreamSink(tb, "o", backpressure=a.get("backpressure", 0.0), rng=rnd, decode=codec.result)
    src = StreamSource(tb, "i", idle=a.get("idle", 0.0), rng=rnd)
    out = np.zeros((rows, codec.pes), dtype=np.int64)
    for t in range(steps):
        d = differences(acts[t], acts[t - 1] if t else None, "act" if t == 0 else "temporal")
        beats = [b for row in d for b in encode(row)]
        start = len(sink.items)
        src.send(codec.lanes(b) for b in beats)
        await sink.wait_for(start + rows, timeout=50 * len(beats) + 1000)
        got = np.array(sink.items[start:start + rows])
        Scoreboard(f"ditto_compute_unit.o step {t}", list(_wrap32(matmul(d, w)))).check(list(got))
        out = _wrap32(out + got)   # the VPU's summation with the previous output
        assert np.array_equal(out, _wrap32(matmul(acts[t], w))), f"step {t}: running sum != A_t·W"
    await tb.cycles(20)
    assert len(sink.items) == steps * rows, "extra results"
    env.report(beats=int(sum(len(encode(r)) for r in acts[0])))


@cocotb.test()
async def latency_and_ii(dut):
    """Ready sink: a beat enters every cycle, each row result leaves 3 cycles
    after the row's last beat."""
    p = env.params()
    codec = Codec(p)
    rnd, rng = env.rngs(1)
    k = p["MAX_ROW"]
    acts = trajectory(rng, 2, (12, k))
    w = _weights(rng, k, codec.pes)
    tb = await _start(dut)
    await _load(tb, codec, w, rnd)
    sink = StreamSink(tb, "o", decode=codec.result)
    src = StreamSource(tb, "i")
    d = acts[1] - acts[0]
    beats = [b for row in d for b in encode(row)]
    src.send(codec.lanes(b) for b in beats)
    await sink.wait_for(12, timeout=10 * len(beats) + 100)
    assert np.all(np.diff(src.accepted) == 1), "input stalled with a ready sink"
    lasts = [c for c, b in zip(src.accepted, beats) if b["last"]]
    lat = {o - i for o, i in zip(sink.cycles, lasts)}
    assert lat == {3}, f"latencies {sorted(lat)}, documented 3"
    Scoreboard("ditto_compute_unit.o", list(_wrap32(matmul(d, w)))).check(sink.items)
