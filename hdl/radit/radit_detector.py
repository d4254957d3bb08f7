"""RADiT redundancy detector: CCU compare feeding the DTSM, as the control unit
sees it (RADiT §III-C, Fig. 7; docs/SPEC.md "CCU: compare" and "DTSM")."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..registry import unit
from .ccu_compare import DIT_XL2_ELEMENTS, CCUCompare
from .ccu_compress import CODE_BITS
from .dtsm import DTSM

__all__ = ["RaditDetector"]


@unit("radit_detector", golden="golden.radit.redundancy_aware_run", testbench="sim.radit.tb_radit_detector")
class RaditDetector(wiring.Component):
    """RADiT redundancy detector: CCU compare → DTSM, one skip-and-reuse decision per (timestep, block).

    For each DNN operation block of each timestep the control unit streams the
    block's FP16 input on ``i`` (tagged with the block, the timestep index t
    and ``first`` for the run's first timestep) and the previous timestep's
    codes of that block on ``prev``; the detector returns the new codes on
    ``codes`` (for the code memory) and, after the block's ``last`` beat, the
    DTSM's decision on ``o``: skip (reuse F(x_{t+1})), Δ, θ, and whether the
    new codes become the next reference (``write_back``).

    On beats with ``first`` no previous codes are read (``prev`` is not
    consumed): the CCU compares with zero codes, the DTSM ignores that Δ,
    clears the block's state and answers "compute". ``block``, ``t`` and
    ``first`` must be constant within a block; they are sampled on ``last``.

    Parameters
    ----------
    lanes : int
        FP16 values per beat (default 16).
    max_elements : int
        Largest block input (default 256 x 1152); sizes Δ (see ``ccu_compare``).
    blocks : int
        DNN operation blocks (default 56).
    timesteps : int
        Largest T of the α table (default 250).
    alpha_frac : int
        Fractional bits of α (default 15).
    decide_before_update : bool
        DTSM ordering (default ``False``: update, then decide).
    reference : str
        Compare reference after a skip: ``"previous"`` (default) or ``"computed"``.
    saturate : bool
        Compressor option (default ``True``).

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"data": ArrayLayout(16, lanes), "last": 1,
        "first": 1, "block": BW, "t": TW})))``
        Block input beats.
    prev : ``In(stream.Signature(ArrayLayout(4, lanes)))``
        Previous codes, one beat per ``i`` beat without ``first``.
    codes : ``Out(stream.Signature(ArrayLayout(4, lanes)))``
        New codes, one beat per ``i`` beat.
    o : ``Out(stream.Signature(dtsm decision layout))``
        One decision per block: ``block``, ``delta``, ``theta``,
        ``theta_valid``, ``skip``, ``write_back`` (see ``dtsm``).
    alpha : ``In(Signature({"en": Out(1), "addr": Out(TW), "data": Out(ALPHA_FRAC + 1)}))``
        Host write port of the DTSM's α table.

    Timing: ``ii`` = 1 beat per cycle while the sinks keep up; ``codes`` lag
    1 cycle; a block's decision leaves ``latency`` = 3 cycles after its
    ``last`` beat is accepted (1 for Δ, 2 for the DTSM), overlapping the next
    block's beats.

    Implements docs/SPEC.md "CCU: compare" and "DTSM: dynamic threshold
    (Algorithm 2 + the skip decision of Algorithm 1)".
    """

    def __init__(self, *, lanes=16, max_elements=DIT_XL2_ELEMENTS, blocks=56, timesteps=250, alpha_frac=15,
                 decide_before_update=False, reference="previous", saturate=True):
        # The two parts validate their own parameters (and name them).
        self._ccu = CCUCompare(lanes=lanes, max_elements=max_elements, saturate=saturate)
        self._dtsm = DTSM(blocks=blocks, timesteps=timesteps, max_elements=max_elements, alpha_frac=alpha_frac,
                          decide_before_update=decide_before_update, reference=reference)
        req = self._dtsm.request_layout
        self._input_layout = data.StructLayout({
            "data": data.ArrayLayout(16, self._ccu.lanes), "last": 1, "first": 1,
            "block": req["block"].shape, "t": req["t"].shape})
        lanes = self._ccu.lanes
        super().__init__({
            "i": In(stream.Signature(self._input_layout)),
            "prev": In(stream.Signature(data.ArrayLayout(CODE_BITS, lanes))),
            "codes": Out(stream.Signature(data.ArrayLayout(CODE_BITS, lanes))),
            "o": Out(stream.Signature(self._dtsm.decision_layout)),
            "alpha": self._dtsm.signature.members["alpha"],
        })

    @property
    def lanes(self):
        return self._ccu.lanes

    @property
    def max_elements(self):
        return self._ccu.max_elements

    @property
    def blocks(self):
        return self._dtsm.blocks

    @property
    def timesteps(self):
        return self._dtsm.timesteps

    @property
    def alpha_frac(self):
        return self._dtsm.alpha_frac

    @property
    def decide_before_update(self):
        return self._dtsm.decide_before_update

    @property
    def reference(self):
        return self._dtsm.reference

    @property
    def saturate(self):
        return self._ccu.saturate

    @property
    def input_layout(self):
        return self._input_layout

    @property
    def latency(self):
        """Cycles from a block's accepted ``last`` beat to its decision on ``o``."""
        return self._ccu.latency + self._dtsm.latency

    @property
    def ii(self):
        """Cycles between accepted beats while the sinks keep up."""
        return 1

    def elaborate(self, platform):
        m = Module()
        m.submodules.ccu = ccu = self._ccu
        m.submodules.dtsm = dtsm = self._dtsm
        wiring.connect(m, wiring.flipped(self.codes), ccu.codes)
        wiring.connect(m, wiring.flipped(self.o), dtsm.o)
        wiring.connect(m, wiring.flipped(self.alpha), dtsm.alpha)

        # Current beats to the CCU; on `first` beats it compares with zero codes
        # and the external `prev` stream is left alone.
        first_beat = Signal()
        m.d.comb += [
            first_beat.eq(self.i.valid & self.i.payload.first),
            ccu.i.valid.eq(self.i.valid),
            ccu.i.payload.data.eq(self.i.payload.data),
            ccu.i.payload.last.eq(self.i.payload.last),
            self.i.ready.eq(ccu.i.ready),
            ccu.prev.valid.eq(self.prev.valid | first_beat),
            ccu.prev.payload.eq(Mux(self.i.payload.first, 0, self.prev.payload)),
            self.prev.ready.eq(ccu.prev.ready & ~first_beat),
        ]

        # The block's tag, captured with its last beat. The CCU accepts a last
        # beat only while its Δ slot is free or being emptied, so the tag and
        # the Δ it belongs to move in lockstep.
        tag_block = Signal.like(dtsm.i.payload.block)
        tag_t = Signal.like(dtsm.i.payload.t)
        tag_first = Signal()
        with m.If(self.i.valid & self.i.ready & self.i.payload.last):
            m.d.sync += [tag_block.eq(self.i.payload.block), tag_t.eq(self.i.payload.t),
                         tag_first.eq(self.i.payload.first)]
        m.d.comb += [
            dtsm.i.valid.eq(ccu.delta.valid),
            dtsm.i.payload.delta.eq(ccu.delta.payload),
            dtsm.i.payload.block.eq(tag_block),
            dtsm.i.payload.t.eq(tag_t),
            dtsm.i.payload.first.eq(tag_first),
            ccu.delta.ready.eq(dtsm.i.ready),
        ]
        return m
