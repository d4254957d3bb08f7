"""Ditto Encoding Unit: difference, classify, drop zeros, split full values and
pack four PE lanes per cycle (Ditto §V-B, Fig. 11; docs/SPEC.md "Encoding unit")."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from ..common.arith import adder_tree
from ..common.params import check_int
from ..registry import unit

__all__ = ["DittoEncoder", "Mode", "lane_layout", "encoder_out_layout", "stats_layout"]

LANES = 4
DIFF_BITS = 9
COUNT_BITS = 32


class Mode(enum.Enum, shape=2):
    """Where the previous value comes from."""
    ACT = 0        # previous = 0 (first timestep, activations)
    TEMPORAL = 1   # previous timestep's input (the ``prev`` lanes)
    SPATIAL = 2    # current input ``spatial_offset`` beats earlier (Ditto+)
    FULL = 3       # previous = 0, every element full width, no zero skipping (the accelerator's act mode)


def lane_layout(index_bits: int) -> data.StructLayout:
    """One PE lane: ``nib`` + ``ext`` form the signed 5-bit operand {ext, nib}."""
    return data.StructLayout({"nib": 4, "ext": 1, "index": index_bits, "valid": 1})


def encoder_out_layout(index_bits: int) -> data.StructLayout:
    return data.StructLayout({
        "lanes": data.ArrayLayout(lane_layout(index_bits), LANES),
        "hi": 2,      # hi flags of lanes 0 and 2 (the shifter lanes)
        "last": 1,    # the row's final cycle
    })


stats_layout = data.StructLayout({
    "zero": COUNT_BITS, "low": COUNT_BITS, "full": COUNT_BITS, "cycles": COUNT_BITS,
})


@unit("ditto_encoder", golden="golden.ditto.encode", testbench="sim.ditto.tb_ditto_encoder")
class DittoEncoder(wiring.Component):
    """Encoding Unit: differences, zero/low/full classes, zero skipping, hi/lo split, 4 packed lanes a cycle.

    Subtracts, classifies zero / low / full, drops zeros, splits full
    differences into hi/lo parts and packs them into four PE lanes per cycle
    by docs/SPEC.md's rule; counts the class mix and cycles per layer.

    d = cur − prev (9 bits) with prev = 0 (``act``), the previous timestep's
    value (``temporal``) or the current value ``spatial_offset`` beats earlier
    in the same layer, 0 before that (``spatial``, Ditto+; the paper's offset
    register and multiplexer, with the earlier inputs kept in a memory).
    ``full`` (the accelerator's activation mode, docs/SPEC.md "Ditto
    accelerator") takes prev = 0 and sends every element, zeros included, as
    a full one (hi and lo lanes): the paper's encoder bypass at 8-bit width.
    Zero differences are dropped; low ones (−8..7) take one lane, full ones
    two: hi = d >> 4 in an even lane (shifter lane, ``hi`` flag set) and
    lo = d & 0xF in its odd partner. Packing rule (docs/SPEC.md): elements leave the
    queue in order, a low element takes the lowest free lane, a full element
    the lowest free even lane whose odd partner is free, and a cycle closes at
    the first element that does not fit or at the row's end. A row without a
    non-zero element is one empty cycle carrying ``last``. The cycles equal
    ``golden.ditto.pack_cycles``; the lanes equal ``golden.ditto.encode``.

    Parameters
    ----------
    in_lanes : int
        INT8 elements per input beat (default 8), 1..32.
    max_row : int
        Longest row (reduction length K, elements) the element index holds
        (default 1152, DiT-XL's hidden size), >= ``in_lanes``. A row is a
        whole number of beats.
    queue_depth : int
        Entries of the element queue (default 32), a power of two >=
        2 · (in_lanes + 1).
    max_offset : int
        Deepest spatial offset in beats (default 256), a power of two: the
        depth of the memory holding earlier inputs.

    Members
    -------
    i : ``In(stream.Signature(...))``
        ``cur``, ``prev``: ``in_lanes`` signed INT8 values (lane 0 = lowest
        element index); ``mode`` (:class:`Mode`); ``last``: the beat ends a row;
        ``layer_last``: the beat ends a layer (with ``last``).
    spatial_offset : ``In(range(1, max_offset + 1))``
        Spatial offset in beats; hold it stable during a layer.
    o : ``Out(stream.Signature(encoder_out_layout(...)))``
        Four lanes (``nib``, ``ext``, element ``index`` in the row, ``valid``;
        empty lanes are all zero), ``hi`` flags of lanes 0 and 2, ``last``.
    stats : ``Out(stream.Signature(stats_layout))``
        One beat per layer after its final output beat: zero / low / full
        element counts and packed cycles (32 bits each) for Defo.

    Timing: an accepted beat is in the queue the next cycle, so a packed cycle
    leaves 1 cycle after the beat holding the element that closes it (or the
    row's end). Input ready = queue holds at most ``queue_depth − in_lanes − 1``
    entries (no combinational path from ``o.ready``): II = 1 on the input
    while the output keeps up, one output beat per cycle while the queue holds
    a closed cycle. A layer end waits while the previous layer's ``stats`` beat
    is still untaken. ``latency`` = 1 (beat to the packed cycle it closes),
    ``ii`` = 1 (input beats while the output keeps up).

    Implements docs/SPEC.md "Encoding unit".
    """

    def __init__(self, *, in_lanes=8, max_row=1152, queue_depth=32, max_offset=256):
        self._in_lanes = check_int("in_lanes", in_lanes, maximum=32)
        self._max_row = check_int("max_row", max_row, minimum=self._in_lanes, maximum=1 << 20)
        self._queue_depth = check_int("queue_depth", queue_depth, minimum=2 * (self._in_lanes + 1),
                                      maximum=1024, power_of_two=True)
        self._max_offset = check_int("max_offset", max_offset, maximum=1 << 16, power_of_two=True)
        self._index_bits = bits_for(self._max_row - 1)
        in_lanes, max_offset = self._in_lanes, self._max_offset
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "cur": data.ArrayLayout(signed(8), in_lanes),
                "prev": data.ArrayLayout(signed(8), in_lanes),
                "mode": Mode,
                "last": 1,
                "layer_last": 1,
            }))),
            "spatial_offset": In(range(1, max_offset + 1)),
            "o": Out(stream.Signature(encoder_out_layout(self._index_bits))),
            "stats": Out(stream.Signature(stats_layout)),
        })

    @property
    def in_lanes(self):
        return self._in_lanes

    @property
    def max_row(self):
        return self._max_row

    @property
    def queue_depth(self):
        return self._queue_depth

    @property
    def max_offset(self):
        return self._max_offset

    @property
    def index_bits(self):
        """Bits of a lane's element index."""
        return self._index_bits

    @property
    def latency(self):
        """Cycles from the beat holding a packed cycle's closing element to that cycle on ``o``."""
        return 1

    @property
    def ii(self):
        """Cycles between accepted input beats while the output keeps up."""
        return 1

    def elaborate(self, platform):
        m = Module()
        n_in, q_depth = self._in_lanes, self._queue_depth
        q_bits = bits_for(q_depth - 1)
        pos_bits = bits_for(self._max_row)         # element index, up to K for the row-end marker
        p = self.i.payload
        accept = self.i.valid & self.i.ready

        # --- spatial history: inputs of earlier beats of this layer -------------------
        hist = m.submodules.hist = Memory(shape=unsigned(8 * n_in), depth=self._max_offset, init=[])
        hist_w = hist.write_port()
        hist_r = hist.read_port(domain="comb")
        wptr = Signal(range(self._max_offset), name="hist_wptr")
        beats_in_layer = Signal(range(self._max_offset + 1), name="beats_in_layer")
        m.d.comb += [
            hist_w.addr.eq(wptr), hist_w.data.eq(p.cur.as_value()), hist_w.en.eq(accept),
            hist_r.addr.eq((wptr - self.spatial_offset)[:len(wptr)] if self._max_offset > 1 else 0),
        ]
        have_spatial = beats_in_layer >= self.spatial_offset
        with m.If(accept):
            m.d.sync += wptr.eq(wptr + 1)
            with m.If(p.layer_last):
                m.d.sync += beats_in_layer.eq(0)
            with m.Elif(beats_in_layer != self._max_offset):
                m.d.sync += beats_in_layer.eq(beats_in_layer + 1)
        spatial_prev = data.View(data.ArrayLayout(signed(8), n_in), hist_r.data)

        # --- subtract and classify (comb on the input beat) ---------------------------
        row_base = Signal(pos_bits, name="row_base")     # element index of lane 0
        with m.If(accept):
            m.d.sync += row_base.eq(Mux(p.last, 0, row_base + n_in))
        # (``pos``, not ``index``: an ArrayProxy has an ``index`` attribute of its own)
        entry = data.StructLayout({"d": signed(DIFF_BITS), "full": 1, "pos": pos_bits,
                                   "eor": 1, "layer_last": 1})
        new = []
        nz = []
        for n in range(n_in):
            prev = Mux(p.mode == Mode.TEMPORAL, p.prev[n],
                       Mux((p.mode == Mode.SPATIAL) & have_spatial, spatial_prev[n], 0))
            d = Signal(signed(DIFF_BITS), name=f"d{n}")
            m.d.comb += d.eq(p.cur[n] - prev)
            e = Signal(entry, name=f"new{n}")
            full_mode = p.mode == Mode.FULL
            m.d.comb += [e.d.eq(d), e.full.eq((d < -8) | (d > 7) | full_mode), e.pos.eq(row_base + n)]
            new.append(e)
            z = Signal(name=f"nonzero{n}")
            m.d.comb += z.eq((d != 0) | full_mode)
            nz.append(z)
        eor = Signal(entry, name="new_eor")
        m.d.comb += [eor.eor.eq(1), eor.layer_last.eq(p.layer_last), eor.pos.eq(row_base + n_in)]
        # Compaction: non-zero element n goes to queue slot tail + (non-zeros before n).
        offsets = []
        for n in range(n_in + 1):
            o = Signal(range(n_in + 1), name=f"slot_offset{n}")
            m.d.comb += o.eq(adder_tree(nz[:n]) if n else 0)
            offsets.append(o)
        n_push = Signal(range(n_in + 2), name="n_push")
        m.d.comb += n_push.eq(Mux(accept, offsets[n_in] + p.last, 0))

        # --- element queue (registers: up to in_lanes + 1 writes and 5 reads a cycle) --
        buf = Array(Signal(entry, name=f"q{s}") for s in range(q_depth))
        head = Signal(q_bits, name="q_head")
        count = Signal(range(q_depth + 1), name="q_count")
        tail = Signal(q_bits, name="q_tail")
        m.d.comb += tail.eq(head + count)
        slots = []
        for n in range(n_in + 1):
            slot = Signal(q_bits, name=f"slot{n}")
            m.d.comb += slot.eq(tail + offsets[n])
            slots.append(slot)
        with m.If(accept):
            for s in range(q_depth):
                for n in range(n_in):
                    with m.If(nz[n] & (slots[n] == s)):
                        m.d.sync += buf[s].eq(new[n])
                with m.If(p.last & (slots[n_in] == s)):
                    m.d.sync += buf[s].eq(eor)
        m.d.comb += self.i.ready.eq(count <= q_depth - n_in - 1)

        # --- packer: place head elements by the SPEC rule ----------------------------
        look = LANES + 1
        head_e = []
        for j in range(look):  # one multiplexer per head entry, shared by every use below
            h = Signal(entry, name=f"head{j}")
            m.d.comb += h.eq(buf[(head + j)[:q_bits]])
            head_e.append(h)
        present = [count > j for j in range(look)]
        occ = Const(0, LANES)
        go = Const(1, 1)
        placed, masks = [], []
        for j in range(LANES):
            e = head_e[j]
            low_lane = [~occ[k] & (occ[:k] == (1 << k) - 1) if k else ~occ[0] for k in range(LANES)]
            low_mask = Cat(*low_lane)
            pair0 = ~occ[0] & ~occ[1]
            pair1 = ~occ[2] & ~occ[3]
            full_mask = Mux(pair0, 0b0011, Mux(pair1, 0b1100, 0))
            mask = Signal(LANES, name=f"mask{j}")
            m.d.comb += mask.eq(Mux(e.full, full_mask, low_mask))
            ok = Signal(name=f"place{j}")
            m.d.comb += ok.eq(go & present[j] & ~e.eor & (mask != 0))
            placed.append(ok)
            masks.append(mask)
            nocc = Signal(LANES, name=f"occ{j + 1}")
            m.d.comb += nocc.eq(Mux(ok, occ | mask, occ))
            occ = nocc
            go = ok
        n_placed = Signal(range(LANES + 1), name="n_placed")
        m.d.comb += n_placed.eq(adder_tree(placed))
        closing = Signal(entry, name="closing")
        closing_present = Signal(name="closing_present")
        m.d.comb += [closing.eq(Array(head_e)[n_placed]), closing_present.eq(Array(present)[n_placed])]
        closes_row = Signal(name="closes_row")
        closes_layer = Signal(name="closes_layer")
        m.d.comb += [closes_row.eq(closing_present & closing.eor),
                     closes_layer.eq(closing_present & closing.eor & closing.layer_last)]

        stats_valid = Signal(name="stats_valid")
        emit = Signal(name="emit")
        m.d.comb += [emit.eq(closing_present & ~(closes_layer & stats_valid)),
                     self.o.valid.eq(emit)]
        out = self.o.payload
        for lane in range(LANES):
            ln = out.lanes[lane]
            for j in range(LANES):
                e = head_e[j]
                with m.If(placed[j] & masks[j][lane]):
                    if lane % 2 == 0:
                        operand = Mux(e.full, e.d >> 4, e.d)[:5]
                    else:
                        operand = Mux(e.full, e.d[:4], e.d[:5])
                    m.d.comb += [ln.nib.eq(operand[:4]), ln.ext.eq(operand[4]),
                                 ln.index.eq(e.pos), ln.valid.eq(1)]
                    if lane in (0, 2):
                        m.d.comb += out.hi[lane // 2].eq(e.full)
        m.d.comb += out.last.eq(closes_row)
        take = self.o.valid & self.o.ready
        n_pop = Signal(range(LANES + 2), name="n_pop")
        m.d.comb += n_pop.eq(Mux(take, n_placed + closes_row, 0))
        m.d.sync += [head.eq(head + n_pop), count.eq(count + n_push - n_pop)]

        # --- per-layer statistics (counted where elements leave the queue) ----------
        n_full = adder_tree([placed[j] & head_e[j].full for j in range(LANES)])
        n_low = adder_tree([placed[j] & ~head_e[j].full for j in range(LANES)])
        # Zeros skipped between consumed entries: their index gaps (telescoped).
        prev_index = Signal(signed(pos_bits + 1), init=-1, name="prev_index")
        last_placed = Signal(entry, name="last_placed")
        m.d.comb += last_placed.eq(Array(head_e)[(n_placed - 1)[:3]])
        last_index = Mux(closes_row, closing.pos, last_placed.pos)
        zeros = Signal(signed(pos_bits + 2), name="zeros_now")
        m.d.comb += zeros.eq(last_index - prev_index - n_pop)
        cnt = {k: Signal(COUNT_BITS, name=f"count_{k}") for k in ("zero", "low", "full", "cycles")}
        now = {"zero": cnt["zero"] + zeros, "low": cnt["low"] + n_low,
               "full": cnt["full"] + n_full, "cycles": cnt["cycles"] + 1}
        with m.If(self.stats.valid & self.stats.ready):
            m.d.sync += stats_valid.eq(0)
        with m.If(take):
            m.d.sync += prev_index.eq(Mux(closes_row, -1, last_index))
            with m.If(closes_layer):
                m.d.sync += [stats_valid.eq(1)] + [getattr(self.stats.payload, k).eq(now[k]) for k in cnt] \
                    + [c.eq(0) for c in cnt.values()]
            with m.Else():
                m.d.sync += [cnt[k].eq(now[k]) for k in cnt]
        m.d.comb += self.stats.valid.eq(stats_valid)
        return m
