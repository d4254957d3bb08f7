"""RADiT dynamic threshold scaling module (RADiT §III-B2 Algorithm 2, §III-C
Fig. 7; docs/SPEC.md "DTSM")."""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from ..common.params import check_bool, check_choice, check_int
from ..common.stream import stall_pipeline
from ..registry import unit
from .ccu_compare import DIT_XL2_ELEMENTS, delta_width

__all__ = ["DTSM", "REFERENCES"]

REFERENCES = ("previous", "computed")


@unit("dtsm", golden="golden.radit.dtsm", testbench="sim.radit.tb_dtsm")
class DTSM(wiring.Component):
    """Dynamic threshold scaling module (DTSM): Algorithm 2's per-block threshold and the skip-and-reuse signal.

    For every request (block n, timestep index t, Δ of that block) the DTSM
    reads block n's state, applies docs/SPEC.md's update and answers whether the
    control unit may skip the block and reuse its previous output:

    1. θ unset: θ := Δ;
    2. else dd := Δ − Δ_prev; if dd > 0 and the previous dd was valid and
       negative (Δ_prev a local minimum): θ := Δ_prev + floor(α_t · dd / 2^ALPHA_FRAC);
    3. skip := θ valid and Δ < θ, with θ after step 2 (default) or, with
       ``decide_before_update``, before it;
    4. Δ_prev := Δ; remember whether dd < 0.

    A request with ``first`` set is the run's first timestep of that block:
    there are no previous codes, so the block is computed (skip = 0) and its
    state is cleared (θ unset). Every block's first request of a run must carry
    ``first``; that replaces a reset sweep of the state memory.

    Arithmetic (widths for DW = Δ bits = bit_length(4 · MAX_ELEMENTS)):
    dd is signed DW + 1 bits; α is unsigned ALPHA_FRAC + 1 bits (α ∈ [0, 2));
    the product α · dd is signed DW + ALPHA_FRAC + 3 bits and is floored by an
    arithmetic right shift of ALPHA_FRAC bits (golden: ``(α · dd) >> ALPHA_FRAC``
    on int64, which floors negative values the same way; the product is used
    only when dd > 0, so it is never negative where it matters). θ is
    DW + 1 bits: Δ_prev + floor(α · dd) < 2Δ − Δ_prev < 2^(DW+1) for every α the
    table can hold, so nothing is clipped. Only dd_prev's sign is ever read, so
    the state stores ``dd_prev valid and dd_prev < 0`` as one bit.

    State per block, in a ``BLOCKS``-deep ``amaranth.lib.memory.Memory``
    (2·DW + 3 bits wide, read port transparent to the write port so that
    back-to-back requests of the same block see each other's update): θ,
    Δ_prev, θ-valid, dd_prev-negative. The α table is a second memory of
    ``TIMESTEPS + 1`` entries (t = 0..T) that the host fills through ``alpha``
    before a run; writing it while requests are in flight is not defined.

    Parameters
    ----------
    blocks : int
        DNN operation blocks (default 56 = DiT-XL/2's 28 transformer blocks x
        (attention, MLP)).
    timesteps : int
        Largest T; the α table holds entries for t = 0..T (default 250).
    max_elements : int
        Largest block input in elements; sets DW (default 256 x 1152, DW = 21).
    alpha_frac : int
        Fractional bits of α (default 15), 0..30.
    decide_before_update : bool
        Decide with the threshold in force before this request's update
        (default ``False``: update, then decide, as Fig. 7 reads).
    reference : str
        Codes the next timestep compares with after a skip: ``"previous"``
        (default, Algorithm 1 as printed: the skipped timestep's codes, so
        ``write_back`` is always 1) or ``"computed"`` (the last computed
        timestep's: ``write_back`` = not ``skip``).

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"delta": DW, "block": BW, "t": TW, "first": 1})))``
        Requests: Δ of ``block`` at timestep index ``t`` (``delta`` ignored when
        ``first``). BW = bits of BLOCKS − 1, TW = bits of TIMESTEPS.
    o : ``Out(stream.Signature(StructLayout({"block": BW, "delta": DW, "theta": DW + 1,
        "theta_valid": 1, "skip": 1, "write_back": 1})))``
        One decision per request, in order: the threshold in force when the
        decision was made (``theta_valid`` = 0 while unset), ``skip``
        (skip-and-reuse) and ``write_back`` (store this timestep's codes as the
        next reference).
    alpha : ``In(Signature({"en": Out(1), "addr": Out(TW), "data": Out(ALPHA_FRAC + 1)}))``
        Host write port of the α table: ``alpha[addr] := data`` on a cycle with ``en``.

    Timing: ``latency`` = 2 cycles (request accepted in cycle c, decision
    valid from c + 2), ``ii`` = 1 for any block sequence, back-to-back repeats
    of one block included; back-pressure on ``o`` stalls both stages.

    Implements docs/SPEC.md "DTSM: dynamic threshold (Algorithm 2 + the skip
    decision of Algorithm 1)".
    """

    def __init__(self, *, blocks=56, timesteps=250, max_elements=DIT_XL2_ELEMENTS, alpha_frac=15,
                 decide_before_update=False, reference="previous"):
        self._blocks = check_int("blocks", blocks, maximum=1 << 16)
        self._timesteps = check_int("timesteps", timesteps, maximum=1 << 16)
        self._max_elements = check_int("max_elements", max_elements, maximum=1 << 40)
        self._alpha_frac = check_int("alpha_frac", alpha_frac, minimum=0, maximum=30)
        self._decide_before_update = check_bool("decide_before_update", decide_before_update)
        self._reference = check_choice("reference", reference, REFERENCES)
        self._delta_width = delta_width(self._max_elements)
        self._block_width = bits_for(self._blocks - 1)
        self._t_width = bits_for(self._timesteps)
        dw = self._delta_width
        self._request_layout = data.StructLayout({
            "delta": dw, "block": self._block_width, "t": self._t_width, "first": 1})
        self._decision_layout = data.StructLayout({
            "block": self._block_width, "delta": dw, "theta": dw + 1,
            "theta_valid": 1, "skip": 1, "write_back": 1})
        self._state_layout = data.StructLayout({
            "theta": dw + 1, "prev": dw, "theta_valid": 1, "dd_neg": 1})
        super().__init__({
            "i": In(stream.Signature(self._request_layout)),
            "o": Out(stream.Signature(self._decision_layout)),
            "alpha": In(wiring.Signature({
                "en": Out(1), "addr": Out(self._t_width), "data": Out(self._alpha_frac + 1)})),
        })

    @property
    def blocks(self):
        return self._blocks

    @property
    def timesteps(self):
        return self._timesteps

    @property
    def max_elements(self):
        return self._max_elements

    @property
    def alpha_frac(self):
        return self._alpha_frac

    @property
    def decide_before_update(self):
        return self._decide_before_update

    @property
    def reference(self):
        return self._reference

    @property
    def delta_width(self):
        """DW, the bits of Δ."""
        return self._delta_width

    @property
    def request_layout(self):
        return self._request_layout

    @property
    def decision_layout(self):
        return self._decision_layout

    @property
    def state_layout(self):
        """One block's state word in the state memory."""
        return self._state_layout

    @property
    def latency(self):
        """Cycles from an accepted request to its decision on ``o``."""
        return 2

    @property
    def ii(self):
        """Cycles between accepted requests while ``o`` is ready."""
        return 1

    def elaborate(self, platform):
        m = Module()
        dw, frac = self._delta_width, self._alpha_frac

        m.submodules.state = state = Memory(shape=self._state_layout, depth=self._blocks, init=[])
        m.submodules.alphas = alphas = Memory(shape=unsigned(frac + 1), depth=self._timesteps + 1, init=[])
        st_wr = state.write_port()
        st_rd = state.read_port(transparent_for=(st_wr,))
        al_wr = alphas.write_port()
        al_rd = alphas.read_port()
        m.d.comb += [al_wr.en.eq(self.alpha.en), al_wr.addr.eq(self.alpha.addr), al_wr.data.eq(self.alpha.data)]

        # Two stages: the request is accepted while its state and α are read
        # (synchronous ports), then updated, written back and decided.
        ce = stall_pipeline(m, self.i.valid, self.i.ready, self.o.valid, self.o.ready, self.latency,
                            name="dtsm")
        s1_valid = Signal()
        s1 = Signal(self._request_layout)
        m.d.comb += [
            st_rd.en.eq(ce), st_rd.addr.eq(self.i.payload.block),
            al_rd.en.eq(ce), al_rd.addr.eq(self.i.payload.t),
        ]
        with m.If(ce):
            m.d.sync += [s1_valid.eq(self.i.valid), s1.eq(self.i.payload)]

        old = st_rd.data
        alpha = al_rd.data
        dd = Signal(signed(dw + 1))
        product = Signal(signed(dw + frac + 3))
        increment = Signal(signed(dw + 3))
        updated = Signal(dw + 1)
        local_min = Signal()
        theta = Signal(dw + 1)
        m.d.comb += [
            dd.eq(s1.delta - old.prev),
            product.eq(alpha * dd),
            increment.eq(product >> frac),  # arithmetic shift of a signed value: floor
            updated.eq(old.prev + increment),
            local_min.eq(old.theta_valid & old.dd_neg & (dd > 0)),
            theta.eq(Mux(~old.theta_valid, s1.delta, Mux(local_min, updated, old.theta))),
        ]

        new = Signal(self._state_layout)
        with m.If(s1.first):
            m.d.comb += [new.theta_valid.eq(0), new.dd_neg.eq(0)]
        with m.Else():
            m.d.comb += [new.theta.eq(theta), new.prev.eq(s1.delta), new.theta_valid.eq(1),
                         new.dd_neg.eq(old.theta_valid & (dd < 0))]
        m.d.comb += [st_wr.en.eq(s1_valid & ce), st_wr.addr.eq(s1.block), st_wr.data.eq(new)]

        used = Signal(dw + 1)
        used_valid = Signal()
        if self._decide_before_update:
            m.d.comb += [used.eq(old.theta), used_valid.eq(old.theta_valid & ~s1.first)]
        else:
            m.d.comb += [used.eq(theta), used_valid.eq(~s1.first)]
        skip = Signal()
        m.d.comb += skip.eq(used_valid & (s1.delta < used))
        with m.If(ce):
            m.d.sync += [
                self.o.payload.block.eq(s1.block),
                self.o.payload.delta.eq(s1.delta),
                self.o.payload.theta.eq(Mux(used_valid, used, 0)),
                self.o.payload.theta_valid.eq(used_valid),
                self.o.payload.skip.eq(skip),
                self.o.payload.write_back.eq(1 if self._reference == "previous" else ~skip),
            ]
        return m
