"""A8W8 adder-tree PE of the ITC baseline (Ditto §VI-A, Table III): the
iso-area reference for the Ditto PE (docs/SPEC.md "PE (compute unit)")."""

from amaranth.hdl import signed
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from ..common.mac import PSUM_BITS, AdderTreePE, pe_layout
from ..registry import unit

__all__ = ["ITCPE", "OPERAND_BITS"]

OPERAND_BITS = 8


@unit("itc_pe", golden="golden.ditto.pe_step", testbench="sim.ditto.tb_ditto_pe")
class ITCPE(AdderTreePE):
    """ITC PE (A8W8 baseline): four INT8 × INT8 multipliers, adder tree, 32-bit psum.

    The same adder tree and 32-bit partial-sum register as the Ditto PE (both
    are :class:`hdl.common.mac.AdderTreePE`), no shifters.

    Parameters
    ----------
    (none)

    Members
    -------
    i : ``In(stream.Signature(pe_layout(8)))``
        ``a`` four signed INT8 activations, ``w`` four INT8 weights, ``hi``
        (ignored, kept so both PEs share one beat layout), ``clear``, ``last``.
    o : ``Out(stream.Signature(signed(32)))``
        The partial sum after each ``last`` beat.

    Timing: as :class:`~hdl.ditto.ditto_pe.DittoPE`: ``latency`` = 2,
    ``ii`` = 1.

    Implements docs/SPEC.md "PE (compute unit)".
    """

    i: In(stream.Signature(pe_layout(OPERAND_BITS)))
    o: Out(stream.Signature(signed(PSUM_BITS)))

    SHIFTERS = False
