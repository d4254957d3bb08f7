"""Formal properties of the DTSM (hdl/radit/dtsm.py; docs/SPEC.md "DTSM"):
every decision equals a reference model of Algorithm 2 kept in the harness,
for every request sequence, α table and back-pressure, at reduced widths
(2 blocks, T = 1, Δ of 3 bits, α of 3 bits). Run by ``python -m sim.formal``.

The reference model updates its per-block state at the cycle a request is
accepted, so two back-to-back requests for the same block (the state memory's
read-after-write hazard the transparent read port resolves) must see the
first one's update. The state memory is not observable at the ports and
starts anywhere the last run left it, so these are bounded checks.
"""

from amaranth.hdl import Array, Module, Mux, Signal, unsigned
from amaranth.hdl import Assert, Assume, Cover
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from ..common.stream_formal import stalled_beat_holds
from .dtsm import DTSM

__all__ = ["DTSMHarness", "HARNESSES"]


class DTSMHarness(wiring.Component):
    """A DTSM between a free requester, a free consumer and a free α writer.

    Assumed: every block's first request after reset carries ``first`` (the
    documented contract). Asserted: (1) each decision (block, Δ, θ, θ valid,
    skip, write_back) equals the model's for that request, in request order;
    (2) ``o.valid`` is the request delayed by the 2-stage pipeline advancing
    on ``i.ready`` (latency 2, nothing lost or invented), and ``i.ready`` =
    ``o.ready`` or no decision waiting; (3) a stalled decision is held; (4) the
    model's θ never needs more than DW + 1 bits. Covered: a skip, a local-
    minimum update and a back-to-back pair of one block.
    """

    def __init__(self, **params):
        self._dut = DTSM(**params)
        self._dbu = params.get("decide_before_update", False)
        self._computed = params.get("reference", "previous") == "computed"
        dut = self._dut
        super().__init__({
            "req_valid": In(1),
            "req": In(dut.request_layout),
            "out_ready": In(1),
            "alpha_en": In(1),
            "alpha_addr": In(len(dut.alpha.addr)),
            "alpha_data": In(len(dut.alpha.data)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self._dut
        dw, frac, blocks = dut.delta_width, dut.alpha_frac, dut.blocks
        m.d.comb += [
            dut.i.valid.eq(self.req_valid), dut.i.payload.eq(self.req), dut.o.ready.eq(self.out_ready),
            dut.alpha.en.eq(self.alpha_en), dut.alpha.addr.eq(self.alpha_addr),
            dut.alpha.data.eq(self.alpha_data),
        ]
        accept = dut.i.valid & dut.i.ready
        take = dut.o.valid & dut.o.ready
        req = self.req

        # The host's α table, as the DTSM should hold it (kept across reset, like a memory).
        alpha_tab = Array(Signal(len(dut.alpha.data), name=f"alpha{t}", reset_less=True)
                          for t in range(dut.timesteps + 1))
        with m.If(self.alpha_en):
            m.d.sync += alpha_tab[self.alpha_addr].eq(self.alpha_data)

        # Algorithm 2 per block, from docs/SPEC.md "DTSM".
        def reg(name, shape):
            return Array(Signal(shape, name=f"{name}{b}") for b in range(blocks))
        theta_r, theta_v = reg("theta", dw + 1), reg("theta_valid", 1)
        prev_r, prev_v = reg("prev", dw), reg("prev_valid", 1)
        ddneg_r, dd_v = reg("dd_neg", 1), reg("dd_valid", 1)
        seen = reg("seen", 1)
        b = req.block
        m.d.comb += Assume(~self.req_valid | seen[b] | req.first)
        m.d.comb += Assume(~self.req_valid | (req.block < blocks))
        m.d.comb += Assume(~self.req_valid | (req.t <= dut.timesteps))

        delta = req.delta
        dd_pos = Signal(name="dd_pos")
        dd_neg = Signal(name="dd_neg")
        m.d.comb += [dd_pos.eq(delta > prev_r[b]), dd_neg.eq(delta < prev_r[b])]
        rise = Signal(unsigned(dw), name="rise")
        m.d.comb += rise.eq(delta - prev_r[b])   # used only where dd > 0
        scaled = Signal(unsigned(dw + frac + 2), name="scaled")
        m.d.comb += scaled.eq((alpha_tab[req.t] * rise) >> frac)
        theta_wide = Signal(unsigned(dw + frac + 3), name="theta_wide")
        local_min = Signal(name="local_min")
        m.d.comb += local_min.eq(theta_v[b] & dd_pos & dd_v[b] & ddneg_r[b])
        with m.If(~theta_v[b]):
            m.d.comb += theta_wide.eq(delta)
        with m.Elif(local_min):
            m.d.comb += theta_wide.eq(prev_r[b] + scaled)
        with m.Else():
            m.d.comb += theta_wide.eq(theta_r[b])
        m.d.comb += Assert(~accept | req.first | (theta_wide < (1 << (dw + 1))), "θ needs more than DW + 1 bits")

        exp = Signal(dut.decision_layout, name="expected")
        m.d.comb += [exp.block.eq(b), exp.delta.eq(delta)]
        with m.If(~req.first):
            if self._dbu:
                m.d.comb += [exp.theta_valid.eq(theta_v[b]), exp.theta.eq(Mux(theta_v[b], theta_r[b], 0))]
            else:
                m.d.comb += [exp.theta_valid.eq(1), exp.theta.eq(theta_wide)]
            m.d.comb += exp.skip.eq(exp.theta_valid & (delta < exp.theta))
        m.d.comb += exp.write_back.eq(~exp.skip if self._computed else 1)

        with m.If(accept):
            m.d.sync += seen[b].eq(1)
            with m.If(req.first):
                m.d.sync += [theta_v[b].eq(0), prev_v[b].eq(0), dd_v[b].eq(0)]
            with m.Else():
                m.d.sync += [theta_r[b].eq(theta_wide), theta_v[b].eq(1), prev_r[b].eq(delta),
                             prev_v[b].eq(1), dd_v[b].eq(prev_v[b]), ddneg_r[b].eq(dd_neg)]

        # Expected decisions in request order (at most 2 in flight).
        queue = Array(Signal(dut.decision_layout, name=f"pending{k}") for k in range(2))
        wr = Signal(1)
        rd = Signal(1)
        n = Signal(range(4))
        with m.If(accept):
            m.d.sync += [queue[wr].eq(exp), wr.eq(wr + 1)]
        with m.If(take):
            m.d.sync += rd.eq(rd + 1)
        m.d.sync += n.eq(n + accept - take)
        chain = Signal(2)
        with m.If(dut.i.ready):
            m.d.sync += chain.eq((chain << 1) | dut.i.valid)
        m.d.comb += [
            Assert(n <= 2, "more than 2 requests in flight"),
            Assert(dut.o.valid == chain[1], "decision not 2 pipeline steps after its request"),
            Assert(n == chain[0] + chain[1], "requests in flight do not match the stages"),
            Assert(dut.i.ready == (dut.o.ready | ~dut.o.valid), "i.ready breaks its rule"),
            Assert(~dut.o.valid | (dut.o.payload.as_value() == queue[rd].as_value()),
                   "decision differs from the reference model"),
        ]
        stalled_beat_holds(m, dut.o.valid, dut.o.ready, dut.o.payload.as_value(), name="o")

        last_accept = Signal()
        last_block = Signal.like(req.block)
        m.d.sync += [last_accept.eq(accept & ~req.first), last_block.eq(b)]
        m.d.comb += [
            Cover(take & dut.o.payload.skip),
            Cover(accept & ~req.first & local_min),
            Cover(accept & ~req.first & last_accept & (last_block == b) & theta_v[b]),
        ]
        return m


SMALL = dict(blocks=2, timesteps=1, max_elements=1, alpha_frac=2)

HARNESSES = {
    "dtsm_reference": (lambda: DTSMHarness(**SMALL), 10, "bmc"),
    "dtsm_decide_before_update_computed": (
        lambda: DTSMHarness(**SMALL, decide_before_update=True, reference="computed"), 10, "bmc"),
}
