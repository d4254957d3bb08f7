"""ORBIS distance accumulation unit (DAU): Σ_c s_c²·(q_src - q_dst)² over
channels (ORBIS §3.3, Fig. 6; docs/SPEC.md "DATM engine", pairing)."""

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..common.arith import adder_tree, tree_latency
from ..common.params import check_int
from ..common.stream import delay, register, stall_pipeline
from ..registry import unit

__all__ = ["OrbisDAU", "distance_chunk", "chunk_latency"]


def chunk_latency(lanes: int) -> int:
    """Latency of :func:`distance_chunk`: difference, square, weight, adder tree."""
    return 3 + tree_latency(lanes, 1)


def distance_chunk(m, a, b, w, *, ce=None, name="dau"):
    """Σ_l w[l]·(a[l] - b[l])² over the lanes, pipelined (register after the
    difference, the square, the weighting and every adder-tree level).

    ``a``/``b`` are signed lane values of any width, ``w`` unsigned weights.
    Returns the unsigned sum; it lags the operands by :func:`chunk_latency`.
    """
    def reg(shape, value, label):
        return register(m, value, ce=ce, name=f"{name}_{label}", shape=shape)

    lanes = len(a)
    terms = []
    for l in range(lanes):
        diff_v = a[l] - b[l]
        diff = reg(diff_v.shape(), diff_v, f"diff{l}")
        sq_v = (diff * diff).as_unsigned()[:2 * len(diff) - 2] if len(diff) > 1 else diff * diff
        sq = reg(unsigned(len(sq_v)), sq_v, f"sq{l}")
        wd1 = reg(unsigned(len(w[l])), w[l], f"w{l}_d1")
        wd = reg(unsigned(len(w[l])), wd1, f"w{l}_d2")
        prod = reg(unsigned(len(sq) + len(wd)), sq * wd, f"prod{l}")
        terms.append(prod)
    return adder_tree(terms, m=m, register_every=1, ce=ce, name=f"{name}_tree")


@unit("orbis_dau", golden="golden.orbis.dau_distance", testbench="sim.orbis.tb_orbis_dau")
class OrbisDAU(wiring.Component):
    """DAU: distance Σ_c w_c·(q_src,c - q_dst,c)² of a src/dst token pair, ``CH_LANES`` channels per cycle.

    The weights are w_c = s_c² in fixed point.

    A pair arrives as ⌈C/CH_LANES⌉ beats, the last one flagged ``last``; one
    distance leaves per pair. The datapath registers the difference, the square,
    the weighted square and every adder-tree level, then accumulates chunks.

    Parameters
    ----------
    ch_lanes : int
        Channels per beat L (default 8).
    code_width : int
        Bits of the signed codes (default 4).
    weight_width : int
        Bits of the unsigned weights w_c (default 17: s_c² with 8 fraction bits
        for 8-bit activations).
    channels : int
        Largest channel count per pair (sizes the accumulator; default 32),
        at least ``ch_lanes`` (the distance width holds ``channels`` terms, so
        a beat of more lanes could overflow it).

    Members
    -------
    i : ``In(stream.Signature(StructLayout({src, dst, weight, last})))``
        ``src``/``dst``: ``ArrayLayout(signed(code_width), ch_lanes)``;
        ``weight``: ``ArrayLayout(unsigned(weight_width), ch_lanes)``.
    o : ``Out(stream.Signature(unsigned(dist_width)))``
        The distance of a pair, dist_width = weight_width + 2·code_width +
        ⌈log2 channels⌉.

    Timing: ``ii`` = 1 (one chunk per cycle while ``o`` is ready); the
    distance leaves ``latency`` = 4 + ⌈log2 L⌉ cycles after its last chunk is
    accepted.

    Implements docs/SPEC.md "DATM engine" (pairing).
    """

    def __init__(self, *, ch_lanes=8, code_width=4, weight_width=17, channels=32):
        self._ch_lanes = check_int("ch_lanes", ch_lanes, maximum=256)
        self._code_width = check_int("code_width", code_width, minimum=2, maximum=16)
        self._weight_width = check_int("weight_width", weight_width, maximum=40)
        self._channels = check_int("channels", channels, maximum=1 << 16)
        if self._channels < self._ch_lanes:
            raise ValueError(f"channels must be >= ch_lanes ({self._ch_lanes}), not {channels!r}: "
                             f"the distance width holds only `channels` terms")
        ch_lanes, code_width, weight_width = self._ch_lanes, self._code_width, self._weight_width
        self._dist_width = weight_width + 2 * code_width + ceil_log2(self._channels)
        self._layout = data.StructLayout({
            "src": data.ArrayLayout(signed(code_width), ch_lanes),
            "dst": data.ArrayLayout(signed(code_width), ch_lanes),
            "weight": data.ArrayLayout(unsigned(weight_width), ch_lanes),
            "last": 1,
        })
        super().__init__({
            "i": In(stream.Signature(self._layout)),
            "o": Out(stream.Signature(unsigned(self._dist_width))),
        })

    @property
    def ch_lanes(self):
        return self._ch_lanes

    @property
    def code_width(self):
        return self._code_width

    @property
    def weight_width(self):
        return self._weight_width

    @property
    def channels(self):
        return self._channels

    @property
    def dist_width(self):
        """Bits of a distance on ``o``."""
        return self._dist_width

    @property
    def latency(self):
        """Cycles from a pair's accepted last chunk to its distance on ``o``."""
        return chunk_latency(self._ch_lanes) + 1

    @property
    def ii(self):
        """Cycles between accepted chunks while ``o`` is ready."""
        return 1

    def elaborate(self, platform):
        m = Module()
        depth = self.latency
        pipe_ready = Signal()
        pipe_valid = Signal()
        ce = stall_pipeline(m, self.i.valid, self.i.ready, pipe_valid, pipe_ready, depth, name="dau")
        p = self.i.payload
        lanes = range(self._ch_lanes)
        chunk = distance_chunk(m, [p.src[l] for l in lanes], [p.dst[l] for l in lanes],
                               [p.weight[l] for l in lanes], ce=ce)
        # Side band: the `last` flag and the beat's valid bit travel with the data.
        last = delay(m, p.last, depth - 1, ce=ce, name="last")
        valid = delay(m, self.i.valid & self.i.ready, depth - 1, ce=ce, name="valid")
        run = Signal(self._dist_width)
        out = Signal(self._dist_width)
        out_last = Signal()
        with m.If(ce & valid):
            m.d.sync += [out.eq(run + chunk), out_last.eq(last),
                         run.eq(run + chunk)]
            with m.If(last):
                m.d.sync += run.eq(0)
        m.d.comb += [
            pipe_ready.eq(self.o.ready | ~out_last),
            self.o.valid.eq(pipe_valid & out_last),
            self.o.payload.eq(out),
        ]
        return m
