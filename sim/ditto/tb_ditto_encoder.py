"""Testbench of ``ditto_encoder`` against ``golden.ditto`` (``differences``,
``encode``, ``class_counts``, ``pack_cycles``).

A test sends layers (mode, spatial offset, rows × K INT8 values) and checks
every output beat (lanes, hi flags, row end) and every per-layer ``stats``
beat in order, so lost, duplicated, reordered or extra beats fail, and the
number of output beats equals the packing cycle model.

Arguments (``sim.env.args()``): ``stream`` ("exhaustive": the 65,536
(cur, prev) INT8 pairs in temporal mode; "random": seeded layers in every
mode), ``k`` (row length), ``rows`` (rows per layer), ``layers``, ``idle``,
``backpressure``.
"""

import cocotb
import numpy as np

from golden.ditto import class_counts, classify, differences, encode, pack_cycles
from sim import env
from sim.stream import TB, Packer, Scoreboard, StreamSink, StreamSource

MODES = {"act": 0, "temporal": 1, "spatial": 2}
LANES = 4


class Codec:
    def __init__(self, p):
        self.n = p["IN_LANES"]
        self.index_bits = max(1, (p["MAX_ROW"] - 1).bit_length())
        self.lane_bits = 4 + 1 + self.index_bits + 1
        self.inp = Packer([("cur", 8, True, self.n), ("prev", 8, True, self.n), ("mode", 2),
                           ("last", 1), ("layer_last", 1)])
        self.stats = Packer([("zero", 32), ("low", 32), ("full", 32), ("cycles", 32)])

    def decode(self, word):
        ops, idx, val = [], [], []
        for lane in range(LANES):
            f = word >> (lane * self.lane_bits)
            v = f & 0x1F
            ops.append(v - 32 if v & 0x10 else v)
            idx.append((f >> 5) & ((1 << self.index_bits) - 1))
            val.append((f >> (5 + self.index_bits)) & 1)
        rest = word >> (LANES * self.lane_bits)
        return {"operand": np.array(ops), "index": np.array(idx), "valid": np.array(val),
                "hi": np.array([rest & 1, (rest >> 1) & 1]), "last": (rest >> 2) & 1}

    def beats(self, layer):
        """Input beats of a layer: rows × K elements, ``n`` per beat."""
        cur, prev, mode = layer["cur"], layer["prev"], MODES[layer["mode"]]
        rows, k = cur.shape
        per_row = k // self.n
        out = []
        for r in range(rows):
            for b in range(per_row):
                sl = slice(b * self.n, (b + 1) * self.n)
                last = int(b == per_row - 1)
                out.append(self.inp.pack(cur=cur[r, sl], prev=prev[r, sl], mode=mode, last=last,
                                         layer_last=int(last and r == rows - 1)))
        return out


def expected(layer, n):
    """Golden output beats and stats of one layer."""
    cur, prev = layer["cur"], layer["prev"]
    d = differences(cur, prev, layer["mode"], offset=layer["offset"] * n)
    beats = [b for row in d for b in encode(row)]
    c = class_counts(d)
    cycles = int(np.sum(pack_cycles(classify(d))))
    assert cycles == len(beats)
    return beats, {"zero": int(c[0]), "low": int(c[1]), "full": int(c[2]), "cycles": cycles}


def _int8(x):
    return np.clip(x, -128, 127).astype(np.int64)


def random_layer(rng, rows, k, mode, offset, sparse=False, n_in=8):
    """A layer whose differences mix zero, low and full classes and corners."""
    cur = rng.integers(-128, 128, size=(rows, k))
    kind = rng.choice(3, size=(rows, k), p=[0.45, 0.45, 0.10])
    delta = np.where(kind == 0, 0, np.where(kind == 1, rng.integers(-8, 8, size=(rows, k)),
                                            rng.integers(-255, 256, size=(rows, k))))
    if mode == "spatial":  # rows that resemble the row `offset` beats before
        flat = cur.reshape(-1)
        off = offset * n_in
        for p in range(off, flat.size):
            flat[p] = flat[p - off] + delta.reshape(-1)[p]
        cur = _int8(flat.reshape(rows, k))
    elif mode == "act":
        cur = _int8(np.where(kind == 0, 0, np.where(kind == 1, delta, cur)))
    prev = _int8(cur - delta)
    if sparse:  # at most two non-zero differences per 8-element beat
        keep = np.zeros((rows, k), dtype=bool)
        for r in range(rows):
            for b in range(0, k, 8):
                keep[r, b + rng.choice(8, size=rng.integers(0, 3), replace=False)] = True
        prev = np.where(keep, prev, cur)
    corners = rng.random((rows, k)) < (0 if sparse else 0.03)
    cur = np.where(corners, rng.choice([-128, 127], size=(rows, k)), cur)
    if rows > 2:
        cur[1] = prev[1] if mode == "temporal" else 0  # an all-zero row (act/temporal)
    return {"mode": mode, "offset": offset, "cur": cur, "prev": prev}


def exhaustive_layers(rng, k, rows_per_layer):
    cur, prev = np.meshgrid(np.arange(-128, 128), np.arange(-128, 128), indexing="ij")
    order = rng.permutation(cur.size)
    cur, prev = cur.reshape(-1)[order].reshape(-1, k), prev.reshape(-1)[order].reshape(-1, k)
    return [{"mode": "temporal", "offset": 1, "cur": cur[r:r + rows_per_layer], "prev": prev[r:r + rows_per_layer]}
            for r in range(0, cur.shape[0], rows_per_layer)]


async def _start(dut):
    tb = TB(dut)
    dut.spatial_offset.value = 1
    await tb.reset(idle=("i__valid", "o__ready", "stats__ready"))
    return tb


async def _run(dut, layers, *, idle=0.0, backpressure=0.0, rnd=None):
    p = env.params()
    codec = Codec(p)
    tb = await _start(dut)
    sink = StreamSink(tb, "o", backpressure=backpressure, rng=rnd, decode=codec.decode)
    stats = StreamSink(tb, "stats", backpressure=backpressure, rng=rnd, decode=codec.stats.unpack)
    src = StreamSource(tb, "i", idle=idle, rng=rnd)
    want_o, want_s = [], []
    for layer in layers:
        beats, st = expected(layer, codec.n)
        want_o += beats
        want_s.append(st)
        dut.spatial_offset.value = layer["offset"]  # held while the layer streams in
        src.send(codec.beats(layer))
        await src.wait_drained(timeout=100 * len(beats) + 1000)
    await sink.wait_for(len(want_o), timeout=20 * len(want_o) + 1000)
    await stats.wait_for(len(want_s), timeout=1000)
    await tb.cycles(30)
    Scoreboard("ditto_encoder.o", want_o).check(sink.items)
    Scoreboard("ditto_encoder.stats", want_s).check(stats.items)
    return src, sink, want_o


@cocotb.test()
async def lanes_match_golden(dut):
    """Output lanes and per-layer stats equal the golden model under random
    gaps and back-pressure; the beat count equals ``pack_cycles``."""
    a = env.args()
    rnd, rng = env.rngs()
    k, rows = a.get("k", 64), a.get("rows", 16)
    if a.get("stream") == "exhaustive":
        layers = exhaustive_layers(rng, k, rows)
    else:
        max_off = env.params()["MAX_OFFSET"]
        layers = []
        for n in range(a.get("layers", 9)):
            mode = ("act", "temporal", "spatial")[n % 3]
            offset = int(rng.choice([1, k // 8, max_off, rng.integers(1, max_off + 1)]))
            layers.append(random_layer(rng, int(rng.integers(1, rows + 1)) if n % 4 == 3 else rows, k, mode, offset))
    await _run(dut, layers, idle=a.get("idle", 0.0), backpressure=a.get("backpressure", 0.0), rnd=rnd)


@cocotb.test()
async def cycles_output_bound(dut):
    """Dense differences, ready sinks: one output beat every cycle from 1
    cycle after the first input beat, so the run takes pack_cycles + 1 cycles."""
    rnd, rng = env.rngs(1)
    layer = random_layer(rng, 24, 64, "temporal", 1)
    layer["prev"] = np.where(layer["prev"] == layer["cur"], _int8(layer["cur"] - 1), layer["prev"])
    layer["prev"][layer["prev"] == layer["cur"]] += 1
    src, sink, want = await _run(dut, [layer], rnd=rnd)
    assert np.all(np.diff(sink.cycles) == 1), "output beat missing in a cycle"
    assert sink.cycles[0] == src.accepted[0] + 1, f"first output {sink.cycles[0] - src.accepted[0]} cycles after input"
    total = sink.cycles[-1] - src.accepted[0] + 1
    env.report(output_bound_cycles=total, pack_cycles=len(want))
    assert total == len(want) + 1, f"{total} cycles, model pack_cycles + 1 = {len(want) + 1}"


@cocotb.test()
async def input_ii_sparse(dut):
    """At most two non-zero differences per beat, ready sinks: the output
    keeps up, so the input takes a beat every cycle (II = 1), in every mode."""
    rnd, rng = env.rngs(2)
    layers = [random_layer(rng, 32, 64, "temporal", 1, sparse=True)]
    src, sink, want = await _run(dut, layers, rnd=rnd)
    assert np.all(np.diff(src.accepted) == 1), "input stalled although the output keeps up"
