"""Testbench of the streaming FP units (``fp16_mul``, ``fp32_add``,
``fp16_to_int8``, ``int32_to_fp16``, ``fp32_to_fp16``) against ``golden.fp16``.

The unit under test is the one the runner built (``DITGEN_UNIT``). Vectors
are made here from the run's seed, ``LANES`` of them per beat, and every
output bit pattern is compared with the golden model (NaN included: both sides
produce the canonical NaN). Arguments (``sim.env.args()``):

* ``random`` -- number of seeded random vectors (default 20,000), drawn from
  mixtures that reach the hard cases (near exponents and cancellation for the
  adder, subnormal ranges, rounding midpoints);
* ``exhaustive`` -- also the unit's exhaustive or boundary set (default true):
  every binary16 pattern for ``fp16_to_int8`` (under several scales) and
  ``fp16_mul`` (times corners); every binary16 value and the midpoints to its
  neighbours, and one ulp either side, for ``fp32_to_fp16``; every integer in
  [-70000, 70000] for ``int32_to_fp16``; the corner cross product for the
  binary units;
* ``idle`` / ``backpressure`` -- probability of a gap before an input beat
  and of ``ready`` low at the output (default 0.2 / 0.3).

The unit is the one the runner built, or a bundle holding every FP unit with
its ports prefixed by the unit's name (one Verilator build for all five).
The result reports the vector count of each unit.
"""

import os

import cocotb
import numpy as np

from golden import fp16 as g
from sim import env
from sim.stream_legacy import TB, StreamSink, StreamSource


def _u32(rng, n):
    return rng.integers(0, 1 << 32, size=n, dtype=np.uint64).astype(np.uint32)


def _u16(rng, n):
    return rng.integers(0, 1 << 16, size=n, dtype=np.uint32).astype(np.uint16)


def _cross(x, y):
    a, b = np.meshgrid(x, y, indexing="ij")
    return a.ravel(), b.ravel()


def vectors_fp16_mul(rng, n, exhaustive):
    a, b = _u16(rng, n), _u16(rng, n)
    # Small exponents: products near the bottom of the range, subnormal operands.
    k = n // 4
    a[:k] &= 0x87FF
    if exhaustive:
        every = np.arange(1 << 16, dtype=np.uint16)
        ca, cb = _cross(g.corners16(), g.corners16())
        a = np.concatenate([a, every, ca])
        b = np.concatenate([b, rng.choice(g.corners16(), size=every.size), cb])
    return {"a": a, "b": b}


def vectors_fp32_add(rng, n, exhaustive):
    a = _u32(rng, n)
    b = _u32(rng, n)
    part = np.array_split(np.arange(n), 6)
    # Exponents within a few of each other: real alignment and rounding.
    i = part[0]
    b[i] = (b[i] & 0x807FFFFF) | (((a[i] >> 23 & 0xFF) + rng.integers(-3, 4, i.size)).clip(0, 254).astype(np.uint32) << 23)
    # Near cancellation: -a perturbed in the low bits.
    i = part[1]
    b[i] = (a[i] ^ 0x80000000) + rng.integers(-8, 9, i.size).astype(np.uint32)
    # Subnormals and the smallest normals.
    i = part[2]
    a[i] &= 0x80FFFFFF
    b[i] &= 0x80FFFFFF
    # Products of binary16 values (the PE's addends) against partial sums.
    i = part[3]
    a[i] = g.fp16_mul(_u16(rng, i.size), _u16(rng, i.size))
    b[i] = g.fp16_mul(_u16(rng, i.size), _u16(rng, i.size))
    # Near the top: overflow to infinity.
    i = part[4]
    a[i] = (a[i] & 0x80FFFFFF) | 0x7F000000
    b[i] = (b[i] & 0x80FFFFFF) | 0x7F000000
    if exhaustive:
        ca, cb = _cross(g.corners32(), g.corners32())
        a = np.concatenate([a, ca])
        b = np.concatenate([b, cb])
    return {"a": a, "b": b}


SCALES = np.array([0x3C00, 0x3800, 0x4000, 0x5BF8, 0x2E66, 0x0001, 0x7BFF, 0xBC00, 0x0000, 0x7C00,
                   0x7E00, 0x8000, 0x4D00, 0x3555], dtype=np.uint16)


def vectors_fp16_to_int8(rng, n, exhaustive, lanes):
    # One scale per beat: the scale lane repeats the beat's scale.
    parts = [_u16(rng, n)]
    if exhaustive:
        every = np.arange(1 << 16, dtype=np.uint16)
        parts += [every, every]
    x = np.concatenate(parts)
    beats = -(-x.size // lanes)
    x = np.concatenate([x, np.zeros(beats * lanes - x.size, np.uint16)])
    n_random = -(-n // lanes)
    scale = np.concatenate([_u16(rng, n_random) & 0xBFFF,  # |scale| < 2: most codes in range
                            np.full(beats - n_random, 0x3C00, np.uint16)])
    if exhaustive:
        # The second exhaustive pass cycles through the corner scales.
        start = n_random + (1 << 16) // lanes
        scale[start:] = SCALES[np.arange(beats - start) % SCALES.size]
    return {"data": x, "scale": np.repeat(scale, lanes)}


def vectors_int32_to_fp16(rng, n, exhaustive):
    x = rng.integers(-(1 << 31), 1 << 31, size=n, dtype=np.int64)
    # Magnitudes near 2^16 and small ones, where rounding and overflow happen.
    x[: n // 3] >>= rng.integers(12, 31, n // 3)
    parts = [x]
    if exhaustive:
        parts += [np.arange(-70000, 70001, dtype=np.int64),
                  np.array([-(1 << 31), (1 << 31) - 1, 65504, 65519, 65520, 65535, 65536, -65520, -65519,
                            2049, 2051, 4097, 4098, 4099], dtype=np.int64)]
    return {"x": np.concatenate(parts).astype(np.int32)}


def vectors_fp32_to_fp16(rng, n, exhaustive):
    x = _u32(rng, n)
    # Exponents around the binary16 range (E = 102 ... 143).
    k = n // 2
    x[:k] = (x[:k] & 0x807FFFFF) | (rng.integers(98, 145, k).astype(np.uint32) << 23)
    parts = [x]
    if exhaustive:
        h = np.arange(0x7C00, dtype=np.uint16)  # every finite non-negative binary16
        lo = g.f16(h).astype(np.float64)
        hi = g.f16(h + 1).astype(np.float64)  # 0x7C00 is +inf: the top midpoint is 65520
        hi[-1] = 65536.0
        mid = ((lo + hi) / 2).astype(np.float32).view(np.uint32)
        exact = g.f16(h).astype(np.float32).view(np.uint32)
        pos = np.concatenate([exact, mid, mid - 1, mid + 1, exact + 1])
        parts += [pos, pos | 0x80000000, g.corners32()]
    return {"x": np.concatenate(parts).astype(np.uint32)}


# unit: (input fields in payload order with their widths, output lane width, signed output)
UNITS = {
    "fp16_mul": ([("a", 16), ("b", 16)], 32, False),
    "fp32_add": ([("a", 32), ("b", 32)], 32, False),
    "fp16_to_int8": ([("data", 16), ("scale", 16)], 8, True),
    "int32_to_fp16": ([("x", 32)], 16, False),
    "fp32_to_fp16": ([("x", 32)], 16, False),
}


def golden(unit, v):
    if unit == "fp16_mul":
        return g.fp16_mul(v["a"], v["b"])
    if unit == "fp32_add":
        return g.fp32_add(v["a"], v["b"])
    if unit == "fp16_to_int8":
        return g.fp16_to_int8(v["data"], v["scale"])
    if unit == "int32_to_fp16":
        return g.int32_to_fp16(v["x"])
    return g.fp32_to_fp16(v["x"])


def make_vectors(unit, rng, n, exhaustive, lanes):
    if unit == "fp16_to_int8":
        return vectors_fp16_to_int8(rng, n, exhaustive, lanes)
    return globals()[f"vectors_{unit}"](rng, n, exhaustive)


def _words(fields, v, lanes):
    """One payload integer per beat: each field's lanes (lane 0 lowest), fields in order.

    ``fp16_to_int8``'s scale is one value per beat (its first lane's)."""
    count = len(next(iter(v.values())))
    beats = -(-count // lanes)
    chunks = []
    for name, width in fields:
        x = np.zeros(beats * lanes, dtype=np.uint16 if width == 16 else np.uint32)
        x[:count] = np.asarray(v[name]).view(np.uint16 if width == 16 else np.uint32)
        x = x.reshape(beats, lanes)
        if name == "scale":
            x = x[:, :1]
        chunks.append(x)
    return [int.from_bytes(b"".join(c[i].tobytes() for c in chunks), "little") for i in range(beats)]


async def run_unit(tb, unit, prefix, lanes, args, rnd, rng):
    """Stream one unit's vectors through the ports ``<prefix>i`` / ``<prefix>o``; check every bit."""
    fields, out_bits, _signed = UNITS[unit]
    v = make_vectors(unit, rng, int(args.get("random", 20_000)), bool(args.get("exhaustive", True)), lanes)
    count = len(next(iter(v.values())))
    want = golden(unit, v)
    words = _words(fields, v, lanes)
    out_dtype = {8: np.uint8, 16: np.uint16, 32: np.uint32}[out_bits]
    sink = StreamSink(tb, f"{prefix}o", rng=rnd, backpressure=float(args.get("backpressure", 0.3)))
    src = StreamSource(tb, f"{prefix}i", rng=rnd, idle=float(args.get("idle", 0.2)))
    src.send(words)
    await sink.wait_for(len(words), timeout=20 * len(words) + 100)
    await tb.cycles(8)  # an extra beat would show up here
    assert len(sink.items) == len(words), f"{unit}: {len(sink.items)} beats for {len(words)}"
    sink.backpressure = 1.0  # park it: later units run on other ports
    nbytes = lanes * out_bits // 8
    got = np.frombuffer(b"".join(int(w).to_bytes(nbytes, "little") for w in sink.items), dtype=out_dtype)[:count]
    want_bits = np.asarray(want).view(out_dtype)
    bad = np.flatnonzero(got != want_bits)
    if bad.size:
        def hexed(x, i):
            x = np.asarray(x)
            return f"{int(x[i].astype(np.int64)) & ((1 << (8 * x.itemsize)) - 1):#x}"

        show = [f"  vector {i}: in " + ", ".join(f"{k}={hexed(x, i)}" for k, x in v.items())
                + f" -> got {int(got[i]):#x}, want {int(want_bits[i]):#x}" for i in bad[:10]]
        raise AssertionError(f"{unit}: {bad.size} of {count} vectors differ:\n" + "\n".join(show))
    return int(count)


@cocotb.test()
async def lanes_match_golden(dut):
    """One FP unit (``DITGEN_UNIT``), or a bundle of all of them whose ports
    are prefixed with the unit names (``fp16_mul_i__valid``, ...), one after
    the other."""
    unit = os.environ["DITGEN_UNIT"]
    p, args = env.params(), env.args()
    lanes = p["LANES"]
    rnd, rng = env.rngs()
    targets = [(unit, "")] if unit in UNITS else [(u, f"{u}_") for u in UNITS]
    tb = TB(dut)
    await tb.reset(idle=[f"{pre}i__valid" for _, pre in targets] + [f"{pre}o__ready" for _, pre in targets])
    vectors = {}
    for name, prefix in targets:
        vectors[name] = await run_unit(tb, name, prefix, lanes, args, rnd, rng)
    env.report(vectors=vectors)
