"""ORBIS quantization engine (QE): channel-wise 4-bit symmetric quantization
(ORBIS §3.2-3.3, Fig. 6; docs/SPEC.md "Quantization engine")."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..common.arith import popcount
from ..common.stream import check_positive, stall_pipeline
from ..registry import unit

__all__ = ["OrbisQE", "qe_scale_width", "CODE_WIDTH"]

CODE_WIDTH = 4
QMAX = 7


def qe_scale_width(data_width: int, scale_frac: int) -> int:
    """Bits of the fixed-point scale S = round(M·2^F/7), M <= 2^(DW-1); S = 2^F for M = 0."""
    top = ((1 << (data_width - 1 + scale_frac)) + 3) // QMAX
    return max(top, 1 << scale_frac).bit_length()


@unit("orbis_qe", golden="golden.orbis.qe", testbench="sim.orbis.tb_orbis_qe")
class OrbisQE(wiring.Component):
    """QE: per-channel max-abs, fixed-point scales and 4-bit quantization of a
    tokens x channels activation (the previous timestep's SDPA output).

    Buffered single pass: the matrix streams in once (token-major, ``CH_LANES``
    channels per beat) into an ``amaranth.lib.memory`` buffer while per-channel
    max|x| registers track it; then the ``CB = ⌈CHANNELS/CH_LANES⌉`` scale beats
    leave, then the buffer is read back and quantized, one beat per cycle.

    Arithmetic (docs/SPEC.md): M_c = max|x_c|; S_c = round(M_c·2^SCALE_FRAC / 7)
    (never a tie, = (M_c·2^F + 3) // 7), S_c = 2^F for M_c = 0;
    q = round_half_even(7x / M_c), division-free: with t = 14|x| and
    T_j = (2j+1)·M_c, |q| = #{j < 7: t > T_j} + #{j odd: t = T_j} (a tie on an
    odd j rounds up to the even neighbour), q = 0 where M_c = 0. |q| <= 7, so
    the clamp to [-8, 7] never acts. Lanes past ``CHANNELS`` in the last chunk
    are ignored (scale 2^F, code 0).

    Parameters
    ----------
    num_tokens : int
        Tokens N per matrix (default 64).
    channels : int
        Channels C (default 32).
    ch_lanes : int
        Channels per beat L (default 8).
    data_width : int
        Bits of the signed integer activations (default 8).
    scale_frac : int
        Fraction bits F of the scales (default 8).

    Members
    -------
    i : ``In(stream.Signature(ArrayLayout(signed(data_width), ch_lanes)))``
        Activations, token-major: N·CB beats per matrix.
    scales : ``Out(stream.Signature(ArrayLayout(unsigned(scale_width), ch_lanes)))``
        CB beats of fixed-point scales S_c per matrix (before the codes).
    o : ``Out(stream.Signature(ArrayLayout(signed(4), ch_lanes)))``
        Codes, token-major, N·CB beats per matrix.

    Timing: a matrix takes N·CB input cycles, then CB scale cycles, then the
    codes: the first code 3 cycles after the last scale, then one per cycle
    (II = 1 while ``o`` is ready). Input is refused while scales and codes
    drain (one matrix buffer).
    """

    def __init__(self, *, num_tokens=64, channels=32, ch_lanes=8, data_width=8, scale_frac=8):
        self._n = check_positive("num_tokens", num_tokens, maximum=1 << 16)
        self._c = check_positive("channels", channels, maximum=1 << 14)
        self._l = check_positive("ch_lanes", ch_lanes, maximum=256)
        self._dw = check_positive("data_width", data_width, minimum=2, maximum=32)
        self._f = check_positive("scale_frac", scale_frac, minimum=0, maximum=24)
        self._cb = -(-channels // ch_lanes)
        self._sw = qe_scale_width(data_width, scale_frac)
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(signed(data_width), ch_lanes))),
            "scales": Out(stream.Signature(data.ArrayLayout(unsigned(self._sw), ch_lanes))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(CODE_WIDTH), ch_lanes))),
        })

    @property
    def scale_width(self):
        return self._sw

    @property
    def chunks(self):
        return self._cb

    def _lane_used(self, cb, lane):
        return Const(1) if self._c % self._l == 0 else (cb * self._l + lane < self._c)

    def elaborate(self, platform):
        m = Module()
        n, cb_n, lanes, dw, f = self._n, self._cb, self._l, self._dw, self._f
        total = n * cb_n
        m.submodules.buf = buf = Memory(shape=unsigned(dw * lanes), depth=total, init=[])
        wr = buf.write_port()
        rd = buf.read_port()

        # Per-channel max|x| registers, CB rows of L lanes.
        peak = [[Signal(dw, name=f"peak_{c}_{l}") for l in range(lanes)] for c in range(cb_n)]
        peak_rows = [Array(peak[c][l] for c in range(cb_n)) for l in range(lanes)]

        addr = Signal(range(total + 1))
        chunk = Signal(range(cb_n))
        first_token = Signal(init=1)
        out_count = Signal(range(total + 1))

        def next_chunk(sig):
            return Mux(sig == cb_n - 1, 0, sig + 1)

        with m.FSM(name="qe"):
            with m.State("LOAD"):
                m.d.comb += self.i.ready.eq(1)
                m.d.comb += [wr.addr.eq(addr), wr.data.eq(self.i.payload.as_value()),
                             wr.en.eq(self.i.valid)]
                with m.If(self.i.valid):
                    for l in range(lanes):
                        x = self.i.payload[l]
                        used = Const(1) if self._c % lanes == 0 else (chunk * lanes + l < self._c)
                        mag = Signal(dw, name=f"load_mag_{l}")
                        m.d.comb += mag.eq(Mux(used, Mux(x < 0, -x, x).as_unsigned()[:dw], 0))
                        old = Signal(dw, name=f"peak_old_{l}")
                        m.d.comb += old.eq(peak_rows[l][chunk])
                        with m.If(first_token | (mag > old)):
                            m.d.sync += peak_rows[l][chunk].eq(mag)
                    m.d.sync += [addr.eq(addr + 1), chunk.eq(next_chunk(chunk))]
                    with m.If(chunk == cb_n - 1):
                        m.d.sync += first_token.eq(0)
                    with m.If(addr == total - 1):
                        m.d.sync += [addr.eq(0), chunk.eq(0)]
                        m.next = "SCALES"
            with m.State("SCALES"):
                m.d.comb += self.scales.valid.eq(1)
                for l in range(lanes):
                    pk = Signal(dw, name=f"scale_peak_{l}")
                    m.d.comb += pk.eq(peak_rows[l][chunk])
                    s = ((pk << f) + 3) // QMAX
                    m.d.comb += self.scales.payload[l].eq(Mux(pk == 0, 1 << f, s))
                with m.If(self.scales.ready):
                    m.d.sync += chunk.eq(next_chunk(chunk))
                    with m.If(chunk == cb_n - 1):
                        m.next = "QUANT"
            with m.State("QUANT"):
                issue = Signal()
                issue_ready = Signal()
                m.d.comb += issue.eq(addr < total)
                ce = stall_pipeline(m, issue, issue_ready, self.o.valid, self.o.ready, 2, name="qe")
                m.d.comb += [rd.addr.eq(addr), rd.en.eq(ce)]
                chunk1 = Signal.like(chunk)
                with m.If(ce):
                    m.d.sync += chunk1.eq(chunk)
                    with m.If(issue & issue_ready):
                        m.d.sync += [addr.eq(addr + 1), chunk.eq(next_chunk(chunk))]
                    for l in range(lanes):
                        x = Signal(signed(dw), name=f"quant_x_{l}")
                        pk = Signal(dw, name=f"quant_peak_{l}")
                        t = Signal(dw + 4, name=f"quant_t_{l}")
                        m.d.comb += [x.eq(rd.data[l * dw:(l + 1) * dw]),
                                     pk.eq(peak_rows[l][chunk1]),
                                     t.eq(Mux(x < 0, -x, x).as_unsigned()[:dw] * 14)]
                        thr = [Signal(dw + 4, name=f"quant_thr_{l}_{j}") for j in range(QMAX)]
                        m.d.comb += [thr[j].eq((2 * j + 1) * pk) for j in range(QMAX)]
                        gt = [t > thr[j] for j in range(QMAX)]
                        eq = [t == thr[j] for j in range(1, QMAX, 2)]
                        votes = Signal(len(gt) + len(eq), name=f"quant_votes_{l}")
                        qmag = Signal(3, name=f"qmag_{l}")
                        m.d.comb += [votes.eq(Cat(*gt, *eq)), qmag.eq(popcount(votes))]
                        used = Const(1) if self._c % lanes == 0 else (chunk1 * lanes + l < self._c)
                        code = Mux((pk == 0) | ~used, 0, Mux(x < 0, -qmag, qmag))
                        m.d.sync += self.o.payload[l].eq(code)
                with m.If(self.o.valid & self.o.ready):
                    m.d.sync += out_count.eq(out_count + 1)
                    with m.If(out_count == total - 1):
                        m.d.sync += [out_count.eq(0), addr.eq(0), chunk.eq(0), first_token.eq(1)]
                        m.next = "LOAD"
        return m
