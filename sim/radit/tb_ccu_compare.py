"""Testbench of ``ccu_compare`` against ``golden.radit.code_distance`` and
``golden.radit.compress_fp16``.

Arguments (``sim.env.args()``): ``blocks`` (random blocks, default 200),
``max_beats`` (longest random block, default 24), ``idle`` (gap probability on
both input streams), ``backpressure`` (on both output streams).
"""

import cocotb
import numpy as np

from golden.radit import code_distance, compress_fp16, delta_bits
from sim import env
from sim.stream import TB, Scoreboard, StreamSink, StreamSource, lanes_pack, lanes_unpack

_POP4 = np.array([bin(v).count("1") for v in range(16)])


def _fp16(rng, shape):
    """FP16 patterns: half anywhere in the 65,536 codes, half in the paper's (−16, 16)."""
    anywhere = rng.integers(0, 1 << 16, size=shape, dtype=np.uint32).astype(np.uint16)
    inside = (rng.standard_normal(shape) * rng.choice([0.01, 0.5, 4.0], size=shape)).astype(np.float16)
    return np.where(rng.random(shape) < 0.5, anywhere, inside.view(np.uint16))


def _masks_with_bits(rng, bits):
    """A 4-bit XOR mask with ``bits`` ones for every entry of ``bits``."""
    out = np.zeros(bits.shape, dtype=np.uint8)
    for k in range(5):
        choices = np.array([v for v in range(16) if _POP4[v] == k], dtype=np.uint8)
        sel = bits == k
        out[sel] = rng.choice(choices, size=int(sel.sum()))
    return out


def _block(rng, beats, lanes, kind):
    """(FP16 beats, previous-code beats) of one block of the given kind."""
    cur = _fp16(rng, (beats, lanes))
    codes = compress_fp16(cur)
    if kind == "equal":
        prev = codes
    elif kind == "different":
        prev = codes ^ 0xF
    elif kind == "random":
        prev = rng.integers(0, 16, size=codes.shape).astype(np.uint8)
    else:  # similar: a few elements change by one or two code bits
        bits = np.where(rng.random(codes.shape) < 0.15, rng.integers(1, 3, size=codes.shape), 0)
        prev = codes ^ _masks_with_bits(rng, bits)
    return cur, prev.astype(np.uint8)


def _exact_block(rng, lanes, target):
    """A block whose Δ is exactly ``target`` (spread over as few beats as possible)."""
    beats = max(1, -(-target // (4 * lanes)))
    cur = _fp16(rng, (beats, lanes))
    bits = np.zeros(beats * lanes, dtype=np.int64)
    bits[: target // 4] = 4
    if target % 4:
        bits[target // 4] = target % 4
    rng.shuffle(bits)
    prev = compress_fp16(cur) ^ _masks_with_bits(rng, bits.reshape(beats, lanes))
    return cur, prev.astype(np.uint8)


def _blocks(rng, p, a):
    lanes = p["LANES"]
    limit = (1 << delta_bits(p["MAX_ELEMENTS"])) - 1
    out = []
    # Adversarial first: single-beat blocks of each kind, then the counter's
    # saturation bound from both sides, then a small block after saturation.
    for kind in ("equal", "different", "random", "similar"):
        out.append(_block(rng, 1, lanes, kind))
    if limit <= 4 * lanes * 64:  # small enough to reach in co-simulation
        for target in (limit - 1, limit, limit + 1, limit + 4 * lanes + 3):
            out.append(_exact_block(rng, lanes, target))
        out.append(_block(rng, 2, lanes, "different"))
        over = -(-(limit + 1) // (4 * lanes)) + 3  # all bits differ, well past the bound
        out.append(_block(rng, over, lanes, "different"))
        out.append(_block(rng, 1, lanes, "equal"))
    kinds = ["equal", "different", "random", "similar", "similar"]
    for _ in range(a.get("blocks", 200)):
        beats = int(rng.integers(1, a.get("max_beats", 24) + 1))
        out.append(_block(rng, beats, lanes, kinds[int(rng.integers(len(kinds)))]))
    return out, limit


@cocotb.test()
async def delta_and_codes_match_golden(dut):
    """Random, all-equal, all-different and saturating blocks under random gaps
    on both inputs and back-pressure on both outputs: every code beat and every
    Δ equal the golden model, none lost, duplicated or reordered."""
    p, a = env.params(), env.args()
    lanes = p["LANES"]
    rnd, rng = env.rngs()
    blocks, limit = _blocks(rng, p, a)
    tb = TB(dut)
    await tb.reset(idle=("i__valid", "prev__valid", "codes__ready", "delta__ready"))
    bp = a.get("backpressure", 0.0)
    codes_sink = StreamSink(tb, "codes", backpressure=bp, rng=rnd, decode=lambda w: lanes_unpack(w, 4, lanes))
    delta_sink = StreamSink(tb, "delta", backpressure=bp, rng=rnd)
    src = StreamSource(tb, "i", idle=a.get("idle", 0.0), rng=rnd)
    prev = StreamSource(tb, "prev", idle=a.get("idle", 0.0), rng=rnd)
    last_bit = 16 * lanes
    want_codes, want_delta, i_words, prev_words = [], [], [], []
    for cur, ref in blocks:
        codes = compress_fp16(cur)
        want_codes.extend(codes)
        want_delta.append(code_distance(ref, codes, limit=limit))
        for b in range(len(cur)):
            i_words.append(lanes_pack(cur[b], 16) | (int(b == len(cur) - 1) << last_bit))
            prev_words.append(lanes_pack(ref[b], 4))
    exact = [code_distance(ref, compress_fp16(cur)) for cur, ref in blocks]
    assert sum(d >= limit for d in exact) >= 3 or limit > 4 * lanes * 64, "saturation not exercised"
    src.send(i_words)
    prev.send(prev_words)
    await codes_sink.wait_for(len(want_codes), timeout=30 * len(i_words) + 200)
    await delta_sink.wait_for(len(want_delta), timeout=30 * len(i_words) + 200)
    await tb.cycles(20)
    Scoreboard("ccu_compare.codes", want_codes).check(codes_sink.items)
    Scoreboard("ccu_compare.delta", want_delta).check(delta_sink.items)
    env.report(beats=len(i_words), blocks=len(blocks), saturated=sum(d >= limit for d in exact))


@cocotb.test()
async def initiation_interval_one(dut):
    """With both sources always valid and both sinks always ready, one beat per
    cycle enters; codes lag 1 cycle; each Δ appears 1 cycle after its last beat."""
    p = env.params()
    lanes = p["LANES"]
    _, rng = env.rngs(1)
    blocks = [_block(rng, int(n), lanes, "random") for n in rng.integers(1, 9, size=40)]
    tb = TB(dut)
    await tb.reset(idle=("i__valid", "prev__valid", "codes__ready", "delta__ready"))
    codes_sink = StreamSink(tb, "codes")
    delta_sink = StreamSink(tb, "delta")
    src = StreamSource(tb, "i")
    prev = StreamSource(tb, "prev")
    i_words, prev_words, last_index = [], [], []
    for cur, ref in blocks:
        for b in range(len(cur)):
            i_words.append(lanes_pack(cur[b], 16) | (int(b == len(cur) - 1) << (16 * lanes)))
            prev_words.append(lanes_pack(ref[b], 4))
        last_index.append(len(i_words) - 1)
    src.send(i_words)
    prev.send(prev_words)
    await delta_sink.wait_for(len(blocks), timeout=10 * len(i_words))
    await codes_sink.wait_for(len(i_words), timeout=100)
    n = len(i_words)
    assert src.accepted == prev.accepted, "the two inputs were not consumed together"
    assert np.all(np.diff(src.accepted) == 1), "input stalled with ready sinks"
    assert all(c - s == 1 for c, s in zip(codes_sink.cycles, src.accepted)), "codes latency is not 1"
    assert codes_sink.cycles[-1] - src.accepted[0] + 1 == n + 1, "beats took longer than n + 1 cycles"
    lasts = [src.accepted[k] + 1 for k in last_index]
    assert delta_sink.cycles == lasts, f"Δ cycles {delta_sink.cycles[:5]}..., expected {lasts[:5]}..."
