"""RADiT golden models (Kim et al., RADiT, §III-B).

compress_fp16 -- the CCU's FP16 -> 4-bit compression (§III-B3, Fig. 6b).
"""

from __future__ import annotations

import numpy as np

__all__ = ["compress_fp16", "CODE_SATURATED"]

CODE_SATURATED = 0b0111


def compress_fp16(bits, saturate: bool = True) -> np.ndarray:
    """4-bit CCU code of each FP16 bit pattern in ``bits`` (uint8 array, same shape).

    The first two exponent bits (x[14:13]) are the indicator (Fig. 6b):

    * 00 -- code {0, x[14:12]}: 0000 below 2^-11, 0001 for 2^-11 .. 2^-7;
    * 01 -- code x[13:10]: one code per octave from 2^-7 to 2^1 (1000..1111);
    * 10 -- code x[12:9] + 0010: half-octave steps from 2 to 16 (0010..0111);
    * 11 -- >= 2^9, inf, NaN: 0111 (SPEC.md).

    The paper only defines |x| < 16. With ``saturate`` (SPEC.md default) the
    indicator-10 magnitudes of 16 and above (exponent >= 19) take the largest
    code 0111; without it the literal sum wraps modulo 16. The sign is ignored.
    """
    x = np.asarray(bits)
    if x.dtype.kind not in "ui":
        raise TypeError(f"bits must be an integer array of FP16 patterns, not {x.dtype}")
    x = x.astype(np.uint32) & 0xFFFF
    indicator = (x >> 13) & 0b11
    case1 = (x >> 12) & 0b111           # {0, x[14:12]}
    case2 = (x >> 10) & 0b1111          # x[13:10]
    case3 = (((x >> 9) & 0b1111) + 0b0010) & 0b1111
    if saturate:
        exponent = (x >> 10) & 0x1F
        case3 = np.where(exponent >= 19, CODE_SATURATED, case3)
    code = np.select([indicator == 0, indicator == 1, indicator == 2],
                     [case1, case2, case3], default=CODE_SATURATED)
    return code.astype(np.uint8)
