"""Ditto Compute Unit: ``PES`` adder-tree PEs sharing the encoded difference
stream, each with its own weight column (Ditto §V-B, Fig. 12; docs/SPEC.md "PE")."""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from ..common.mac import PSUM_BITS, SHIFT, WEIGHT_BITS, accumulate, lane_terms, row_control
from ..common.params import check_int
from ..common.stream import register
from ..registry import unit
from .ditto_encoder import LANES, encoder_out_layout

__all__ = ["DittoComputeUnit"]


@unit("ditto_compute_unit", golden="golden.ditto.linear_step", testbench="sim.ditto.tb_ditto_compute_unit")
class DittoComputeUnit(wiring.Component):
    """Compute Unit: PES Ditto PEs sharing the encoded lane stream, weights looked up by element index.

    PE n multiplies each lane by weight W[index, n] and accumulates a row's
    ΔA[r, :]·W[:, n] (or A[r, :]·W[:, n] in activation mode).

    Each PE is the Ditto PE datapath (:mod:`hdl.common.mac`: four 5-bit ×
    INT8 multipliers, ×16 shifters on lanes 0 and 2, adder tree, 32-bit
    partial sum); the PEs share the control. The weights sit in one memory of
    ``max_row`` words of ``PES`` INT8 weights with four read ports, one per
    lane, addressed by the lanes' element indices. The summation with the
    previous output (A_t·W = A_{t+1}·W + ΔA·W) is the Vector Processing Unit's
    (§V-A), outside this unit. Rows longer than ``max_row`` are split into
    K tiles whose results the VPU adds.

    Parameters
    ----------
    pes : int
        PEs = output columns per pass (default 16), 1..256.
    max_row : int
        Weight rows held (row length K, default 1152, DiT-XL's hidden size,
        as the encoder's default so the two connect); the lane index width is
        that of the encoder with the same ``max_row``.

    Members
    -------
    w : ``In(stream.Signature(...))``
        Weight load: ``addr`` (element index k) and ``row`` (W[k, 0..PES-1],
        INT8). Always ready; load between layers (a write lands the next cycle).
    i : ``In(stream.Signature(encoder_out_layout(...)))``
        The Encoding Unit's packed lanes (``nib``/``ext`` operand, ``index``,
        ``valid``), ``hi`` flags of lanes 0 and 2, ``last`` row end.
    o : ``Out(stream.Signature(ArrayLayout(signed(32), pes)))``
        One beat per row: PE n's 32-bit sum (wraps modulo 2^32).

    Timing: weight read (1 cycle), registered products (1 cycle), adder tree
    and partial sum: a row's result leaves ``latency`` = 3 cycles after its
    last beat was accepted; ``ii`` = 1 while results are taken as they come.

    Implements docs/SPEC.md "PE (compute unit)".
    """

    def __init__(self, *, pes=16, max_row=1152):
        self._pes = check_int("pes", pes, maximum=256)
        self._max_row = check_int("max_row", max_row, minimum=2, maximum=1 << 16)
        self._index_bits = bits_for(self._max_row - 1)
        pes, max_row = self._pes, self._max_row
        super().__init__({
            "w": In(stream.Signature(data.StructLayout({
                "addr": range(max_row), "row": data.ArrayLayout(signed(WEIGHT_BITS), pes)}))),
            "i": In(stream.Signature(encoder_out_layout(self._index_bits))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(PSUM_BITS), pes))),
        })

    @property
    def pes(self):
        return self._pes

    @property
    def max_row(self):
        return self._max_row

    @property
    def index_bits(self):
        """Bits of a lane's element index (as the encoder's with the same ``max_row``)."""
        return self._index_bits

    @property
    def latency(self):
        """Cycles from a row's accepted ``last`` beat to its sums on ``o``."""
        return 3

    @property
    def ii(self):
        """Cycles between accepted beats while results are taken as they come."""
        return 1

    def elaborate(self, platform):
        m = Module()
        pes = self._pes
        p = self.i.payload

        # Row control: the beat after a row's end starts a new sum.
        first = Signal(init=1, name="row_first")
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += first.eq(p.last)
        ctl = row_control(m, i_valid=self.i.valid, i_ready=self.i.ready, o_valid=self.o.valid,
                          o_ready=self.o.ready, clear=first, last=p.last, stages=self.latency - 1,
                          name="cu")

        # Weights: one word per element index, four read ports (one per lane).
        mem = m.submodules.weights = Memory(shape=unsigned(WEIGHT_BITS * pes), depth=self._max_row, init=[])
        wp = mem.write_port()
        m.d.comb += [self.w.ready.eq(1), wp.en.eq(self.w.valid), wp.addr.eq(self.w.payload.addr),
                     wp.data.eq(self.w.payload.row.as_value())]
        words = []
        for lane in range(LANES):
            rp = mem.read_port()
            m.d.comb += [rp.addr.eq(p.lanes[lane].index), rp.en.eq(ctl.ce)]
            words.append(data.View(data.ArrayLayout(signed(WEIGHT_BITS), pes), rp.data))

        # Stage 1: operands wait beside the weight read.
        ops = []
        for lane in range(LANES):
            ln = p.lanes[lane]
            op = Mux(ln.valid, Cat(ln.nib, ln.ext).as_signed(), 0)
            ops.append(register(m, op, ce=ctl.ce, name=f"operand{lane}"))
        hi = register(m, p.hi, ce=ctl.ce, name="hi")
        flags = [hi[0], None, hi[1], None]

        # Stage 2: products per PE; then adder tree + partial sum.
        for n in range(pes):
            terms = lane_terms(ops, [words[lane][n] for lane in range(LANES)], flags, SHIFT)
            terms = [register(m, t, ce=ctl.ce, name=f"pe{n}_prod{k}") for k, t in enumerate(terms)]
            psum = accumulate(m, terms, ce=ctl.ce, en=ctl.acc_en, clear=ctl.acc_clear, name=f"pe{n}_psum")
            m.d.comb += self.o.payload[n].eq(psum)
        return m
