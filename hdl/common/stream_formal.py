"""Formal properties of the stream helpers of :mod:`hdl.common.stream`
(``stall_pipeline``, ``SkidBuffer``); run by ``python -m sim.formal``.

Every harness feeds the design a sequence-numbered stream: the producer's
payload is the count of beats accepted so far, so a beat that is lost,
duplicated or reordered shows at the output as a payload other than the count
of beats taken so far. ``valid`` of the producer and ``ready`` of the consumer
are free inputs (random gaps and back-pressure, every pattern), and so is the
reset. The helpers here (:func:`stalled_beat_holds`, :class:`SequenceHarness`)
are shared by the other ``*_formal.py`` modules.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.hdl import Assert, Assume, Cover
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .stream import SkidBuffer, stall_pipeline

__all__ = ["stalled_beat_holds", "SequenceHarness", "PipelineUnderTest", "HARNESSES"]


def stalled_beat_holds(m: Module, valid, ready, payload, *, name: str):
    """Assert the stream rule: a beat offered and not taken is offered again,
    unchanged, the next cycle (valid held, payload stable while stalled)."""
    stalled = Signal(name=f"{name}_stalled")
    before = Signal.like(payload, name=f"{name}_before")
    m.d.sync += [stalled.eq(valid & ~ready), before.eq(payload)]
    m.d.comb += [
        Assert(~stalled | valid, f"{name}: valid dropped while stalled"),
        Assert(~stalled | (payload == before), f"{name}: payload changed while stalled"),
    ]
    return stalled


class PipelineUnderTest(wiring.Component):
    """A ``depth``-stage data pipeline built the documented way on
    :func:`stall_pipeline`: every stage register loads on its ``ce``."""

    def __init__(self, depth, width):
        self._depth = depth
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width))})

    def elaborate(self, platform):
        m = Module()
        ce = stall_pipeline(m, self.i.valid, self.i.ready, self.o.valid, self.o.ready, self._depth)
        data = self.i.payload
        for k in range(self._depth):
            stage = Signal.like(self.i.payload, name=f"stage{k}")
            with m.If(ce):
                m.d.sync += stage.eq(data)
            data = stage
        m.d.comb += self.o.payload.eq(data)
        return m


class SequenceHarness(wiring.Component):
    """A stream design between a sequence-numbered producer and a consumer.

    Asserted for every input pattern: (1) a beat on the output carries the
    number of beats taken so far (nothing lost, duplicated or reordered);
    (2) beats in flight (accepted minus taken) never exceed ``capacity``;
    (3) a stalled output beat is held unchanged; (4) ``ready_rule(occ, dut)``
    and ``valid_rule(occ, dut)``, when given, equal the design's ``i.ready`` /
    ``o.valid`` (a rule that reads only the occupancy shows that ready does not
    wait for valid, nor valid for ready). With ``producer_holds`` the producer
    is assumed to keep a stalled ``valid`` (the stream rule); otherwise its
    ``valid`` is free in every cycle. With ``max_stall`` = S the consumer is
    assumed to stall an offered beat for at most S cycles in a row: hidden
    state then reaches the ports within a bounded number of cycles, which lets
    k-induction close; for S at least the design's capacity this reaches the
    same states as an unbounded stall (a longer stall only repeats a state,
    since a full design accepts nothing), so the invariant proved is the
    unrestricted one. With ``stages`` = D the design is a D-stage pipeline
    that advances as a whole whenever it is ready: a model chain of D
    occupancy bits advances on ``i.ready``, and the output's ``valid`` and the
    beats in flight must match it (cycle-exact latency D). Covered: the design fills to
    ``capacity`` and drains back-to-back.

    Members
    -------
    in_valid : In(1)
        The producer's ``valid``.
    out_ready : In(1)
        The consumer's ``ready``.
    """

    in_valid: In(1)
    out_ready: In(1)

    def __init__(self, make_dut, *, width, capacity, ready_rule=None, valid_rule=None,
                 producer_holds=False, max_stall=None, stages=None):
        if capacity >= (1 << width):
            raise ValueError(f"width must exceed bits of capacity {capacity}, not {width!r}")
        self._make_dut = make_dut
        self._width = width
        self._capacity = capacity
        self._ready_rule = ready_rule
        self._valid_rule = valid_rule
        self._producer_holds = producer_holds
        self._max_stall = max_stall
        self._stages = stages
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self._make_dut(self._width)
        sent = Signal(self._width)
        taken = Signal(self._width)
        occ = Signal(self._width)
        accept = Signal()
        take = Signal()
        m.d.comb += [
            dut.i.valid.eq(self.in_valid),
            dut.i.payload.eq(sent),
            dut.o.ready.eq(self.out_ready),
            accept.eq(dut.i.valid & dut.i.ready),
            take.eq(dut.o.valid & dut.o.ready),
            occ.eq(sent - taken),
        ]
        with m.If(accept):
            m.d.sync += sent.eq(sent + 1)
        with m.If(take):
            m.d.sync += taken.eq(taken + 1)
        if self._producer_holds:
            held = Signal()
            m.d.sync += held.eq(dut.i.valid & ~dut.i.ready)
            m.d.comb += Assume(~held | dut.i.valid)
        if self._max_stall is not None:
            run = Signal(range(self._max_stall + 1))
            stall = dut.o.valid & ~dut.o.ready
            m.d.sync += run.eq(Mux(stall, run + 1, 0))
            m.d.comb += Assume(~stall | (run < self._max_stall))
        m.d.comb += [
            Assert(~dut.o.valid | (dut.o.payload == taken), "output beat out of sequence"),
            Assert(occ <= self._capacity, "more beats in flight than the design holds"),
        ]
        stalled_beat_holds(m, dut.o.valid, dut.o.ready, dut.o.payload, name="o")
        if self._ready_rule is not None:
            m.d.comb += Assert(dut.i.ready == self._ready_rule(occ, dut), "i.ready breaks its rule")
        if self._stages:
            chain = Signal(self._stages)
            with m.If(dut.i.ready):
                m.d.sync += chain.eq((chain << 1) | dut.i.valid)
            m.d.comb += [
                Assert(dut.o.valid == chain[-1], "o.valid is not the input delayed by the pipeline"),
                Assert(occ == sum(chain[k] for k in range(self._stages)), "beats in flight do not match the stages"),
            ]
        if self._valid_rule is not None:
            m.d.comb += Assert(dut.o.valid == self._valid_rule(occ, dut), "o.valid breaks its rule")
        # Not vacuous: the design fills up, and a full design empties at one beat per cycle.
        took_last = Signal()
        m.d.sync += took_last.eq(take)
        m.d.comb += [
            Cover(occ == self._capacity),
            Cover(take & took_last & (taken >= 2)),
        ]
        return m


def skid_buffer(max_stall=None):
    """SkidBuffer: in order, at most 2 beats, ``i.ready`` = fewer than 2 held
    (registered: no path from ``o.ready``), ``o.valid`` = at least one held."""
    def factory():
        return SequenceHarness(SkidBuffer, width=3, capacity=2, max_stall=max_stall,
                               ready_rule=lambda occ, dut: occ < 2,
                               valid_rule=lambda occ, dut: occ != 0)
    return factory


def pipeline(depth, max_stall=None):
    """``stall_pipeline`` of ``depth`` stages: in order, at most ``depth``
    beats, ``i.ready`` = ``o.ready`` or output slot empty (never reads
    ``i.valid``)."""
    def factory():
        if depth == 0:
            # A pass-through: ready is the consumer's, and valid is the producer's,
            # so the output keeps a stalled beat only if the producer does.
            return SequenceHarness(lambda w: PipelineUnderTest(0, w), width=3, capacity=0,
                                   ready_rule=lambda occ, dut: dut.o.ready, producer_holds=True)
        return SequenceHarness(lambda w: PipelineUnderTest(depth, w), width=3, capacity=depth,
                               max_stall=max_stall, stages=depth,
                               ready_rule=lambda occ, dut: dut.o.ready | ~dut.o.valid)
    return factory


# Unbounded back-pressure: bounded model checks. Back-pressure of at most
# ``capacity`` cycles in a row (same reachable states, see SequenceHarness):
# k-induction.
HARNESSES = {
    "stream_pipeline_0": (pipeline(0), 8, "prove"),
    "stream_pipeline_1": (pipeline(1), 24, "bmc"),
    "stream_pipeline_3": (pipeline(3), 24, "bmc"),
    "stream_skid_buffer": (skid_buffer(), 24, "bmc"),
    "stream_pipeline_1_fair": (pipeline(1, max_stall=1), 12, "prove"),
    "stream_pipeline_3_fair": (pipeline(3, max_stall=3), 16, "prove"),
    "stream_skid_buffer_fair": (skid_buffer(max_stall=2), 12, "prove"),
}
