"""Ditto PE: adder-tree MAC of four 5-bit lane operands × INT8 weights with a
×16 shifter on lanes 0 and 2 (Ditto §V-B, Fig. 12; docs/SPEC.md "PE (compute unit)")."""

from amaranth.hdl import signed
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from ..common.mac import PE_LANES as LANES
from ..common.mac import PSUM_BITS, SHIFT, WEIGHT_BITS, AdderTreePE, pe_layout
from ..registry import unit

__all__ = ["DittoPE", "OPERAND_BITS", "WEIGHT_BITS", "SHIFT", "LANES", "pe_layout"]

OPERAND_BITS = 5  # 4-bit nibble + extension bit: low parts, hi parts and lo parts are exact


@unit("ditto_pe", golden="golden.ditto.pe_step", testbench="sim.ditto.tb_ditto_pe")
class DittoPE(AdderTreePE):
    """Ditto PE (A4W8): four 5-bit lane operands × INT8 weights, ×16 on hi lanes 0/2, adder tree, 32-bit psum.

    Four multipliers, the shifters, an adder tree and a 32-bit partial-sum
    register with clear/accumulate control (§V-B, Fig. 12); the structure is
    :class:`hdl.common.mac.AdderTreePE`, shared with the ITC baseline PE.

    The paper's 4-bit × 8-bit multiplier is a 5-bit × 8-bit signed one here
    (docs/SPEC.md "Encoding unit"): a lane carries a low difference in [−8, 7],
    the hi part of a full difference in [−16, 15] or its lo part in [0, 15]. A
    hi part sits in lane 0 or 2 and its product is shifted left by 4 (``hi``
    bit 0 for lane 0, bit 1 for lane 2), so 16·hi·w + lo·w = d·w exactly.

    Parameters
    ----------
    (none)

    Members
    -------
    i : ``In(stream.Signature(pe_layout(5)))``
        ``a`` four signed 5-bit operands, ``w`` four signed INT8 weights,
        ``hi`` shifter flags of lanes 0 and 2, ``clear`` (start a new sum;
        with 0 the beat keeps accumulating onto the previous result, e.g. the
        next K tile) and ``last`` (the beat closes a row: emit the sum).
    o : ``Out(stream.Signature(signed(32)))``
        The partial sum after each ``last`` beat (two's complement, wraps at
        32 bits).

    Timing: products are registered, the adder tree and the partial-sum add
    take the next cycle; a row's result is on ``o`` ``latency`` = 2 cycles
    after its last beat was accepted. ``ii`` = 1 while ``o`` is taken as it
    comes; the whole PE stalls while a result waits.

    Implements docs/SPEC.md "PE (compute unit)".
    """

    i: In(stream.Signature(pe_layout(OPERAND_BITS)))
    o: Out(stream.Signature(signed(PSUM_BITS)))

    SHIFTERS = True
