"""Formal properties of the Ditto encoder's element queue (hdl/ditto/ditto_encoder.py;
docs/SPEC.md "Encoding unit"), observed at its ports. Run by ``python -m sim.formal``.

The harness counts queue entries the way the docstring defines them: an
accepted beat pushes one entry per non-zero difference plus a row-end marker
with ``last``; a taken output beat pops one entry per element it carries (a
low element is one valid lane, a full one two lanes with a ``hi`` flag) plus
the marker with ``last``. Asserted for every input, mode, gap and
back-pressure pattern: the queue never holds more than ``queue_depth``
entries nor hands out more than it holds, ``i.ready`` is exactly the
documented rule (at most ``queue_depth − in_lanes − 1`` entries held, so an
accepted beat always fits), and a stalled ``o`` or ``stats`` beat is held.
The queue lives in registers the ports do not show, so these are bounded
checks.
"""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.hdl import Assert, Assume, Cover
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from ..common.stream_formal import stalled_beat_holds
from .ditto_encoder import LANES, DittoEncoder, Mode

__all__ = ["EncoderQueueHarness", "HARNESSES"]


class EncoderQueueHarness(wiring.Component):
    """The encoder between a free producer (values, modes, row and layer ends),
    a free output consumer and a free statistics consumer.

    Assumed: rows no longer than ``max_row`` elements, ``layer_last`` only
    with ``last``, a fixed ``spatial_offset`` of 1 and defined modes.
    """

    def __init__(self, **params):
        self._dut = DittoEncoder(**params)
        dut = self._dut
        super().__init__({
            "in_valid": In(1),
            "in_payload": In(dut.i.payload.shape()),
            "spatial_offset": In(dut.spatial_offset.shape()),
            "out_ready": In(1),
            "stats_ready": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self._dut
        n_in, q = dut.in_lanes, dut.queue_depth
        p = dut.i.payload
        m.d.comb += [
            dut.i.valid.eq(self.in_valid), p.eq(self.in_payload), dut.spatial_offset.eq(self.spatial_offset),
            dut.o.ready.eq(self.out_ready), dut.stats.ready.eq(self.stats_ready),
        ]
        accept = dut.i.valid & dut.i.ready
        take = dut.o.valid & dut.o.ready

        # Producer contract.
        beats_per_row = dut.max_row // n_in
        row_beat = Signal(range(beats_per_row + 1))
        with m.If(accept):
            m.d.sync += row_beat.eq(Mux(p.last, 0, row_beat + 1))
        m.d.comb += [
            Assume(self.spatial_offset == 1),
            Assume(~self.in_valid | (p.mode.as_value() <= Mode.SPATIAL.value)),
            Assume(~self.in_valid | ~p.layer_last | p.last),
            Assume(~self.in_valid | (row_beat < beats_per_row - 1) | p.last),
        ]

        # Entries pushed by a beat: its non-zero differences and the row-end marker.
        # The spatial reference (offset 1) is the previous beat of this layer, 0 on its first.
        before = Signal.like(p.cur, name="prev_beat")
        have_before = Signal(name="have_prev_beat")
        with m.If(accept):
            m.d.sync += [before.eq(p.cur), have_before.eq(~p.layer_last)]
        nonzero = []
        for k in range(n_in):
            ref = Mux(p.mode == Mode.TEMPORAL, p.prev[k],
                      Mux((p.mode == Mode.SPATIAL) & have_before, before[k], 0))
            nonzero.append(p.cur[k] != ref)
        push = Signal(range(n_in + 2), name="push")
        m.d.comb += push.eq(Mux(accept, sum(nonzero) + p.last, 0))
        # Entries popped by an output beat: elements (valid lanes minus full
        # elements' second lanes) and the marker.
        lanes = dut.o.payload.lanes
        pop = Signal(range(LANES + 2), name="pop")
        m.d.comb += pop.eq(Mux(take, sum(lanes[k].valid for k in range(LANES))
                                 - dut.o.payload.hi[0] - dut.o.payload.hi[1] + dut.o.payload.last, 0))
        occ = Signal(signed(8), name="occupancy")
        m.d.sync += occ.eq(occ + push - pop)
        m.d.comb += [
            Assert(occ >= 0, "more entries handed out than pushed"),
            Assert(occ <= q, "queue overflow"),
            Assert(~take | (pop <= occ), "output carries entries the queue does not hold"),
            Assert(~accept | (occ + n_in + 1 <= q), "accepted a beat the queue cannot hold"),
            Assert(dut.i.ready == (occ <= q - n_in - 1), "i.ready is not the documented queue rule"),
            Assert(~dut.o.payload.hi[0] | lanes[0].valid & lanes[1].valid, "hi flag on a half-empty pair"),
            Assert(~dut.o.payload.hi[1] | lanes[2].valid & lanes[3].valid, "hi flag on a half-empty pair"),
        ]
        stalled_beat_holds(m, dut.o.valid, dut.o.ready, dut.o.payload.as_value(), name="o")
        stalled_beat_holds(m, dut.stats.valid, dut.stats.ready, dut.stats.payload.as_value(), name="stats")
        m.d.comb += [
            Cover(~dut.i.ready),
            Cover(take & dut.o.payload.hi[0] & dut.o.payload.hi[1]),
            Cover(dut.stats.valid & dut.stats.ready),
        ]
        return m


HARNESSES = {
    "ditto_encoder_queue": (lambda: EncoderQueueHarness(in_lanes=1, max_row=4, queue_depth=4, max_offset=1),
                            10, "bmc"),
}
