"""Testbench of the streaming FP units (``fp16_mul``, ``fp32_add``,
``fp16_to_int8``, ``int32_to_fp16``, ``fp32_to_fp16``, ``fp16_to_fp32``)
against ``golden.fp16``.

The unit under test is the one the runner built (``DITGEN_UNIT``). Vectors
are made here from the run's seed, ``LANES`` of them per beat, and every
output bit pattern is compared with the golden model (NaN included: both sides
produce the canonical NaN). Arguments (``sim.env.args()``):

* ``random`` -- number of seeded random vectors (default 20,000), drawn from
  mixtures that reach the hard cases (near exponents and cancellation for the
  adder, subnormal ranges, rounding midpoints);
* ``exhaustive`` -- also the unit's exhaustive or boundary set (default true;
  a list of unit names: those units only; the boundary integers of
  ``int32_to_fp16`` and the binary32 corners of ``fp32_to_fp16`` are always in):
  every binary16 pattern for ``fp16_to_int8`` (under several scales) and
  ``fp16_mul`` (times corners); every binary16 value and the midpoints to its
  neighbours, and one ulp either side, for ``fp32_to_fp16``; every integer in
  [-70000, 70000] for ``int32_to_fp16``; every binary16 pattern for
  ``fp16_to_fp32``; the corner cross product for the binary units;
* ``idle`` / ``backpressure`` -- probability of a gap before an input beat
  and of ``ready`` low at the output (default 0.2 / 0.3).

The unit is the one the runner built, or a bundle holding every FP unit with
its ports prefixed by the unit's name (one Verilator build for all six),
whose units then run at the same time. Payloads are packed and unpacked with
the layouts of the unit's signature (``sim.stream.TB``): a source drives
random payloads on idle cycles, a protocol checker watches every output, and
every output beat is scoreboarded. The result reports the vector count of
each unit.
"""

import os

import cocotb
import numpy as np

from golden import fp16 as g
from sim import env
from sim.stream import TB


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
    parts = [x, np.array([-(1 << 31), (1 << 31) - 1, 65504, 65519, 65520, 65535, 65536, -65520, -65519,
                          2049, 2051, 4097, 4098, 4099], dtype=np.int64)]
    if exhaustive:
        parts.append(np.arange(-70000, 70001, dtype=np.int64))
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
        parts += [pos, pos | 0x80000000]
    parts.append(g.corners32())
    return {"x": np.concatenate(parts).astype(np.uint32)}


def vectors_fp16_to_fp32(rng, n, exhaustive):
    parts = [_u16(rng, n), g.corners16()]
    if exhaustive:
        parts.append(np.arange(1 << 16, dtype=np.uint32).astype(np.uint16))
    return {"x": np.concatenate(parts).astype(np.uint16)}


# unit: the golden function, and the payload fields in its argument order
# (a unit with one operand has an array payload: its one "field" is None).
UNITS = {
    "fp16_mul": (g.fp16_mul, ("a", "b")),
    "fp32_add": (g.fp32_add, ("a", "b")),
    "fp16_to_int8": (g.fp16_to_int8, ("data", "scale")),
    "int32_to_fp16": (g.int32_to_fp16, (None,)),
    "fp32_to_fp16": (g.fp32_to_fp16, (None,)),
    "fp16_to_fp32": (g.fp16_to_fp32, (None,)),
}


def make_vectors(unit, rng, n, exhaustive, lanes):
    """``{field: values}`` of one unit, in the golden function's argument order."""
    if unit == "fp16_to_int8":
        return vectors_fp16_to_int8(rng, n, exhaustive, lanes)
    v = globals()[f"vectors_{unit}"](rng, n, exhaustive)
    return {None: v["x"]} if "x" in v else v


def _beats(v, lanes):
    """The payload of every beat: each field's next ``lanes`` values (zero
    padded at the end); ``fp16_to_int8``'s scale is its first lane's."""
    count = len(next(iter(v.values())))
    beats = -(-count // lanes)
    cols = {}
    for name, x in v.items():
        x = np.asarray(x)
        x = np.concatenate([x, np.zeros(beats * lanes - count, x.dtype)]).reshape(beats, lanes)
        cols[name] = x[:, 0] if name == "scale" else x
    if None in cols:
        return [row for row in cols[None]]
    return [{name: col[i] for name, col in cols.items()} for i in range(beats)]


class FPUnitTB(TB):
    """One FP unit, or every unit of the bundle at once (ports ``<unit>_i``/``<unit>_o``)."""

    def __init__(self, dut, targets, **kw):
        super().__init__(dut, **kw)
        self.targets = targets  # {unit: port prefix}
        self.vectors = {}

    def queue(self, unit, v, lanes):
        prefix = self.targets[unit]
        fn, fields = UNITS[unit]
        want = np.asarray(fn(*(v[f] for f in fields)))
        # As the sink unpacks it: unsigned lanes as their bit patterns, INT8 signed.
        want = want.astype(np.int64) if want.dtype.kind == "i" else want.view(f"u{want.itemsize}").astype(np.int64)
        count = want.size
        pad = -(-count // lanes) * lanes - count
        src = self.sources[f"{prefix}i"]
        src.send(_beats(v, lanes))
        self.sinks[f"{prefix}o"].expect(list(np.concatenate([want, np.zeros(pad, np.int64)]).reshape(-1, lanes)))
        self.vectors[unit] = (v, want)

    def compare(self, unit):
        """Every vector bit for bit, with the inputs of the first mismatches."""
        v, want = self.vectors[unit]
        items = self.sinks[f"{self.targets[unit]}o"].items
        got = np.concatenate(items)[:want.size] if items else np.zeros(0, np.int64)
        assert got.size == want.size, f"{unit}: {len(items)} beats for {want.size} vectors"
        bad = np.flatnonzero(got != want)
        if bad.size:
            def hexed(x, i):
                x = np.asarray(x)
                return f"{int(x[i].astype(np.int64)) & ((1 << (8 * x.itemsize)) - 1):#x}"

            show = [f"  vector {i}: in " + ", ".join(f"{k or 'x'}={hexed(x, i)}" for k, x in v.items())
                    + f" -> got {int(got[i]) & 0xFFFFFFFF:#x}, want {int(want[i]) & 0xFFFFFFFF:#x}"
                    for i in bad[:10]]
            raise AssertionError(f"{unit}: {bad.size} of {want.size} vectors differ:\n" + "\n".join(show))
        return int(want.size)


@cocotb.test()
async def lanes_match_golden(dut):
    """One FP unit (``DITGEN_UNIT``), or a bundle of all of them whose ports
    are prefixed with the unit names (``fp16_mul_i__valid``, ...), all at once."""
    unit = os.environ["DITGEN_UNIT"]
    p, args = env.params(), env.args()
    lanes = p["LANES"]
    rnd, rng = env.rngs()
    targets = {unit: ""} if unit in UNITS else {u: f"{u}_" for u in UNITS}
    tb = FPUnitTB(dut, targets, idle=float(args.get("idle", 0.2)),
                  backpressure=float(args.get("backpressure", 0.3)), rng=rnd)
    await tb.reset()
    for name in targets:
        exhaustive = args.get("exhaustive", True)
        exhaustive = name in exhaustive if isinstance(exhaustive, list) else bool(exhaustive)
        v = make_vectors(name, rng, int(args.get("random", 20_000)), exhaustive, lanes)
        tb.queue(name, v, lanes)
    longest = max(len(k.expected) for k in tb.sinks.values())
    await tb.drain(timeout=20 * longest + 100)
    await tb.cycles(8)  # an extra beat would show up here
    vectors = {name: tb.compare(name) for name in targets}
    tb.check()
    env.report(vectors=vectors)
