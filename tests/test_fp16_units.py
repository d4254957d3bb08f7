"""FP building blocks (docs/SPEC.md "FP16"): the golden FP functions against
NumPy and exact arithmetic, the streaming FP units' parameters, and every unit
bit-exactly against the golden model in co-simulation under random gaps and
back-pressure."""

from fractions import Fraction

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring

from golden import fp16 as g
from hdl import registry

# --------------------------------------------------------------------------
# Golden model against independent references


def _exact16(bits):
    """binary16 patterns as exact Fractions (None for inf/NaN)."""
    out = []
    for b in np.asarray(bits, dtype=np.uint16).tolist():
        e, f, s = (b >> 10) & 0x1F, b & 0x3FF, -1 if b >> 15 else 1
        out.append(None if e == 31 else s * Fraction((f | (1024 if e else 0)), 1 << 24) * (1 << max(e, 1)) / 2)
    return out


def test_fp16_values_decode_like_ieee():
    # The reference decoder agrees with NumPy's binary16 on every finite pattern.
    every = np.arange(1 << 16, dtype=np.uint16)
    ref = _exact16(every)
    vals = g.f16(every).astype(np.float64)
    assert all(r is None or Fraction(float(v)) == r for r, v in zip(ref, vals))


def test_golden_mul_is_exact_on_a_million_pairs():
    rng = np.random.default_rng(11)
    a = rng.integers(0, 1 << 16, 1_000_000, dtype=np.uint32).astype(np.uint16)
    b = rng.integers(0, 1 << 16, 1_000_000, dtype=np.uint32).astype(np.uint16)
    p = g.fp16_mul(a, b)
    # float64 multiplies binary16 values exactly too; the binary32 result must equal it.
    with np.errstate(all="ignore"):
        ref = g.f16(a).astype(np.float64) * g.f16(b).astype(np.float64)
    got = g.f32(p).astype(np.float64)
    nan = np.isnan(ref)
    assert np.array_equal(np.isnan(got), nan)
    assert np.array_equal(got[~nan], ref[~nan])
    assert (p[nan] == g.NAN32).all()
    # Subnormal x subnormal is a nonzero normal binary32 number.
    assert g.f32(g.fp16_mul(np.uint16(1), np.uint16(1)))[()] == np.float32(2.0 ** -48)


def test_golden_add_rounds_once_on_a_million_pairs():
    """binary32 sums against float64 sums rounded once to binary32 (exact:
    53 >= 2 * 24 + 2 bits, so the double rounding is innocuous)."""
    rng = np.random.default_rng(12)
    n = 1_000_000
    a = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    b = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    near = np.arange(n) % 3 == 0  # exponents within 2: real alignment and cancellation
    b[near] = (b[near] & 0x807FFFFF) | (((a[near] >> 23) & 0xFF).astype(np.int64) + rng.integers(-2, 3, near.sum())).clip(0, 254).astype(np.uint32) << 23
    s = g.fp32_add(a, b)
    with np.errstate(all="ignore"):
        ref = (g.f32(a).astype(np.float64) + g.f32(b).astype(np.float64)).astype(np.float32)
    refbits = g.bits32(ref)
    assert np.array_equal(s, refbits)
    assert (g.fp32_add(np.uint32(0x3F800000), np.uint32(0xBF800000)) == 0)  # x - x = +0
    assert (g.fp32_add(np.uint32(0x80000000), np.uint32(0x80000000)) == 0x80000000)  # -0 + -0
    assert (g.fp32_add(np.uint32(0x7F800000), np.uint32(0xFF800000)) == g.NAN32)
    assert (g.fp32_add(np.uint32(0x7F7FFFFF), np.uint32(0x73800000)) == 0x7F800000)  # overflow


def _rne(q: Fraction) -> int:
    fl = q.numerator // q.denominator
    rem = q - fl
    return fl + (1 if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and fl % 2) else 0)


def test_golden_quantizer_on_every_fp16_against_exact_rounding():
    every = np.arange(1 << 16, dtype=np.uint16)
    for scale in (0x3C00, 0x3555, 0x5BF8, 0x0001):
        got = g.fp16_to_int8(every, np.uint16(scale))
        s = _exact16([scale])[0]
        want = []
        for x in _exact16(every):
            if x is None:
                want.append(None)
                continue
            want.append(max(-128, min(127, _rne(x * s))))
        for i, w in enumerate(want):
            if w is None:
                b = int(every[i])
                assert got[i] == (0 if b & 0x3FF else (127 if b < 0x8000 else -128)), hex(b)
            else:
                assert got[i] == w, (hex(int(every[i])), hex(scale), int(got[i]), w)


def _nearest16(q: Fraction) -> int:
    """The binary16 pattern nearest to ``q`` (ties to even), inf beyond 65520."""
    sign = 0x8000 if q < 0 else 0
    q = abs(q)
    finite = _positive16
    lo, hi = 0, len(finite) - 1
    if q >= Fraction(65520):
        return sign | 0x7C00
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if finite[mid] <= q:
            lo = mid
        else:
            hi = mid
    d_lo, d_hi = q - finite[lo], finite[hi] - q
    pick = lo if d_lo < d_hi or (d_lo == d_hi and lo % 2 == 0) else hi
    return sign | pick


_positive16 = _exact16(np.arange(0x7C00, dtype=np.uint16))


def test_golden_conversions_to_fp16_round_once():
    rng = np.random.default_rng(13)
    ints = np.concatenate([rng.integers(-(1 << 31), 1 << 31, 3000), rng.integers(-70000, 70000, 3000),
                           [-(1 << 31), (1 << 31) - 1, 65519, 65520, -65520, 2049, 2051, 0]]).astype(np.int64)
    got = g.int32_to_fp16(ints)
    for x, h in zip(ints.tolist(), got.tolist()):
        want = _nearest16(Fraction(x))
        assert h == (0 if x == 0 else want), (x, hex(h), hex(want))
    f = rng.integers(0, 1 << 32, 3000, dtype=np.uint64).astype(np.uint32)
    f[:2000] = (f[:2000] & 0x807FFFFF) | (rng.integers(100, 145, 2000).astype(np.uint32) << 23)
    f = np.concatenate([f, g.corners32()])
    got = g.fp32_to_fp16(f)
    for b, h in zip(f.tolist(), got.tolist()):
        v = g.f32(np.uint32(b))[()]
        if np.isnan(v):
            assert h == 0x7E00
        elif np.isinf(v):
            assert h == (0x7C00 | (0x8000 if v < 0 else 0))
        else:
            want = _nearest16(Fraction(float(v)))
            if v == 0 or want & 0x7FFF == 0:
                want = 0x8000 if b >> 31 else 0  # signed zero keeps the sign
            assert h == want, (hex(b), hex(h), hex(want))


def test_golden_widening_is_exact_on_every_fp16():
    every = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    got = g.fp16_to_fp32(every)
    for b, x, w in zip(every.tolist(), _exact16(every), got.tolist()):
        if x is None:
            frac = b & 0x3FF
            assert w == (0x7FC00000 if frac else (0x7F800000 | (b >> 15) << 31)), hex(b)
        else:
            assert Fraction(float(g.f32(np.uint32(w))[()])) == x and w >> 31 == b >> 15, hex(b)


def test_int32_conversion_rejects_out_of_range():
    with pytest.raises(ValueError):
        g.int32_to_fp16([1 << 31])


# --------------------------------------------------------------------------
# RTL parameters

# A Verilator build costs C++ per lane and the testbench costs Python per beat:
# builds dominate, so the default set takes few lanes, the 10^6 run more.
LANES = 4
SLOW_LANES = 16

UNITS = ["fp16_mul", "fp32_add", "fp16_to_int8", "int32_to_fp16", "fp32_to_fp16", "fp16_to_fp32"]


@pytest.mark.parametrize("name", UNITS)
def test_units_validate_lanes(name):
    unit = registry.get(name)
    assert unit.group == "common"
    assert unit.component(lanes=np.int64(3)).lanes == 3
    with pytest.raises(TypeError, match="lanes"):
        unit.component(lanes=2.0)
    with pytest.raises(TypeError, match="lanes"):
        unit.component(lanes=True)
    with pytest.raises(ValueError, match="lanes"):
        unit.component(lanes=0)
    with pytest.raises(ValueError, match="lanes"):
        unit.component(lanes=257)
    with pytest.raises(AttributeError):
        unit.component(lanes=2).lanes = 3


# --------------------------------------------------------------------------
# Co-simulation: every unit, exhaustive or boundary sets + seeded random



@registry.unit("test_fp_bundle", testbench="sim.common.tb_fp_units")
class FPBundle(wiring.Component):
    """Every streaming FP unit side by side, ports prefixed by the unit name.

    A test fixture, not a unit: each Verilator build costs about as much as the
    whole simulation of a unit, so the default set builds the six units once.
    """

    def __init__(self, *, lanes=LANES):
        self._units = {name: registry.get(name).component(lanes=lanes) for name in UNITS}
        members = {}
        for name, dut in self._units.items():
            for port, member in dut.signature.members.items():
                members[f"{name}_{port}"] = member
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        for name, dut in self._units.items():
            m.submodules[name] = dut
            wiring.connect(m, wiring.flipped(getattr(self, f"{name}_i")), dut.i)
            wiring.connect(m, dut.o, wiring.flipped(getattr(self, f"{name}_o")))
        return m


@pytest.mark.cosim
def test_rtl_fp_units_bit_exact(cosim):
    """All six units in one build, side by side: 2 x 10^4 seeded random vectors
    and the corners each, every binary16 pattern through the multiplier, the
    quantizer and the widening, under gaps and back-pressure. The long boundary sweeps of the
    two conversions (every binary16 value and its midpoints, every integer in
    [-70000, 70000]: 4 x 10^5 vectors of the same lanes) are the slow set's
    (test_rtl_fp_unit_alone)."""
    res = cosim("test_fp_bundle", {"LANES": LANES}, args={"random": 20_000, "exhaustive": ["fp16_mul", "fp32_add",
                                                                                         "fp16_to_int8", "fp16_to_fp32"],
                                                          "idle": 0.2, "backpressure": 0.3})
    counts = res["result"]["vectors"]
    assert sorted(counts) == sorted(UNITS) and min(counts.values()) >= 20_000
    assert counts["fp16_to_int8"] >= 2 * 65536 and counts["fp16_mul"] >= 65536
    assert counts["fp16_to_fp32"] >= 65536 + 20_000


@pytest.mark.slow
@pytest.mark.cosim
@pytest.mark.parametrize("name", UNITS)
def test_rtl_fp_unit_alone(cosim, name):
    """Each unit as registered (its own top level and ports)."""
    res = cosim(name, {"LANES": LANES}, args={"random": 20_000, "exhaustive": True,
                                              "idle": 0.2, "backpressure": 0.3})
    assert res["result"]["vectors"][name] >= {"int32_to_fp16": 160_000, "fp32_to_fp16": 330_000,
                                              "fp16_to_fp32": 85_000}.get(name, 20_000)


@pytest.mark.slow
@pytest.mark.cosim
@pytest.mark.parametrize("name", ["fp16_mul", "fp32_add", "fp16_to_int8"])
def test_rtl_fp_unit_million_vectors(cosim, name):
    res = cosim(name, {"LANES": SLOW_LANES}, args={"random": 1_000_000, "exhaustive": True,
                                              "idle": 0.1, "backpressure": 0.2})
    assert res["result"]["vectors"][name] >= 1_000_000
