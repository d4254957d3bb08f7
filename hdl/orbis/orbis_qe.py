"""ORBIS quantization engine (QE): channel-wise 4-bit symmetric quantization
(ORBIS §3.2-3.3, Fig. 6; docs/SPEC.md "Quantization engine")."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..common import fp16_fields as fp16
from ..common.arith import popcount
from ..common.params import check_choice, check_int
from ..common.stream import stall_pipeline
from ..registry import unit

__all__ = ["OrbisQE", "qe_scale_width", "CODE_WIDTH", "DTYPES"]

CODE_WIDTH = 4
QMAX = 7
DTYPES = ("int8", "fp16")
# |x| <= M_c/2^FAR_SHIFT with M_c normal quantizes to 0: 14·sig_x < 2^15 <= sig_M·2^FAR_SHIFT.
FAR_SHIFT = 5


def qe_scale_width(data_width: int, scale_frac: int) -> int:
    """Bits of the fixed-point scale S = round(M·2^F/7), M <= 2^(DW-1); S = 2^F for M = 0."""
    top = ((1 << (data_width - 1 + scale_frac)) + 3) // QMAX
    return max(top, 1 << scale_frac).bit_length()


def _max(a, b):
    return Mux(a > b, a, b)


def _max_tree(values):
    """Pairwise (log-depth) maximum of unsigned values."""
    values = list(values)
    while len(values) > 1:
        values = [_max(values[i], values[i + 1]) if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


@unit("orbis_qe", golden="golden.orbis.qe", testbench="sim.orbis.tb_orbis_qe")
class OrbisQE(wiring.Component):
    """QE: per-channel max-abs, fixed-point scales and 4-bit quantization of a
    tokens x channels activation (the previous timestep's SDPA output).

    Buffered single pass: the matrix streams in once (token-major, ``CH_LANES``
    channels per beat) into an ``amaranth.lib.memory`` buffer while per-channel
    max|x| registers track it; then the ``CB = ⌈CHANNELS/CH_LANES⌉`` scale beats
    leave, then the buffer is read back and quantized, one beat per cycle.

    ``DTYPE = "int8"`` (signed integers of ``DATA_WIDTH`` bits), docs/SPEC.md:
    M_c = max|x_c|; S_c = round(M_c·2^SCALE_FRAC / 7)
    (never a tie, = (M_c·2^F + 3) // 7), S_c = 2^F for M_c = 0;
    q = round_half_even(7x / M_c), division-free: with t = 14|x| and
    T_j = (2j+1)·M_c, |q| = #{j < 7: t > T_j} + #{j odd: t = T_j} (a tie on an
    odd j rounds up to the even neighbour), q = 0 where M_c = 0. |q| <= 7, so
    the clamp to [-8, 7] never acts. Lanes past ``CHANNELS`` in the last chunk
    are ignored (scale 2^F, code 0).

    ``DTYPE = "fp16"`` (binary16 bit patterns; ``DATA_WIDTH`` unused),
    docs/SPEC.md "Quantization engine", FP16 (= ``golden.orbis.qe_fp16``):

    * magnitudes are x[14:0] (binary16 magnitudes order like integers), inf and
      NaN read as 65504 with their sign; ``nonfinite`` flags a matrix that held
      one (in a used lane);
    * M_c per channel and M = max_c M_c, tracked while loading;
    * codes: the comparators above on exact significands: |x| = sig_x·2^e_x,
      M_c = sig_M·2^e_M, d = e_M - e_x, t = 14·sig_x, T_j = (2j+1)·sig_M·2^d;
      d >= 5 (M_c normal) gives q = 0 (t < 2^15 <= T_0), so the thresholds are
      19 bits;
    * normalised scales sigma_c = round(M_c·2^F / M) (ties up), sigma = 0 for a
      zero channel or matrix, by a shift-subtract divider per lane: F + 2
      quotient bits of sig_c / sig_M then a right shift by e_M - e_c, F + 2
      cycles per scale beat (all lanes at once). The DATM engine squares them
      into weights round(sigma_c² / 2^F): no channel whose weight is at least
      2^-F of the largest is lost.

    Parameters
    ----------
    num_tokens : int
        Tokens N per matrix (default 64).
    channels : int
        Channels C (default 32).
    ch_lanes : int
        Channels per beat L (default 8).
    data_width : int
        Bits of the signed integer activations (default 8; ``int8`` only).
    scale_frac : int
        Fraction bits F of the scales (default 8).
    dtype : str
        ``"int8"`` (default) or ``"fp16"``.

    Members
    -------
    i : ``In(stream.Signature(ArrayLayout(signed(data_width) | unsigned(16), ch_lanes)))``
        Activations (integers, or binary16 bit patterns), token-major:
        N·CB beats per matrix.
    scales : ``Out(stream.Signature(ArrayLayout(unsigned(scale_width), ch_lanes)))``
        CB beats of fixed-point scales per matrix (before the codes): S_c
        (``int8``) or sigma_c, scale_width = F + 1 (``fp16``).
    o : ``Out(stream.Signature(ArrayLayout(signed(4), ch_lanes)))``
        Codes, token-major, N·CB beats per matrix.
    nonfinite : ``Out(1)`` (``fp16`` only)
        The matrix whose scales and codes are leaving held an inf or NaN;
        cleared by the first input beat of the next matrix.

    Timing: a matrix takes N·CB input cycles, then CB scale beats (one cycle
    each for ``int8``, F + 3 for ``fp16``), then the codes: the first code 3
    cycles after the last scale, then one per cycle (II = 1 while ``o`` is
    ready). Input is refused while scales and codes drain (one matrix
    buffer). Cycle model: ``golden.orbis.qe_cycles``.
    """

    def __init__(self, *, num_tokens=64, channels=32, ch_lanes=8, data_width=8, scale_frac=8,
                 dtype="int8"):
        self._num_tokens = check_int("num_tokens", num_tokens, maximum=1 << 16)
        self._channels = channels = check_int("channels", channels, maximum=1 << 14)
        self._ch_lanes = ch_lanes = check_int("ch_lanes", ch_lanes, maximum=256)
        self._data_width = data_width = check_int("data_width", data_width, minimum=2, maximum=32)
        self._scale_frac = scale_frac = check_int("scale_frac", scale_frac, minimum=0, maximum=24)
        self._dtype = check_choice("dtype", dtype, DTYPES)
        self._chunks = -(-channels // ch_lanes)
        if dtype == "fp16":
            self._scale_width = scale_frac + 1
            members = {
                "i": In(stream.Signature(data.ArrayLayout(unsigned(fp16.WIDTH), ch_lanes))),
                "scales": Out(stream.Signature(data.ArrayLayout(unsigned(self._scale_width), ch_lanes))),
                "o": Out(stream.Signature(data.ArrayLayout(signed(CODE_WIDTH), ch_lanes))),
                "nonfinite": Out(1),
            }
        else:
            self._scale_width = qe_scale_width(data_width, scale_frac)
            members = {
                "i": In(stream.Signature(data.ArrayLayout(signed(data_width), ch_lanes))),
                "scales": Out(stream.Signature(data.ArrayLayout(unsigned(self._scale_width), ch_lanes))),
                "o": Out(stream.Signature(data.ArrayLayout(signed(CODE_WIDTH), ch_lanes))),
            }
        super().__init__(members)

    @property
    def num_tokens(self):
        return self._num_tokens

    @property
    def channels(self):
        return self._channels

    @property
    def ch_lanes(self):
        return self._ch_lanes

    @property
    def data_width(self):
        return self._data_width

    @property
    def scale_frac(self):
        return self._scale_frac

    @property
    def dtype(self):
        return self._dtype

    @property
    def scale_width(self):
        return self._scale_width

    @property
    def chunks(self):
        return self._chunks

    def elaborate(self, platform):
        m = Module()
        n, cb_n, lanes, f = self._num_tokens, self._chunks, self._ch_lanes, self._scale_frac
        is_fp = self._dtype == "fp16"
        # Buffer word per lane: the integer, or sign + saturated binary16 magnitude.
        dw = fp16.WIDTH if is_fp else self._data_width
        pw = fp16.MAG_WIDTH if is_fp else dw
        total = n * cb_n
        m.submodules.buf = buf = Memory(shape=unsigned(dw * lanes), depth=total, init=[])
        wr = buf.write_port()
        rd = buf.read_port()

        # Per-channel max|x| registers, CB rows of L lanes.
        peak = [[Signal(pw, name=f"peak_{c}_{l}") for l in range(lanes)] for c in range(cb_n)]
        peak_rows = [Array(peak[c][l] for c in range(cb_n)) for l in range(lanes)]

        addr = Signal(range(total + 1))
        chunk = Signal(range(cb_n))
        first_token = Signal(init=1)
        out_count = Signal(range(total + 1))

        if is_fp:
            top = Signal(pw, name="peak_top")          # M = max_c M_c
            nonfinite = Signal(name="nonfinite_seen")
            m.d.comb += self.nonfinite.eq(nonfinite)
            step = Signal(range(f + 3), name="div_step")
            top_sig, top_exp = fp16.significand(m, top, name="top")

        def next_chunk(sig):
            return Mux(sig == cb_n - 1, 0, sig + 1)

        with m.FSM(name="qe"):
            with m.State("LOAD"):
                m.d.comb += self.i.ready.eq(1)
                if is_fp:
                    m.d.comb += [wr.addr.eq(addr), wr.en.eq(self.i.valid)]
                else:
                    m.d.comb += [wr.addr.eq(addr), wr.data.eq(self.i.payload.as_value()),
                                 wr.en.eq(self.i.valid)]
                with m.If(self.i.valid):
                    mags, words, flags = [], [], []
                    for l in range(lanes):
                        x = self.i.payload[l]
                        used = Const(1) if self._channels % lanes == 0 else (chunk * lanes + l < self._channels)
                        mag = Signal(pw, name=f"load_mag_{l}")
                        if is_fp:
                            sat = fp16.saturated_magnitude(m, x, name=f"load_sat_{l}")
                            m.d.comb += mag.eq(Mux(used, sat, 0))
                            words.append(Cat(sat, x[fp16.WIDTH - 1]))
                            flags.append(used & fp16.is_nonfinite(m, x, name=f"load_nonfinite_{l}"))
                        else:
                            m.d.comb += mag.eq(Mux(used, Mux(x < 0, -x, x).as_unsigned()[:dw], 0))
                        mags.append(mag)
                        old = Signal(pw, name=f"peak_old_{l}")
                        m.d.comb += old.eq(peak_rows[l][chunk])
                        with m.If(first_token | (mag > old)):
                            m.d.sync += peak_rows[l][chunk].eq(mag)
                    if is_fp:
                        m.d.comb += wr.data.eq(Cat(*words))
                        beat_max = Signal(pw, name="load_beat_max")
                        m.d.comb += beat_max.eq(_max_tree(mags))
                        first_beat = addr == 0
                        m.d.sync += [top.eq(Mux(first_beat, beat_max, _max(top, beat_max))),
                                     nonfinite.eq(Cat(*flags).any() | (nonfinite & ~first_beat))]
                    m.d.sync += [addr.eq(addr + 1), chunk.eq(next_chunk(chunk))]
                    with m.If(chunk == cb_n - 1):
                        m.d.sync += first_token.eq(0)
                    with m.If(addr == total - 1):
                        m.d.sync += [addr.eq(0), chunk.eq(0)]
                        m.next = "SCALES"
            with m.State("SCALES"):
                if is_fp:
                    self._normalised_scales(m, peak_rows, chunk, step, top, top_sig, top_exp)
                    taken = (step == f + 2) & self.scales.ready
                else:
                    m.d.comb += self.scales.valid.eq(1)
                    for l in range(lanes):
                        pk = Signal(dw, name=f"scale_peak_{l}")
                        m.d.comb += pk.eq(peak_rows[l][chunk])
                        s = ((pk << f) + 3) // QMAX
                        m.d.comb += self.scales.payload[l].eq(Mux(pk == 0, 1 << f, s))
                    taken = self.scales.ready
                with m.If(taken):
                    m.d.sync += chunk.eq(next_chunk(chunk))
                    if is_fp:
                        m.d.sync += step.eq(0)
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
                        # `used` is built after the datapath so that the int8 Verilog keeps its net order.
                        used = lambda l=l: (Const(1) if self._channels % lanes == 0
                                            else (chunk1 * lanes + l < self._channels))
                        word = rd.data[l * dw:(l + 1) * dw]
                        quantize = self._fp16_code if is_fp else self._int_code
                        m.d.sync += self.o.payload[l].eq(quantize(m, l, word, peak_rows[l][chunk1], used))
                with m.If(self.o.valid & self.o.ready):
                    m.d.sync += out_count.eq(out_count + 1)
                    with m.If(out_count == total - 1):
                        m.d.sync += [out_count.eq(0), addr.eq(0), chunk.eq(0), first_token.eq(1)]
                        m.next = "LOAD"
        return m

    def _int_code(self, m, l, word, peak_value, used):
        dw = self._data_width
        x = Signal(signed(dw), name=f"quant_x_{l}")
        pk = Signal(dw, name=f"quant_peak_{l}")
        t = Signal(dw + 4, name=f"quant_t_{l}")
        m.d.comb += [x.eq(word), pk.eq(peak_value), t.eq(Mux(x < 0, -x, x).as_unsigned()[:dw] * 14)]
        thr = [Signal(dw + 4, name=f"quant_thr_{l}_{j}") for j in range(QMAX)]
        m.d.comb += [thr[j].eq((2 * j + 1) * pk) for j in range(QMAX)]
        qmag = self._rounded_magnitude(m, l, t, thr)
        return Mux((pk == 0) | ~used(), 0, Mux(x < 0, -qmag, qmag))

    def _fp16_code(self, m, l, word, peak_value, used):
        mag = Signal(fp16.MAG_WIDTH, name=f"quant_mag_{l}")
        neg = Signal(name=f"quant_neg_{l}")
        pk = Signal(fp16.MAG_WIDTH, name=f"quant_peak_{l}")
        m.d.comb += [mag.eq(word[:fp16.MAG_WIDTH]), neg.eq(word[fp16.WIDTH - 1]), pk.eq(peak_value)]
        x_sig, x_exp = fp16.significand(m, mag, name=f"quant_x_{l}")
        p_sig, p_exp = fp16.significand(m, pk, name=f"quant_p_{l}")
        d = Signal(fp16.EXP_WIDTH, name=f"quant_shift_{l}")
        far = Signal(name=f"quant_far_{l}")
        m.d.comb += [d.eq(p_exp - x_exp), far.eq(d >= FAR_SHIFT)]
        tw = fp16.SIG_WIDTH + 4
        t = Signal(tw, name=f"quant_t_{l}")
        m.d.comb += t.eq(x_sig * 14)
        thw = fp16.SIG_WIDTH + 4 + FAR_SHIFT - 1
        thr = [Signal(thw, name=f"quant_thr_{l}_{j}") for j in range(QMAX)]
        m.d.comb += [thr[j].eq(((2 * j + 1) * p_sig) << d[:3]) for j in range(QMAX)]
        qmag = self._rounded_magnitude(m, l, t, thr)
        return Mux((pk == 0) | ~used() | far, 0, Mux(neg, -qmag, qmag))

    def _rounded_magnitude(self, m, l, t, thr):
        """|q| = #{j: t > T_j} + #{odd j: t = T_j} (ties round to the even code)."""
        gt = [t > thr[j] for j in range(QMAX)]
        eq = [t == thr[j] for j in range(1, QMAX, 2)]
        votes = Signal(len(gt) + len(eq), name=f"quant_votes_{l}")
        qmag = Signal(3, name=f"qmag_{l}")
        m.d.comb += [votes.eq(Cat(*gt, *eq)), qmag.eq(popcount(votes))]
        return qmag

    def _normalised_scales(self, m, peak_rows, chunk, step, top, top_sig, top_exp):
        """sigma_c = round(M_c·2^F / M): F + 2 restoring-division steps of
        sig_c / sig_M (sig_c < 2·sig_M, so the first quotient bit is the integer
        part), then a right shift by e_M - e_c and the rounding bit."""
        f = self._scale_frac
        qw = f + 2
        running = step < qw
        with m.If(running):
            m.d.sync += step.eq(step + 1)
        m.d.comb += self.scales.valid.eq(~running)
        for l in range(self._ch_lanes):
            pk = Signal(fp16.MAG_WIDTH, name=f"scale_peak_{l}")
            m.d.comb += pk.eq(peak_rows[l][chunk])
            p_sig, p_exp = fp16.significand(m, pk, name=f"scale_p_{l}")
            rem = Signal(fp16.SIG_WIDTH + 1, name=f"div_rem_{l}")
            quo = Signal(qw, name=f"div_quo_{l}")
            r_in = Signal(fp16.SIG_WIDTH + 1, name=f"div_in_{l}")
            bit = Signal(name=f"div_bit_{l}")
            m.d.comb += [r_in.eq(Mux(step == 0, p_sig, rem)), bit.eq(r_in >= top_sig)]
            with m.If(running):
                m.d.sync += [rem.eq((r_in - Mux(bit, top_sig, 0)) << 1),
                             quo.eq(Cat(bit, Mux(step == 0, 0, quo)[:qw - 1]))]
            shift = Signal(fp16.EXP_WIDTH, name=f"scale_shift_{l}")
            half = Signal(qw, name=f"scale_half_{l}")
            m.d.comb += [shift.eq(top_exp - p_exp), half.eq(quo >> shift)]
            m.d.comb += self.scales.payload[l].eq(Mux(top == 0, 0, (half + 1) >> 1))
