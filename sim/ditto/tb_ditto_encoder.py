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
from sim.stream import TB, check_timing, reset_under_traffic

MODES = {"act": 0, "temporal": 1, "spatial": 2}


class EncoderTB(TB):
    """``i`` (cur/prev INT8 lanes, mode, row and layer ends) and the
    ``spatial_offset`` input; ``o`` packed lanes and one ``stats`` beat per
    layer out. Lane counts from the layouts."""

    def __init__(self, dut, **kw):
        super().__init__(dut, idle_values={"spatial_offset": 1}, **kw)
        self.n = self.i.packer["cur"].length
        self.operand = self.o.packer["lanes"].elem["nib"].width + 1   # nib plus its sign extension bit
        self.o.decode = self.decode

    def decode(self, beat):
        """An ``o`` beat in golden.ditto.encode's form."""
        ops = []
        for lane in beat["lanes"]:
            v = lane["nib"] | lane["ext"] << (self.operand - 1)
            ops.append(v - (1 << self.operand) if lane["ext"] else v)
        return {"operand": np.array(ops), "index": np.array([x["index"] for x in beat["lanes"]]),
                "valid": np.array([x["valid"] for x in beat["lanes"]]),
                "hi": np.array([beat["hi"] & 1, beat["hi"] >> 1 & 1]), "last": beat["last"]}

    def beats(self, layer):
        """Input beats of a layer: rows × K elements, ``n`` per beat."""
        cur, prev = layer["cur"], layer["prev"]
        rows, k = cur.shape
        per_row = k // self.n
        out = []
        for r in range(rows):
            for b in range(per_row):
                sl = slice(b * self.n, (b + 1) * self.n)
                last = int(b == per_row - 1)
                out.append({"cur": cur[r, sl], "prev": prev[r, sl], "mode": MODES[layer["mode"]], "last": last,
                            "layer_last": int(last and r == rows - 1)})
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


async def _run(dut, layers, *, idle=0.0, backpressure=0.0, rnd=None):
    tb = EncoderTB(dut, idle=idle, backpressure=backpressure, rng=rnd)
    await tb.reset()
    want_o = await _layers(tb, layers)
    await tb.finish(timeout=20 * len(want_o) + 1000, quiet=30)
    return tb.i, tb.o, want_o


async def _layers(tb, layers):
    """Stream layers one after the other (``spatial_offset`` is held while a layer streams in)."""
    want_o = []
    for layer in layers:
        beats, st = expected(layer, tb.n)
        want_o += beats
        tb.o.expect(beats)
        tb.stats.expect([st])
        await tb.i.wait_drained(timeout=100 * len(beats) + 1000)
        tb.dut.spatial_offset.value = layer["offset"]
        tb.i.send(tb.beats(layer))
    return want_o


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
    check_timing("ditto_encoder.o", src.accepted[:1], sink.cycles[:1], latency=1)
    check_timing("ditto_encoder.o", src.accepted, sink.cycles, output_ii=1)
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
    check_timing("ditto_encoder.i", src.accepted, sink.cycles, input_ii=1)


@cocotb.test()
async def reset_mid_layer(dut):
    """Reset with a layer part-way in (queue and spatial history filled), then
    layers that must pass: no state survives a reset (the spatial history is
    refilled by the layer itself)."""
    rnd, rng = env.rngs(3)
    tb = EncoderTB(dut, idle=0.2, backpressure=0.3, rng=rnd)
    await tb.reset()
    layers = [random_layer(rng, 6, 64, mode, 1) for mode in ("temporal", "spatial")]

    async def transaction(tb):
        await _layers(tb, layers)  # returns once the second layer is queued

    await reset_under_traffic(tb, transaction, fraction=0.3)
