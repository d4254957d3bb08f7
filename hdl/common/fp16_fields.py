"""binary16 field decodes for units that compare FP16 magnitudes without an
FP16 datapath (docs/SPEC.md "Quantization engine").

A binary16 word is sign x[15], exponent field x[14:10], mantissa x[9:0].
Non-negative binary16 numbers order like their bit patterns, so a magnitude
compare is an unsigned compare of x[14:0]. The value of a finite magnitude is
sig·2^(exp - 25) with sig = 1024 + mantissa, exp = field for normal numbers
and sig = mantissa, exp = 1 for zero and subnormals: two magnitudes with
exponents e_a <= e_b relate exactly as sig_a : sig_b·2^(e_b - e_a).
"""

from amaranth.hdl import Module, Mux, Signal, unsigned

__all__ = ["WIDTH", "MAG_WIDTH", "SIG_WIDTH", "EXP_WIDTH", "MAX_FINITE_MAG", "saturated_magnitude",
           "significand", "is_nonfinite"]

WIDTH = 16
MAG_WIDTH = 15
SIG_WIDTH = 11
EXP_WIDTH = 5
#: 65504, the largest finite binary16 magnitude.
MAX_FINITE_MAG = 0x7BFF


def is_nonfinite(m: Module, word, *, name: str) -> Signal:
    """High for inf and NaN (exponent field all ones)."""
    nf = Signal(name=name)
    m.d.comb += nf.eq(word[10:15].all())
    return nf


def saturated_magnitude(m: Module, word, *, name: str) -> Signal:
    """x[14:0], with inf and NaN read as the largest finite magnitude."""
    mag = Signal(MAG_WIDTH, name=name)
    m.d.comb += mag.eq(Mux(word[10:15].all(), MAX_FINITE_MAG, word[:MAG_WIDTH]))
    return mag


def significand(m: Module, mag, *, name: str) -> tuple[Signal, Signal]:
    """``(sig, exp)`` of a finite magnitude: |x| = sig·2^(exp - 25)."""
    field = mag[10:15]
    normal = Signal(name=f"{name}_normal")
    sig = Signal(SIG_WIDTH, name=f"{name}_sig")
    exp = Signal(unsigned(EXP_WIDTH), name=f"{name}_exp")
    m.d.comb += [normal.eq(field.any()),
                 sig.eq(Mux(normal, mag[:10] | (1 << 10), mag[:10])),
                 exp.eq(Mux(normal, field, 1))]
    return sig, exp
