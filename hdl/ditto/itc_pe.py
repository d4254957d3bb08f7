"""A8W8 adder-tree PE of the ITC baseline (Ditto §VI-A, Table III): the
iso-area reference for the Ditto PE."""

from amaranth.hdl import Module, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..common.mac import PSUM_BITS, accumulate, lane_terms, row_control
from ..common.stream import register
from ..registry import unit
from .ditto_pe import LANES, pe_layout

__all__ = ["ITCPE"]


@unit("itc_pe", golden="golden.ditto.pe_step", testbench="sim.ditto.tb_ditto_pe")
class ITCPE(wiring.Component):
    """ITC PE (A8W8 baseline): four INT8 × INT8 multipliers, adder tree, 32-bit psum.

    The same adder tree and 32-bit partial-sum register as the Ditto PE
    (shared :mod:`hdl.common.mac` pieces), no shifters.

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

    Timing: as :class:`~hdl.ditto.ditto_pe.DittoPE` (latency 2, II = 1).
    """

    LATENCY = 2

    def __init__(self):
        super().__init__({
            "i": In(stream.Signature(pe_layout(8))),
            "o": Out(stream.Signature(signed(PSUM_BITS))),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.i.payload
        ctl = row_control(m, i_valid=self.i.valid, i_ready=self.i.ready, o_valid=self.o.valid,
                          o_ready=self.o.ready, clear=p.clear, last=p.last, stages=1, name="pe")
        terms = lane_terms([p.a[n] for n in range(LANES)], [p.w[n] for n in range(LANES)])
        terms = [register(m, t, ce=ctl.ce, name=f"prod{n}") for n, t in enumerate(terms)]
        psum = accumulate(m, terms, ce=ctl.ce, en=ctl.acc_en, clear=ctl.acc_clear, name="psum")
        m.d.comb += self.o.payload.eq(psum)
        return m
