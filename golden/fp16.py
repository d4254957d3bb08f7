"""Golden models of the FP16 datapath's arithmetic (docs/SPEC.md "FP16"): IEEE 754
binary16 x binary16 -> binary32 products, binary32 sums, and the conversions
between FP16, FP32, INT32 and INT8, all on bit patterns.

Every function takes and returns bit patterns (``uint16`` for binary16,
``uint32`` for binary32, ``int8``/``int32`` for integers) so that results can be
compared bit for bit with the RTL. The arithmetic is NumPy's IEEE arithmetic
(round to nearest, ties to even; subnormals kept), with two decisions of
docs/SPEC.md "FP16" on top:

* every NaN result is the canonical quiet NaN: ``0x7FC00000`` in binary32,
  ``0x7E00`` in binary16 (NumPy keeps the payload of an input NaN; the
  hardware does not carry payloads);
* conversions to integers saturate (``+inf`` to the maximum, ``-inf`` to the
  minimum) and send NaN to 0; conversions to binary16 overflow to infinity,
  as IEEE round-to-nearest does.

The binary16 x binary16 product is exact in binary32 (two 11-bit significands
give at most 22 bits; exponents 2^-48 ... 2^32 fit), so ``fp16_mul`` involves
no rounding at all and an FP16 MAC is fully specified by binary32 additions in
a fixed order.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NAN32", "NAN16", "canonical32", "canonical16", "f16", "f32", "bits16", "bits32",
           "fp16_mul", "fp32_add", "fp16_to_int8", "int32_to_fp16", "fp32_to_fp16", "fp16_to_fp32",
           "corners16", "corners32"]

NAN32 = np.uint32(0x7FC00000)
NAN16 = np.uint16(0x7E00)


def f16(bits) -> np.ndarray:
    """binary16 bit patterns as ``float16`` values."""
    return np.asarray(bits, dtype=np.uint64).astype(np.uint16).view(np.float16)


def f32(bits) -> np.ndarray:
    """binary32 bit patterns as ``float32`` values."""
    return np.asarray(bits, dtype=np.uint64).astype(np.uint32).view(np.float32)


def bits16(x) -> np.ndarray:
    """``float16`` values as canonical binary16 bit patterns (``uint16``)."""
    return canonical16(np.asarray(x, dtype=np.float16).view(np.uint16))


def bits32(x) -> np.ndarray:
    """``float32`` values as canonical binary32 bit patterns (``uint32``)."""
    return canonical32(np.asarray(x, dtype=np.float32).view(np.uint32))


def canonical32(bits) -> np.ndarray:
    """Replace every binary32 NaN pattern by ``0x7FC00000``."""
    bits = np.asarray(bits, dtype=np.uint32)
    return np.where((bits & 0x7FFFFFFF) > 0x7F800000, NAN32, bits).astype(np.uint32)


def canonical16(bits) -> np.ndarray:
    """Replace every binary16 NaN pattern by ``0x7E00``."""
    bits = np.asarray(bits, dtype=np.uint16)
    return np.where((bits & 0x7FFF) > 0x7C00, NAN16, bits).astype(np.uint16)


def fp16_to_fp32(a) -> np.ndarray:
    """binary16 -> binary32 (exact; NaN canonical)."""
    return bits32(f16(a).astype(np.float32))


def fp16_mul(a, b) -> np.ndarray:
    """binary16 x binary16 -> binary32, exact (no rounding); NaN canonical."""
    with np.errstate(all="ignore"):
        return bits32(f16(a).astype(np.float32) * f16(b).astype(np.float32))


def fp32_add(a, b) -> np.ndarray:
    """binary32 + binary32 -> binary32, round to nearest even; NaN canonical.

    ``x + (-x)`` is +0; ``-0 + -0`` is -0; ``inf + -inf`` is NaN (IEEE 754 §6.3, §7.2).
    """
    with np.errstate(all="ignore"):
        return bits32(f32(a) + f32(b))


def fp32_to_fp16(a) -> np.ndarray:
    """binary32 -> binary16, round to nearest even, overflow to infinity
    (|x| >= 65520 becomes inf), binary32 subnormals and tiny values to signed
    zero or binary16 subnormals as rounding gives; NaN canonical."""
    with np.errstate(all="ignore"):
        return bits16(f32(a).astype(np.float16))


def int32_to_fp16(a) -> np.ndarray:
    """INT32 -> binary16 with one rounding to nearest even; |x| >= 65520
    overflows to infinity (of the sign of x); 0 gives +0.

    Through float64, which holds every INT32 exactly, so there is a single
    rounding (a cast through float32 would round twice).
    """
    x = np.asarray(a, dtype=np.int64)
    if ((x < -(1 << 31)) | (x >= (1 << 31))).any():
        raise ValueError("int32_to_fp16: values must fit in INT32")
    with np.errstate(all="ignore"):
        return bits16(x.astype(np.float64).astype(np.float16))


def fp16_to_int8(x, scale) -> np.ndarray:
    """The FP16 -> INT8 quantizer: ``q = clamp(RNE(x * scale), -128, 127)``.

    ``x`` and ``scale`` are binary16 patterns (``scale`` broadcasts, one per
    tensor or per beat). ``x * scale`` is exact in binary32, so the one rounding
    is to the integer, ties to even. NaN (in ``x``, in ``scale``, or ``0 * inf``)
    gives 0; +inf gives 127, -inf gives -128.
    """
    with np.errstate(all="ignore"):
        p = f16(x).astype(np.float32) * f16(scale).astype(np.float32)
        q = np.rint(np.clip(np.nan_to_num(p, nan=0.0, posinf=127.0, neginf=-128.0), -128.0, 127.0))
    return q.astype(np.int8)


def corners16() -> np.ndarray:
    """binary16 corner patterns: both zeros, smallest and largest subnormals,
    smallest normal, one, largest finite, both infinities, quiet and
    signalling NaNs with payloads, each with both signs."""
    base = [0x0000, 0x0001, 0x0002, 0x0003, 0x01FF, 0x0200, 0x03FF, 0x0400, 0x0401, 0x07FF,
            0x3BFF, 0x3C00, 0x3C01, 0x3E00, 0x4000, 0x7BFE, 0x7BFF, 0x7C00, 0x7C01, 0x7E00, 0x7FFF,
            0x5800, 0x1000, 0x2400, 0x6400, 0x7A00]
    return np.array(base + [b | 0x8000 for b in base], dtype=np.uint16)


def corners32() -> np.ndarray:
    """binary32 corner patterns, the binary32 counterpart of :func:`corners16`
    plus the values that round to the binary16 boundaries (65504, 65519,
    65520, half the smallest binary16 subnormal) and ties."""
    base = [0x00000000, 0x00000001, 0x00000002, 0x007FFFFF, 0x00800000, 0x00800001, 0x00FFFFFF,
            0x3F800000, 0x3F800001, 0x3F7FFFFF, 0x3FC00000, 0x4B000000, 0x4B000001, 0x4B7FFFFF,
            0x7F7FFFFE, 0x7F7FFFFF, 0x7F000000, 0x7F800000, 0x7F800001, 0x7FC00000, 0x7FFFFFFF,
            0x477FE000, 0x477FEFFF, 0x477FF000, 0x477FF001, 0x33000000, 0x33000001, 0x32FFFFFF,
            0x33800000, 0x387FC000, 0x38800000, 0x387FE000, 0x3A800800, 0x3A801000, 0x3F801000,
            0x3F802000, 0x3F803000, 0x34000000, 0x33C00000, 0x43000000, 0x42FF0000, 0x42FE0000,
            0x3F000000, 0x3FC00000, 0x40200000]
    return np.array(base + [b | 0x80000000 for b in base], dtype=np.uint32)
