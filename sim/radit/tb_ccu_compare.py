"""Testbench of ``ccu_compare`` against ``golden.radit.code_distance`` and
``golden.radit.compress_fp16``.

Arguments (``sim.env.args()``): ``blocks`` (random blocks, default 200),
``max_beats`` (longest random block, default 24), ``idle`` (gap probability on
both input streams), ``backpressure`` (on both output streams).
"""

import cocotb
import numpy as np

from golden.radit import code_distance, compress_fp16
from sim import env
from sim.stream import TB, check_timing, reset_under_traffic

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


def _blocks(rng, tb, a):
    lanes, limit = tb.lanes, tb.limit
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
    return out


class CompareTB(TB):
    """``i`` (FP16 beats, ``last``) and ``prev`` (reference codes) in, ``codes``
    and one ``delta`` per block out; lanes and the Δ counter's width from the layouts."""

    def __init__(self, dut, **kw):
        super().__init__(dut, **kw)
        self.lanes = self.i.packer["data"].length
        self.limit = self.delta.packer.max  # the saturating counter's bound

    def queue(self, blocks):
        """Queue whole blocks and their golden codes and Δ; returns the index of each block's last beat."""
        lasts = []
        for cur, ref in blocks:
            codes = compress_fp16(cur)
            self.codes.expect(codes)
            self.delta.expect([code_distance(ref, codes, limit=self.limit)])
            self.i.send({"data": cur[b], "last": int(b == len(cur) - 1)} for b in range(len(cur)))
            self.prev.send(ref)
            lasts.append(self.i.sent - 1)
        return lasts


@cocotb.test()
async def delta_and_codes_match_golden(dut):
    """Random, all-equal, all-different and saturating blocks under random gaps
    on both inputs and back-pressure on both outputs: every code beat and every
    Δ equal the golden model, none lost, duplicated or reordered."""
    a = env.args()
    rnd, rng = env.rngs()
    tb = CompareTB(dut, idle=a.get("idle", 0.0), backpressure=a.get("backpressure", 0.0), rng=rnd)
    await tb.reset()
    blocks = _blocks(rng, tb, a)
    exact = [code_distance(ref, compress_fp16(cur)) for cur, ref in blocks]
    assert sum(d >= tb.limit for d in exact) >= 3 or tb.limit > 4 * tb.lanes * 64, "saturation not exercised"
    tb.queue(blocks)
    await tb.finish(timeout=30 * tb.i.sent + 200)
    env.report(beats=tb.i.sent, blocks=len(blocks), saturated=sum(d >= tb.limit for d in exact))


@cocotb.test()
async def initiation_interval_one(dut):
    """With both sources always valid and both sinks always ready, one beat per
    cycle enters; codes lag 1 cycle; each Δ appears 1 cycle after its last beat."""
    _, rng = env.rngs(1)
    tb = CompareTB(dut)
    await tb.reset()
    blocks = [_block(rng, int(n), tb.lanes, "random") for n in rng.integers(1, 9, size=40)]
    lasts = tb.queue(blocks)
    await tb.finish(timeout=10 * tb.i.sent)
    assert tb.i.accepted == tb.prev.accepted, "the two inputs were not consumed together"
    check_timing("ccu_compare.codes", tb.i.accepted, tb.codes.cycles, latency=1, input_ii=1, output_ii=1)
    check_timing("ccu_compare.delta", [tb.i.accepted[k] for k in lasts], tb.delta.cycles, latency=1)


@cocotb.test()
async def reset_mid_block(dut):
    """Reset with blocks in flight (the Δ counter part-way through a block),
    then complete blocks that must pass: the counter restarts from 0 (no
    state survives a reset)."""
    _, rng = env.rngs(2)
    tb = CompareTB(dut, idle=0.2, backpressure=0.3)
    await tb.reset()
    blocks = [_block(rng, int(n), tb.lanes, "random") for n in rng.integers(6, 12, size=6)]

    async def transaction(tb):
        tb.queue(blocks)

    await reset_under_traffic(tb, transaction)
