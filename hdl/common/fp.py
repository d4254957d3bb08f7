"""IEEE 754 floating-point building blocks: unpack and classify, the exact
binary16 x binary16 -> binary32 multiplier, the binary32 adder with round to
nearest even, and the conversions FP32 -> FP16, INT32 -> FP16, FP16 -> INT8
and the exact widening FP16 -> FP32 (docs/SPEC.md "FP16").

Elaboration-time helpers (functions adding combinational logic to a
``Module`` and returning a named ``Signal``), like :mod:`hdl.common.arith`:
they sit inside the systolic PE and the streaming units of
:mod:`hdl.common.fp_units`, which add the registers. Every operand and result
is a bit pattern (binary16 in 16 bits, binary32 in 32 bits).

Decisions (docs/SPEC.md "FP16"): subnormal inputs and results are handled
exactly (no flush to zero); every NaN result is the canonical quiet NaN
(``0x7FC00000``, ``0x7E00``), payloads are not propagated; rounding is to
nearest, ties to even; conversions to binary16 overflow to infinity, to INT8
saturate (NaN gives 0).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed

__all__ = ["FloatFormat", "FP16", "FP32", "NAN32", "NAN16", "Unpacked", "unpack", "leading_zeros",
           "fp16_mul", "fp32_add", "fp32_to_fp16", "int32_to_fp16", "fp32_to_int8", "fp16_to_int8", "fp16_to_fp32"]

NAN32 = 0x7FC00000
NAN16 = 0x7E00


@dataclass(frozen=True)
class FloatFormat:
    """An IEEE 754 binary interchange format: exponent and fraction widths."""

    exp_bits: int
    man_bits: int

    @property
    def width(self) -> int:
        return 1 + self.exp_bits + self.man_bits

    @property
    def bias(self) -> int:
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def exp_max(self) -> int:
        """The all-ones exponent field (infinities and NaNs)."""
        return (1 << self.exp_bits) - 1


FP16 = FloatFormat(5, 10)
FP32 = FloatFormat(8, 23)


@dataclass
class Unpacked:
    """Fields of an unpacked floating-point value.

    ``exp`` is the effective biased exponent (1 for zeros and subnormals, so
    that ``sig * 2^(exp - bias - man_bits)`` is the value's magnitude for every
    finite number); ``sig`` carries the hidden bit; ``mag`` is the pattern
    without its sign (it orders finite magnitudes like the values).
    """

    sign: Value
    exp: Value
    sig: Value
    mag: Value
    is_zero: Value
    is_sub: Value
    is_inf: Value
    is_nan: Value


def unpack(m: Module, value, fmt: FloatFormat, *, name: str) -> Unpacked:
    """Split a bit pattern into sign, effective exponent and significand and classify it."""
    value = Value.cast(value)
    if len(value) != fmt.width:
        raise ValueError(f"{name}: a {fmt.width}-bit pattern is needed, not {len(value)} bits")
    field = value[fmt.man_bits:fmt.man_bits + fmt.exp_bits]
    frac = value[:fmt.man_bits]
    exp = Signal(fmt.exp_bits, name=f"{name}_exp")
    sig = Signal(fmt.man_bits + 1, name=f"{name}_sig")
    mag = Signal(fmt.width - 1, name=f"{name}_mag")
    hidden = field != 0
    m.d.comb += [
        exp.eq(Mux(hidden, field, 1)),
        sig.eq(Cat(frac, hidden)),
        mag.eq(value[:fmt.width - 1]),
    ]
    top = field == fmt.exp_max
    return Unpacked(sign=value[-1], exp=exp, sig=sig, mag=mag,
                    is_zero=(field == 0) & (frac == 0), is_sub=(field == 0) & (frac != 0),
                    is_inf=top & (frac == 0), is_nan=top & (frac != 0))


def leading_zeros(m: Module, value, *, name: str) -> Signal:
    """Number of leading zero bits of ``value`` (``len(value)`` when it is 0)."""
    value = Value.cast(value)
    n = len(value)
    count = Signal(range(n + 1), name=name)
    result = Const(n, count.shape())
    # Priority from the LSB up: the most significant set bit decides last.
    for i in range(n):
        result = Mux(value[i], n - 1 - i, result)
    m.d.comb += count.eq(result)
    return count


def _round_bits(kept, guard, sticky):
    """Round to nearest, ties to even: 1 where ``kept`` must be incremented."""
    return guard & (sticky | kept[0])


def _shift_right_sticky(m: Module, value, amount, *, limit: int, name: str):
    """``value >> amount`` (``amount`` <= ``limit``), the guard bit below it and
    the OR of every bit below the guard."""
    value = Value.cast(value)
    wide = Signal(limit + len(value), name=f"{name}_shifted")
    m.d.comb += wide.eq(Cat(Const(0, limit), value) >> amount)
    return wide[limit:], wide[limit - 1], wide[:limit - 1].any()


def fp16_mul(m: Module, a, b, *, name: str = "fmul") -> Signal:
    """binary16 x binary16 -> binary32, exact (no rounding, never subnormal).

    The 11-bit significands give a 22-bit product, normalised by its leading
    zeros; the binary32 exponent is ``ea + eb - 15 - 15 + 127 + 1 - lz``
    (effective biased exponents, binary16 subnormals included), always in
    79 ... 158, so the result is a normal binary32 number.
    """
    ua = unpack(m, a, FP16, name=f"{name}_a")
    ub = unpack(m, b, FP16, name=f"{name}_b")
    width = 2 * (FP16.man_bits + 1)
    prod = Signal(width, name=f"{name}_prod")
    m.d.comb += prod.eq(ua.sig * ub.sig)
    lz = leading_zeros(m, prod, name=f"{name}_lz")
    norm = Signal(width, name=f"{name}_norm")
    m.d.comb += norm.eq(prod << lz)
    exp = Signal(FP32.exp_bits, name=f"{name}_e")
    m.d.comb += exp.eq(ua.exp + ub.exp + (FP32.bias - 2 * FP16.bias - 2 * FP16.man_bits + width - 1) - lz)
    sign = ua.sign ^ ub.sign
    out = Signal(32, name=name)
    nan = ua.is_nan | ub.is_nan | (ua.is_inf & ub.is_zero) | (ua.is_zero & ub.is_inf)
    with m.If(nan):
        m.d.comb += out.eq(NAN32)
    with m.Elif(ua.is_inf | ub.is_inf):
        m.d.comb += out.eq(Cat(Const(0xFF << 23, 31), sign))
    with m.Elif(ua.is_zero | ub.is_zero):
        m.d.comb += out.eq(Cat(Const(0, 31), sign))
    with m.Else():
        m.d.comb += out.eq(Cat(Const(0, FP32.man_bits - (width - 1)), norm[:width - 1], exp, sign))
    return out


def fp32_add(m: Module, a, b, *, name: str = "fadd") -> Signal:
    """binary32 + binary32 -> binary32, round to nearest even.

    Swap so that ``|a| >= |b|``; align ``b`` with guard, round and sticky bits;
    add or subtract the significands; normalise right by one on a carry or
    left by the leading zeros (at most down to the subnormal exponent); round.
    The packing adds the significand (hidden bit included) to ``(E - 1) << 23``,
    so a rounding carry moves into the exponent and the largest finite value
    rounds up to infinity by itself. Exact cancellation gives +0; ``-0 + -0``
    gives -0; ``inf + -inf`` and NaN operands give the canonical NaN.
    """
    ua = unpack(m, a, FP32, name=f"{name}_a")
    ub = unpack(m, b, FP32, name=f"{name}_b")
    swap = Signal(name=f"{name}_swap")
    m.d.comb += swap.eq(ub.mag > ua.mag)
    big_sign = Signal(name=f"{name}_sign")
    big_exp = Signal(FP32.exp_bits, name=f"{name}_ebig")
    big_sig = Signal(FP32.man_bits + 1, name=f"{name}_sbig")
    small_exp = Signal(FP32.exp_bits, name=f"{name}_esmall")
    small_sig = Signal(FP32.man_bits + 1, name=f"{name}_ssmall")
    m.d.comb += [
        big_sign.eq(Mux(swap, ub.sign, ua.sign)),
        big_exp.eq(Mux(swap, ub.exp, ua.exp)),
        big_sig.eq(Mux(swap, ub.sig, ua.sig)),
        small_exp.eq(Mux(swap, ua.exp, ub.exp)),
        small_sig.eq(Mux(swap, ua.sig, ub.sig)),
    ]
    sub = ua.sign ^ ub.sign
    grs = 3  # guard, round, sticky
    work = FP32.man_bits + 1 + grs  # 27
    diff = Signal(FP32.exp_bits, name=f"{name}_d")
    m.d.comb += diff.eq(big_exp - small_exp)
    dcap = Signal(range(work + 1), name=f"{name}_dcap")
    m.d.comb += dcap.eq(Mux(diff > work, work, diff))
    aligned, guard, sticky = _shift_right_sticky(m, Cat(Const(0, grs), small_sig), dcap, limit=work + 1,
                                                 name=f"{name}_align")
    # Bits shifted past the guard fold into the sticky (lowest) bit.
    small = Signal(work, name=f"{name}_small")
    m.d.comb += small.eq(Cat(aligned[0] | guard | sticky, aligned[1:]))
    big = Cat(Const(0, grs), big_sig)
    total = Signal(work + 1, name=f"{name}_sum")
    m.d.comb += total.eq(Mux(sub, big - small, big + small))
    carry = total[work]
    lz = leading_zeros(m, total[:work], name=f"{name}_lz")
    limit = Signal(FP32.exp_bits, name=f"{name}_lim")
    m.d.comb += limit.eq(big_exp - 1)
    shift = Signal(range(work + 1), name=f"{name}_shift")
    m.d.comb += shift.eq(Mux(lz > limit, limit, lz))
    left = Signal(work, name=f"{name}_left")
    m.d.comb += left.eq(total[:work] << shift)
    norm = Signal(work, name=f"{name}_norm")
    m.d.comb += norm.eq(Mux(carry, Cat(total[0] | total[1], total[2:]), left))
    exp = Signal(FP32.exp_bits + 1, name=f"{name}_e")
    m.d.comb += exp.eq(Mux(carry, big_exp + 1, big_exp - shift))
    up = _round_bits(norm[grs:], norm[grs - 1], norm[:grs - 1].any())
    packed = Signal(33, name=f"{name}_packed")
    m.d.comb += packed.eq(((exp - 1) << FP32.man_bits) + norm[grs:] + up)
    out = Signal(32, name=name)
    with m.If(ua.is_nan | ub.is_nan | (ua.is_inf & ub.is_inf & sub)):
        m.d.comb += out.eq(NAN32)
    with m.Elif(ua.is_inf | ub.is_inf | (exp >= FP32.exp_max)):
        m.d.comb += out.eq(Cat(Const(FP32.exp_max << FP32.man_bits, 31), big_sign))
    with m.Elif(total == 0):
        m.d.comb += out.eq(Cat(Const(0, 31), big_sign & ~sub))
    with m.Else():
        m.d.comb += out.eq(Cat(packed[:31], big_sign))
    return out


def fp32_to_fp16(m: Module, a, *, name: str = "f2h") -> Signal:
    """binary32 -> binary16, round to nearest even; overflow to infinity.

    Keeps the top 11 significand bits for a normal binary16 result, fewer for a
    subnormal one (``13 + (113 - E)`` bits dropped), and rounds on the dropped
    bits; the packing carries a rounding overflow into the exponent, so 65520
    and above become infinity and the largest subnormal rounds up to the
    smallest normal by themselves.
    """
    u = unpack(m, a, FP32, name=f"{name}_a")
    first_normal = FP32.bias - FP16.bias + 1  # E = 113: binary16 exponent field 1
    frac_drop = FP32.man_bits - FP16.man_bits  # 13
    limit = FP32.man_bits + 2  # 25: everything below the guard
    below = Signal(FP32.exp_bits, name=f"{name}_below")
    m.d.comb += below.eq(Mux(u.exp < first_normal, first_normal - u.exp, 0))
    drop = Signal(range(limit + 1), name=f"{name}_drop")
    m.d.comb += drop.eq(Mux(below > limit - frac_drop, limit, frac_drop + below))
    kept, guard, sticky = _shift_right_sticky(m, u.sig, drop, limit=limit, name=f"{name}_rnd")
    base = Signal(FP16.exp_bits + 1, name=f"{name}_base")
    m.d.comb += base.eq(Mux(u.exp > first_normal, u.exp - first_normal, 0))
    packed = Signal(16, name=f"{name}_packed")
    m.d.comb += packed.eq((base << FP16.man_bits) + kept[:FP16.man_bits + 1]
                          + _round_bits(kept, guard, sticky))
    out = Signal(16, name=name)
    overflow = u.exp >= FP32.bias + FP16.bias + 1  # 143: |x| >= 2^16
    with m.If(u.is_nan):
        m.d.comb += out.eq(NAN16)
    with m.Elif(u.is_inf | overflow):
        m.d.comb += out.eq(Cat(Const(FP16.exp_max << FP16.man_bits, 15), u.sign))
    with m.Else():
        m.d.comb += out.eq(Cat(packed[:15], u.sign))
    return out


def int32_to_fp16(m: Module, a, *, name: str = "i2h") -> Signal:
    """INT32 -> binary16, round to nearest even; |x| >= 65520 to infinity; 0 to +0."""
    a = Value.cast(a)
    if len(a) != 32:
        raise ValueError(f"{name}: a 32-bit integer is needed, not {len(a)} bits")
    a = a.as_signed()
    neg = a[31]
    mag = Signal(32, name=f"{name}_mag")
    m.d.comb += mag.eq(Mux(neg, -a, a))
    lz = leading_zeros(m, mag, name=f"{name}_lz")
    norm = Signal(32, name=f"{name}_norm")
    m.d.comb += norm.eq(mag << lz)
    keep = FP16.man_bits + 1
    kept = norm[32 - keep:]
    up = _round_bits(kept, norm[32 - keep - 1], norm[:32 - keep - 1].any())
    # A set bit at position p (lz = 31 - p) has binary16 exponent field p + 15.
    base = Signal(FP16.exp_bits + 1, name=f"{name}_base")
    m.d.comb += base.eq(31 + FP16.bias - 1 - lz)
    packed = Signal(16, name=f"{name}_packed")
    m.d.comb += packed.eq((base << FP16.man_bits) + kept + up)
    out = Signal(16, name=name)
    with m.If(mag == 0):
        m.d.comb += out.eq(0)
    with m.Elif(lz <= 31 - (FP16.exp_max - FP16.bias)):  # |x| >= 2^16
        m.d.comb += out.eq(Cat(Const(FP16.exp_max << FP16.man_bits, 15), neg))
    with m.Else():
        m.d.comb += out.eq(Cat(packed[:15], neg))
    return out


def fp32_to_int8(m: Module, a, *, name: str = "f2i") -> Signal:
    """binary32 -> INT8, round to nearest even, saturating; NaN gives 0."""
    u = unpack(m, a, FP32, name=f"{name}_a")
    point = FP32.bias + FP32.man_bits  # E = 150: sig is an integer
    limit = FP32.man_bits + 2  # 25
    drop = Signal(range(limit + 1), name=f"{name}_drop")
    m.d.comb += drop.eq(Mux(u.exp < point - limit, limit, point - u.exp))
    kept, guard, sticky = _shift_right_sticky(m, u.sig, drop, limit=limit, name=f"{name}_rnd")
    mag = Signal(10, name=f"{name}_mag")
    m.d.comb += mag.eq(kept[:9] + _round_bits(kept, guard, sticky))
    big = u.exp >= FP32.bias + 8  # |x| >= 256 (and inf)
    out = Signal(signed(8), name=name)
    with m.If(u.is_nan):
        m.d.comb += out.eq(0)
    with m.Elif(~u.sign):
        m.d.comb += out.eq(Mux(big | (mag > 127), 127, mag))
    with m.Else():
        m.d.comb += out.eq(Mux(big | (mag > 128), -128, -mag))
    return out


def fp16_to_int8(m: Module, x, scale, *, name: str = "quant") -> Signal:
    """The quantizer ``clamp(RNE(x * scale), -128, 127)`` of binary16 ``x`` and
    ``scale``: the exact binary32 product, then :func:`fp32_to_int8`."""
    product = fp16_mul(m, x, scale, name=f"{name}_mul")
    return fp32_to_int8(m, product, name=name)



def fp16_to_fp32(m: Module, a, *, name: str = "h2f") -> Signal:
    """binary16 -> binary32, exact (every binary16 value is a binary32 value).

    A normal number keeps its fraction and moves its exponent by
    ``127 - 15``; a binary16 subnormal is normalised by the leading zeros of
    its 11-bit significand (it becomes a normal binary32 number); zeros and
    infinities keep their sign; NaN gives the canonical ``0x7FC00000``.
    """
    u = unpack(m, a, FP16, name=f"{name}_a")
    lz = leading_zeros(m, u.sig, name=f"{name}_lz")
    norm = Signal(FP16.man_bits + 1, name=f"{name}_norm")
    m.d.comb += norm.eq(u.sig << lz)
    exp = Signal(FP32.exp_bits, name=f"{name}_e")
    m.d.comb += exp.eq(u.exp + (FP32.bias - FP16.bias) - lz)
    out = Signal(32, name=name)
    with m.If(u.is_nan):
        m.d.comb += out.eq(NAN32)
    with m.Elif(u.is_inf):
        m.d.comb += out.eq(Cat(Const(FP32.exp_max << FP32.man_bits, 31), u.sign))
    with m.Elif(u.is_zero):
        m.d.comb += out.eq(Cat(Const(0, 31), u.sign))
    with m.Else():
        m.d.comb += out.eq(Cat(Const(0, FP32.man_bits - FP16.man_bits), norm[:FP16.man_bits], exp, u.sign))
    return out
