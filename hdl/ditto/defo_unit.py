"""Ditto Defo Unit: per-layer cycle table and execution-type decision
(Ditto §IV-B, §V-B; docs/SPEC.md "Defo unit")."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..common.params import check_int
from ..common.stream import stall_pipeline
from ..registry import unit

__all__ = ["DefoUnit", "DefoOp"]

CYCLE_BITS = 16


class DefoOp(enum.Enum, shape=1):
    QUERY = 0    # read the layer's execution type
    RECORD = 1   # the layer finished: store its cycles (step 0 / 1), restart the counter


@unit("defo_unit", golden="golden.ditto.defo", testbench="sim.ditto.tb_defo_unit")
class DefoUnit(wiring.Component):
    """Defo Unit: 512 × 33-bit cycle table, saturating counter, per-layer activation/difference decision.

    A table of ``entries`` × 33 bits (16-bit cycles of timestep 1 on
    activations, 16-bit cycles of timestep 2 on differences, the decision
    bit), a saturating cycle counter, the compare logic and the read-out of a
    layer's execution type.

    The counter counts ``tick`` cycles of the running layer and saturates at
    0xFFFF. A ``RECORD`` command for (layer, step) stores the count (the tick
    of the command's own cycle included) and restarts the counter: step 0
    (first timestep) starts the entry over with cycles_act; step 1 stores
    cycles_diff and the decision cycles_diff < cycles_act (docs/SPEC.md: the paper's
    sentence has it inverted); later steps leave the table alone. A ``QUERY``
    only reads. Every command answers with the layer's execution type at that
    step (0 activations at step 0, 1 differences at step 1, the stored decision
    from step 2 on) and the entry after the command.

    Parameters
    ----------
    entries : int
        Table entries = layers (default 512: the paper's 347 layers rounded up
        to a power of two), 1..65536.

    Members
    -------
    tick : ``In(1)``
        The running layer spent this cycle (e.g. the compute unit was busy).
    i : ``In(stream.Signature(...))``
        ``op`` (:class:`DefoOp`), ``layer``, ``step`` (0, 1, 2 = later).
    o : ``Out(stream.Signature(...))``
        ``use_diff``, ``decision``, ``cycles_act``, ``cycles_diff``.

    Timing: table read (1 cycle), compare and write-back (1 cycle): the
    answer leaves ``latency`` = 2 cycles after the command; ``ii`` = 1,
    back-to-back commands on one layer see each other's writes (transparent
    read).

    Implements docs/SPEC.md "Defo unit".
    """

    def __init__(self, *, entries=512):
        self._entries = check_int("entries", entries, maximum=1 << 16)
        entries = self._entries
        self._entry = data.StructLayout({"act": CYCLE_BITS, "diff": CYCLE_BITS, "decision": 1})
        super().__init__({
            "tick": In(1),
            "i": In(stream.Signature(data.StructLayout({"op": DefoOp, "layer": range(entries), "step": 2}))),
            "o": Out(stream.Signature(data.StructLayout({
                "use_diff": 1, "decision": 1, "cycles_act": CYCLE_BITS, "cycles_diff": CYCLE_BITS}))),
        })

    @property
    def entries(self):
        return self._entries

    @property
    def latency(self):
        """Cycles from an accepted command to its answer on ``o``."""
        return 2

    @property
    def ii(self):
        """Cycles between accepted commands while ``o`` is ready."""
        return 1

    def elaborate(self, platform):
        m = Module()
        top = (1 << CYCLE_BITS) - 1
        ce = stall_pipeline(m, self.i.valid, self.i.ready, self.o.valid, self.o.ready, self.latency,
                            name="defo")
        accept = self.i.valid & self.i.ready
        p = self.i.payload

        # Saturating cycle counter of the running layer.
        count = Signal(CYCLE_BITS, name="cycle_count")
        now = Signal(CYCLE_BITS, name="cycle_now")
        m.d.comb += now.eq(Mux((count == top) | ~self.tick, count, count + 1))
        m.d.sync += count.eq(Mux(accept & (p.op == DefoOp.RECORD), 0, now))

        table = m.submodules.table = Memory(shape=self._entry, depth=self._entries, init=[])
        wp = table.write_port()
        rp = table.read_port(transparent_for=(wp,))
        m.d.comb += [rp.addr.eq(p.layer), rp.en.eq(ce)]

        # Stage 1: the command and the count wait beside the table read.
        s1 = Signal(data.StructLayout({"op": DefoOp, "layer": range(self._entries), "step": 2,
                                       "cycles": CYCLE_BITS}), name="s1")
        s1_valid = Signal(name="s1_valid")
        with m.If(ce):
            m.d.sync += [s1_valid.eq(self.i.valid), s1.op.eq(p.op), s1.layer.eq(p.layer), s1.step.eq(p.step), s1.cycles.eq(now)]
        old = rp.data
        new = Signal(self._entry, name="entry_new")
        record = s1.op == DefoOp.RECORD
        with m.If(record & (s1.step == 0)):
            m.d.comb += [new.act.eq(s1.cycles), new.diff.eq(0), new.decision.eq(0)]
        with m.Elif(record & (s1.step == 1)):
            m.d.comb += [new.act.eq(old.act), new.diff.eq(s1.cycles), new.decision.eq(s1.cycles < old.act)]
        with m.Else():
            m.d.comb += new.eq(old)
        m.d.comb += [wp.addr.eq(s1.layer), wp.data.eq(new),
                     wp.en.eq(ce & s1_valid & record & (s1.step <= 1))]

        # Stage 2: the answer.
        o = self.o.payload
        with m.If(ce):
            m.d.sync += [o.use_diff.eq(Mux(s1.step == 0, 0, Mux(s1.step == 1, 1, new.decision))),
                         o.decision.eq(new.decision), o.cycles_act.eq(new.act), o.cycles_diff.eq(new.diff)]
        return m
