"""ORBIS DATM engine: Distribution-Aware Token Matching in hardware (ORBIS
§3.2-3.3, Algorithm 1, Fig. 6; docs/SPEC.md "DATM engine")."""

from types import SimpleNamespace

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for, ceil_log2

from ..common.min_tree import min_tree, min_tree_latency
from ..common.params import check_int
from ..common.sorting import bitonic_latency
from ..common.stream import delay, register, stall_pipeline
from ..registry import unit
from .orbis_dau import chunk_latency, distance_chunk
from .orbis_topk import OrbisTopK

__all__ = ["OrbisDATM", "CODE_WIDTH", "QMIN", "QMAX"]

QMIN = -8
QMAX = 7
CODE_WIDTH = bits_for(QMIN)
#: The largest squared code difference (q_a - q_b)², one channel's term of a
#: distance before its weight: (QMAX - QMIN)² = 225.
MAX_CODE_DIFF_SQUARED = (QMAX - QMIN) ** 2
#: The largest code magnitude, which bounds a group sum Σ q over n members by n·|QMIN|.
MAX_CODE_MAGNITUDE = max(-QMIN, QMAX)


@unit("orbis_datm", golden="golden.orbis.datm", testbench="sim.orbis.tb_orbis_datm")
class OrbisDATM(wiring.Component):
    """DATM engine: stride init, DAU + min-tree pairing, ε convergence, division-free dst update, top-k pairs.

    Dst/src initialisation, pairing, loss and convergence check, dst update,
    iteration, bitonic top-k and the (src, dst) index pairs out.

    One run: a ``cmd`` beat (k, iteration cap, ε, seed), then ⌈C/L⌉ beats of
    fixed-point scales S_c on ``scales`` (the QE's output format) and N·⌈C/L⌉
    beats of 4-bit codes on ``tokens`` (token-major; lanes past C are ignored).
    The codes live in an ``amaranth.lib.memory`` token memory, the weights
    w_c = round(S_c² / 2^SCALE_FRAC) in a weight memory, the current dst
    features in a D-lane dst memory (so ``NUM_DST`` DAU lanes see their dst's
    chunk in parallel), the group sums in a D-lane sum memory and every
    token's dst slot in an assignment memory.

    Algorithm (docs/SPEC.md, = ``golden.orbis.datm``, quantized):

    * init: slot d holds token (seed mod N + d·⌊N/D⌋) mod N;
    * pairing: for every token the D distances Σ_c w_c (q_t - q_dst)² (D DAU
      lanes, CH_LANES channels per cycle), the min tree picks the nearest slot
      (ties: lower slot); a dst token keeps its own slot with loss 0; the total
      loss T of the srcs accumulates;
    * convergence: stop after iteration i if i > 1 and
      |T_prev - T|·2^EPS_FRAC <= eps·T_prev (eps = round(ε·2^EPS_FRAC)), or if
      i = max_iter (0 counts as 1);
    * update: group sums Σ q and sizes n per slot, then per slot the member
      (dst included) minimising Σ_c w_c (n·q_m,c - Σ q_c)² (ties: lower token)
      becomes the dst;
    * top-k: the k' = min(k, N - D) srcs with the smallest (loss, index) keys
      from the final pairing, through ``orbis_topk`` (SIZE = next power of two
      of N, dst tokens and padding masked), each with its dst token.

    Schedule (CB = ⌈C/L⌉, CL = 3 + ⌈log2 L⌉ the DAU datapath latency,
    ML = ⌈log2 D⌉ the min-tree latency), one state after the other, in cycles
    with sources that never idle and sinks always ready:

    ======  ==================  ==============================================
    state   cycles              work
    ======  ==================  ==============================================
    IDLE    -                   accept ``cmd``
    LOAD_S  CB                  one scale beat per cycle, square into weights
    LOAD_T  N·CB                one token beat per cycle into the token memory
    INIT    1                   initial dst slots
    COPY    D·CB + 1            dst features into the dst memory; clears sums
    PAIR    N·CB + CL + ML + 2  read, DAU lanes, chunk accumulation, min tree,
                                write back slot, loss and top-k key
    LOSS    1                   ``losses`` beat (total T, iteration, last)
    SUM     N·CB + 1            group sums (read-modify-write) and sizes
    SELECT  N·CB + CL + 2       Σ w (n·q - Σq)² per token, best member per slot
    UPDATE  1                   best members become the dsts, then COPY
    TOPK    1 + latency + k'    send the keys to ``orbis_topk``; every key
                                leaves as a pair one cycle after the sorter
                                emits it (assignment memory read)
    ======  ==================  ==============================================

    An iteration that does not stop runs LOSS -> SUM -> SELECT -> UPDATE ->
    COPY -> PAIR. With k' = 0 the engine returns to IDLE after the final loss
    beat. The cycle model is ``golden.orbis.datm_cycles``.

    Parameters
    ----------
    num_tokens : int
        N (default 64), >= 2.
    channels : int
        C (default 32).
    num_dst : int
        D, the dst tokens and DAU/min-tree lanes (default 16), 1 <= D < N.
    ch_lanes : int
        L, channels per memory word and per DAU lane per cycle (default 8).
    scale_width : int
        Bits of the fixed-point scales S_c (default 13, the QE's for 8-bit data).
    scale_frac : int
        Fraction bits F of S_c and of w_c (default 8). The largest scale must
        give a non-zero weight, round((2^scale_width - 1)² / 2^F) >= 1;
        otherwise every weight is 0 and the engine is rejected.
    eps_frac : int
        Fraction bits of ε (default 16).
    iter_width : int
        Bits of the iteration cap and counter (default 8).
    topk_register_every : int
        Comparator stages per register in the top-k network (default 3).

    Members
    -------
    cmd : ``In(stream.Signature(StructLayout({"k", "max_iter", "eps", "seed"})))``
        k in 0..N, max_iter (iter_width bits), eps (eps_frac + 1 bits),
        seed (⌈log2 N⌉ bits).
    scales : ``In(stream.Signature(ArrayLayout(unsigned(scale_width), ch_lanes)))``
    tokens : ``In(stream.Signature(ArrayLayout(signed(4), ch_lanes)))``
    losses : ``Out(stream.Signature(StructLayout({"total", "iteration", "last"})))``
        One beat per iteration: the total pair loss T (units 2^-F), the
        iteration number from 1, ``last`` on the final iteration.
    pairs : ``Out(stream.Signature(StructLayout({"src", "dst", "last"})))``
        k' beats, ascending (loss, src), ``last`` on the final one.

    Latency and initiation interval depend on the data (iterations until
    convergence, k'): the schedule above and ``golden.orbis.datm_cycles``
    give them; there is no fixed ``latency``.

    Implements docs/SPEC.md "DATM engine" and the ORBIS side of
    "Decisions taken while building".
    """

    def __init__(self, *, num_tokens=64, channels=32, num_dst=16, ch_lanes=8, scale_width=13,
                 scale_frac=8, eps_frac=16, iter_width=8, topk_register_every=3, topk_buffer=0):
        self._topk_buffer = check_int("topk_buffer", topk_buffer, minimum=0, maximum=1 << 10)
        # The bitonic network holds every key at once; the streaming selector
        # keeps them in a memory, so only the memories grow with N.
        self._num_tokens = check_int("num_tokens", num_tokens, minimum=2,
                                     maximum=1 << (16 if self._topk_buffer else 12))
        self._channels = check_int("channels", channels, maximum=1 << 14)
        self._num_dst = check_int("num_dst", num_dst, maximum=self._num_tokens - 1)
        self._ch_lanes = check_int("ch_lanes", ch_lanes, maximum=256)
        self._scale_width = check_int("scale_width", scale_width, maximum=24)
        self._scale_frac = check_int("scale_frac", scale_frac, minimum=0, maximum=24)
        self._eps_frac = check_int("eps_frac", eps_frac, minimum=0, maximum=32)
        self._iter_width = check_int("iter_width", iter_width, maximum=16)
        self._topk_register_every = check_int("topk_register_every", topk_register_every, maximum=64)
        n, c, l = self._num_tokens, self._channels, self._ch_lanes
        self._chunks = -(-c // l)
        self._token_width = bits_for(n - 1)
        self._slot_width = bits_for(self._num_dst - 1)
        self._topk_size = 1 << ceil_log2(n)
        largest_scale = (1 << self._scale_width) - 1
        self._weight_max = self._weight(largest_scale)
        if self._weight_max == 0:
            raise ValueError(
                f"scale_frac must leave the largest scale a non-zero weight: with scale_width="
                f"{self._scale_width} every weight round(S²/2^{self._scale_frac}) is 0, not {scale_frac!r}")
        self._weight_width = bits_for(self._weight_max)
        self._dist_width = bits_for(c * MAX_CODE_DIFF_SQUARED * self._weight_max)
        self._total_width = bits_for(n * c * MAX_CODE_DIFF_SQUARED * self._weight_max)
        self._sum_width = bits_for(MAX_CODE_MAGNITUDE * n) + 1  # signed Σ q of up to n codes
        super().__init__({
            "cmd": In(stream.Signature(data.StructLayout({
                "k": range(n + 1), "max_iter": self._iter_width, "eps": self._eps_frac + 1,
                "seed": self._token_width}))),
            "scales": In(stream.Signature(data.ArrayLayout(unsigned(self._scale_width), l))),
            "tokens": In(stream.Signature(data.ArrayLayout(signed(CODE_WIDTH), l))),
            "losses": Out(stream.Signature(data.StructLayout({
                "total": self._total_width, "iteration": self._iter_width, "last": 1}))),
            "pairs": Out(stream.Signature(data.StructLayout({
                "src": self._token_width, "dst": self._token_width, "last": 1}))),
        })

    def _weight(self, scale):
        """w = round(S² / 2^F), half up: the DAU weight of a channel with scale S."""
        return (scale * scale + ((1 << self._scale_frac) >> 1)) >> self._scale_frac

    @property
    def num_tokens(self):
        return self._num_tokens

    @property
    def channels(self):
        return self._channels

    @property
    def num_dst(self):
        return self._num_dst

    @property
    def ch_lanes(self):
        return self._ch_lanes

    @property
    def scale_width(self):
        return self._scale_width

    @property
    def scale_frac(self):
        return self._scale_frac

    @property
    def eps_frac(self):
        return self._eps_frac

    @property
    def iter_width(self):
        return self._iter_width

    @property
    def topk_register_every(self):
        return self._topk_register_every

    @property
    def topk_buffer(self):
        """K_B, keys held by the streaming top-k selector (0: full-N bitonic network)."""
        return self._topk_buffer

    @property
    def chunks(self):
        """CB = ⌈C/L⌉, memory words per token."""
        return self._chunks

    @property
    def topk_latency(self):
        """Cycles from a set accepted by the top-k network to its first key."""
        return bitonic_latency(self._topk_size, self._topk_register_every) + 2

    # ------------------------------------------------------------------ elaboration

    def elaborate(self, platform):
        m = Module()
        mem = self._storage(m)
        if self._topk_buffer:
            topk = None
        else:
            m.submodules.topk = topk = OrbisTopK(size=self._topk_size, loss_width=self._dist_width,
                                                 register_every=self._topk_register_every)
        run = self._run_state(m)
        dp = self._datapath(m, mem, run)
        self._control(m, mem, run, dp, topk)
        return m

    def _storage(self, m):
        """The five memories and their ports."""
        n, d, l, cb = self._num_tokens, self._num_dst, self._ch_lanes, self._chunks
        m.submodules.tok_mem = tok_mem = Memory(shape=unsigned(CODE_WIDTH * l), depth=n * cb, init=[])
        m.submodules.w_mem = w_mem = Memory(shape=unsigned(self._weight_width * l), depth=cb, init=[])
        m.submodules.dst_mem = dst_mem = Memory(shape=unsigned(CODE_WIDTH * l * d), depth=cb, init=[])
        m.submodules.sum_mem = sum_mem = Memory(shape=unsigned(self._sum_width * l * d), depth=cb, init=[])
        m.submodules.asg_mem = asg_mem = Memory(shape=unsigned(self._slot_width), depth=n, init=[])
        # One local per port: Amaranth names a port's Verilog nets after it.
        tok_wr = tok_mem.write_port()
        tok_rd = tok_mem.read_port()
        w_wr = w_mem.write_port()
        w_rd = w_mem.read_port()
        dst_wr = dst_mem.write_port(granularity=CODE_WIDTH * l)
        dst_rd = dst_mem.read_port()
        sum_wr = sum_mem.write_port(granularity=self._sum_width * l)
        # The sum is read-modify-written on consecutive cycles of one chunk
        # address, so the read must see the write of the cycle before.
        sum_rd = sum_mem.read_port(transparent_for=(sum_wr,))
        asg_wr = asg_mem.write_port()
        asg_rd = asg_mem.read_port()
        ports = SimpleNamespace(tok_wr=tok_wr, tok_rd=tok_rd, w_wr=w_wr, w_rd=w_rd, dst_wr=dst_wr, dst_rd=dst_rd,
                                sum_wr=sum_wr, sum_rd=sum_rd, asg_wr=asg_wr, asg_rd=asg_rd)
        if self._topk_buffer:
            # Top-k keys of the streaming selector: {is_src, loss} per token.
            m.submodules.key_mem = key_mem = Memory(shape=unsigned(self._dist_width + 1), depth=n, init=[])
            key_wr = key_mem.write_port()
            key_rd = key_mem.read_port()
            ports.key_wr, ports.key_rd = key_wr, key_rd
        return ports

    def _run_state(self, m):
        """Registers of a run: the command, the dst slots and group sizes, the
        best member per slot, the top-k keys, the losses and the issue counters."""
        n, d, cb = self._num_tokens, self._num_dst, self._chunks
        tw = self._token_width
        ncb, dcb = n * cb, d * cb
        run = SimpleNamespace()
        run.k = Signal(range(n + 1), name="k_reg")
        run.max_iter = Signal(self._iter_width, name="max_iter")
        run.eps = Signal(self._eps_frac + 1, name="eps")
        run.seed = Signal(tw, name="seed")
        run.dst_token = [Signal(tw, name=f"dst_idx{j}") for j in range(d)]
        run.group_size = [Signal(range(n + 1), name=f"count{j}") for j in range(d)]
        run.best_token = [Signal(tw, name=f"best_t{j}") for j in range(d)]
        run.best_valid = [Signal(name=f"best_v{j}") for j in range(d)]
        if not self._topk_buffer:
            run.key_loss = [Signal(self._dist_width, name=f"key_loss{j}") for j in range(n)]
            run.key_is_src = Signal(n, name="key_src")
        run.total = Signal(self._total_width, name="total")
        run.prev_total = Signal(self._total_width, name="prev")
        run.iteration = Signal(self._iter_width, name="iteration")
        # At most N - D tokens are srcs.
        run.k_eff = Signal(range(n + 1), name="k_eff")
        m.d.comb += run.k_eff.eq(Mux(run.k > n - d, n - d, run.k))

        # Issue counters: token, chunk within the token, token-memory address,
        # and the cycle within the current state.
        pair_latency = chunk_latency(self._ch_lanes) + min_tree_latency(d)
        run.phase = Signal(range(max(ncb, dcb) + pair_latency + 8), name="phase")
        run.token = Signal(range(n + 1), name="t_cnt")
        run.chunk = Signal(range(cb), name="c_cnt")
        run.addr = Signal(range(ncb + 1), name="addr")
        run.last_chunk = Signal(name="last_chunk")
        run.first_chunk = Signal(name="first_chunk")
        m.d.comb += [run.last_chunk.eq(run.chunk == cb - 1), run.first_chunk.eq(run.chunk == 0)]
        return run

    @staticmethod
    def _restart(run):
        return [run.phase.eq(0), run.token.eq(0), run.chunk.eq(0), run.addr.eq(0)]

    @staticmethod
    def _advance(m, run):
        m.d.sync += [run.addr.eq(run.addr + 1), run.chunk.eq(Mux(run.last_chunk, 0, run.chunk + 1))]
        with m.If(run.last_chunk):
            m.d.sync += run.token.eq(run.token + 1)

    def _datapath(self, m, mem, run):
        """Pairing (D DAU lanes + min tree), select (Σ w (n·q - Σq)²), group
        sums and dst copy; every path reads the memories at the issue counters
        and answers one cycle later."""
        n, d, l = self._num_tokens, self._num_dst, self._ch_lanes
        tw, slw, sw, ww = self._token_width, self._slot_width, self._sum_width, self._weight_width
        chunk_lat = chunk_latency(l)
        min_lat = min_tree_latency(d)
        dp = SimpleNamespace()

        # Pairing: token `run.token`, chunk `run.chunk` against every dst slot.
        own_slot = Signal(slw, name="own_slot")
        hits = Signal(d, name="hits")
        is_dst = Signal(name="is_dst")
        m.d.comb += [hits.eq(Cat(*[run.dst_token[j] == run.token for j in range(d)])), is_dst.eq(hits.any())]
        for j in range(d):
            with m.If(hits[j]):
                m.d.comb += own_slot.eq(j)
        dp.pair_issue = Signal(name="pair_issue")

        src_codes = [mem.tok_rd.data[j * CODE_WIDTH:(j + 1) * CODE_WIDTH].as_signed() for j in range(l)]
        weights = [mem.w_rd.data[j * ww:(j + 1) * ww] for j in range(l)]
        dists = []
        pair_first = delay(m, run.first_chunk, 1 + chunk_lat, name="pair_first")
        for j in range(d):
            base = j * l * CODE_WIDTH
            dst_codes = [mem.dst_rd.data[base + i * CODE_WIDTH:base + (i + 1) * CODE_WIDTH].as_signed()
                         for i in range(l)]
            chunk = distance_chunk(m, src_codes, dst_codes, weights, name=f"dau{j}")
            acc = Signal(self._dist_width, name=f"acc{j}")
            m.d.sync += acc.eq(Mux(pair_first, chunk, acc + chunk))
            dists.append(acc)
        min_val, min_idx = min_tree(m, dists, name="mint")
        # Issue to write-back: memory read, DAU chunk, accumulation, min tree.
        dp.pair_drain = 2 + chunk_lat + min_lat
        dp.wb_valid = delay(m, dp.pair_issue & run.last_chunk, dp.pair_drain, name="pair_valid")
        dp.wb_token = delay(m, run.token[:tw], dp.pair_drain, name="pair_t")
        dp.wb_is_dst = delay(m, is_dst, dp.pair_drain, name="pair_isdst")
        wb_own = delay(m, own_slot, dp.pair_drain, name="pair_own")
        dp.wb_slot = Signal(slw, name="wb_slot")
        dp.wb_loss = Signal(self._dist_width, name="wb_loss")
        # A dst token stays in its own slot at loss 0.
        m.d.comb += [dp.wb_slot.eq(Mux(dp.wb_is_dst, wb_own, min_idx[:slw])),
                     dp.wb_loss.eq(Mux(dp.wb_is_dst, 0, min_val))]

        # Select: Σ_c w_c (n·q_t,c - Σq_c)² of token t against its own group.
        dp.sel_issue = Signal(name="sel_issue")
        dp.sel_slot_now = Signal(slw, name="sel_a")
        m.d.comb += dp.sel_slot_now.eq(mem.asg_rd.data)
        dp.group_size_now = Signal(range(n + 1), name="n_a")
        m.d.comb += dp.group_size_now.eq(Array(run.group_size)[dp.sel_slot_now])
        dp.sum_lanes = []
        for i in range(l):
            lane_vals = [mem.sum_rd.data[(j * l + i) * sw:(j * l + i + 1) * sw].as_signed() for j in range(d)]
            sv = Signal(signed(sw), name=f"sel_sum{i}")
            m.d.comb += sv.eq(Array(lane_vals)[dp.sel_slot_now])
            dp.sum_lanes.append(sv)
        scaled = []
        for i in range(l):
            nq = Signal(signed(bits_for(n) + CODE_WIDTH + 1), name=f"sel_nq{i}")
            m.d.comb += nq.eq(src_codes[i] * dp.group_size_now)
            scaled.append(nq)
        sel_chunk = distance_chunk(m, scaled, dp.sum_lanes, weights, name="sel")
        sel_first = delay(m, run.first_chunk, 1 + chunk_lat, name="sel_first")
        dp.sel_acc = Signal(len(sel_chunk) + bits_for(self._chunks), name="sel_acc")
        m.d.sync += dp.sel_acc.eq(Mux(sel_first, sel_chunk, dp.sel_acc + sel_chunk))
        dp.best_error = [Signal(len(dp.sel_acc), name=f"best_e{j}") for j in range(d)]
        # Issue to compare: memory read, DAU chunk, accumulation.
        dp.sel_drain = 2 + chunk_lat
        dp.sel_valid = delay(m, dp.sel_issue & run.last_chunk, dp.sel_drain, name="sel_valid")
        dp.sel_token = delay(m, run.token[:tw], dp.sel_drain, name="sel_t")
        dp.sel_slot = delay(m, dp.sel_slot_now, dp.sel_drain - 1, name="sel_slot")

        # Group sums: read-modify-write one cycle after the issue.
        dp.sum_issue = Signal(name="sum_issue")
        dp.sum_valid = delay(m, dp.sum_issue, 1, name="sum_valid")
        dp.sum_chunk = delay(m, run.chunk, 1, name="sum_chunk")
        dp.sum_first = delay(m, run.first_chunk, 1, name="sum_first")
        dp.sum_new = []
        for i in range(l):
            nv = Signal(signed(sw), name=f"sum_new{i}")
            m.d.comb += nv.eq(dp.sum_lanes[i] + src_codes[i])
            dp.sum_new.append(nv)

        # Dst copy: a dst token's chunk into its slot, one cycle after the issue.
        dp.copy_issue = Signal(name="copy_issue")
        dp.copy_slot_now = Signal(range(d), name="copy_slot")
        dp.copy_valid = delay(m, dp.copy_issue, 1, name="copy_valid")
        dp.copy_chunk = delay(m, run.chunk, 1, name="copy_chunk")
        dp.copy_slot = delay(m, dp.copy_slot_now, 1, name="copy_slot")

        self._writebacks(m, mem, run, dp)
        return dp

    def _writebacks(self, m, mem, run, dp):
        """The datapath's results into the memories and registers; each runs in
        the drain of the state that issued it."""
        d = self._num_dst
        # Default memory addresses: the issue counters.
        m.d.comb += [mem.tok_rd.addr.eq(run.addr), mem.dst_rd.addr.eq(run.chunk), mem.w_rd.addr.eq(run.chunk),
                     mem.sum_rd.addr.eq(run.chunk), mem.asg_rd.addr.eq(run.token)]
        with m.If(dp.wb_valid):
            m.d.comb += [mem.asg_wr.addr.eq(dp.wb_token), mem.asg_wr.data.eq(dp.wb_slot), mem.asg_wr.en.eq(1)]
            m.d.sync += run.total.eq(run.total + dp.wb_loss)
            if self._topk_buffer:
                m.d.comb += [mem.key_wr.addr.eq(dp.wb_token), mem.key_wr.data.eq(Cat(dp.wb_loss, ~dp.wb_is_dst)),
                             mem.key_wr.en.eq(1)]
            else:
                m.d.sync += [Array(run.key_loss)[dp.wb_token].eq(dp.wb_loss),
                             run.key_is_src.bit_select(dp.wb_token, 1).eq(~dp.wb_is_dst)]
        with m.If(dp.sel_valid):
            for j in range(d):
                better = ~run.best_valid[j] | (dp.sel_acc < dp.best_error[j])
                with m.If((dp.sel_slot == j) & better):
                    m.d.sync += [dp.best_error[j].eq(dp.sel_acc), run.best_token[j].eq(dp.sel_token),
                                 run.best_valid[j].eq(1)]
        with m.If(dp.sum_valid):
            m.d.comb += [mem.sum_wr.addr.eq(dp.sum_chunk), mem.sum_wr.data.eq(Cat(*(dp.sum_new * d))),
                         mem.sum_wr.en.eq(1 << dp.sel_slot_now)]
            with m.If(dp.sum_first):
                m.d.sync += Array(run.group_size)[dp.sel_slot_now].eq(dp.group_size_now + 1)
        with m.If(dp.copy_valid):
            m.d.comb += [mem.dst_wr.addr.eq(dp.copy_chunk), mem.dst_wr.data.eq(Cat(*([mem.tok_rd.data] * d))),
                         mem.dst_wr.en.eq(1 << dp.copy_slot)]

    def _control(self, m, mem, run, dp, topk):
        """The state machine of the schedule in the class docstring, one method per phase."""
        if topk is not None:
            # The top-k keys: one loss per token (padding positions are masked off).
            m.d.comb += topk.i.payload.loss.eq(Cat(*run.key_loss))
        sel = self._selector(m, mem, run) if topk is None else None
        with m.FSM(name="datm"):
            self._load_states(m, mem, run)
            self._init_state(m, run)
            self._copy_state(m, mem, run, dp)
            self._pair_state(m, run, dp)
            self._loss_state(m, run, sel)
            self._update_states(m, run, dp)
            if topk is None:
                self._stream_topk_states(m, mem, run, sel)
            else:
                self._topk_states(m, mem, run, topk)

    def _load_states(self, m, mem, run):
        """IDLE (accept ``cmd``), LOAD_S (scales squared into weights), LOAD_T (codes)."""
        l, cb, f = self._ch_lanes, self._chunks, self._scale_frac
        ncb = self._num_tokens * cb
        pad_lanes = [j for j in range(l) if (cb - 1) * l + j >= self._channels]
        restart = self._restart(run)
        with m.State("IDLE"):
            m.d.comb += self.cmd.ready.eq(1)
            with m.If(self.cmd.valid):
                m.d.sync += [run.k.eq(self.cmd.payload.k), run.max_iter.eq(self.cmd.payload.max_iter),
                             run.eps.eq(self.cmd.payload.eps), run.seed.eq(self.cmd.payload.seed)]
                m.d.sync += restart
                m.next = "LOAD_S"
        with m.State("LOAD_S"):
            m.d.comb += self.scales.ready.eq(1)
            half = (1 << f) >> 1
            weights = []
            for j in range(l):
                s = self.scales.payload[j]
                w = Signal(self._weight_width, name=f"load_w{j}")
                m.d.comb += w.eq((s * s + half) >> f)
                weights.append(w)
            m.d.comb += [mem.w_wr.addr.eq(run.chunk), mem.w_wr.en.eq(self.scales.valid)]
            # Lanes past C carry no channel: weight 0 keeps them out of every sum.
            with m.If(run.last_chunk):
                m.d.comb += mem.w_wr.data.eq(Cat(*[Const(0, self._weight_width) if j in pad_lanes
                                                   else weights[j] for j in range(l)]))
            with m.Else():
                m.d.comb += mem.w_wr.data.eq(Cat(*weights))
            with m.If(self.scales.valid):
                self._advance(m, run)
                with m.If(run.last_chunk):
                    m.d.sync += restart
                    m.next = "LOAD_T"
        with m.State("LOAD_T"):
            m.d.comb += [self.tokens.ready.eq(1), mem.tok_wr.addr.eq(run.addr),
                         mem.tok_wr.data.eq(self.tokens.payload.as_value()),
                         mem.tok_wr.en.eq(self.tokens.valid)]
            with m.If(self.tokens.valid):
                self._advance(m, run)
                with m.If(run.addr == ncb - 1):
                    m.next = "INIT"

    def _init_state(self, m, run):
        """INIT: the initial dst slots."""
        n, d, tw = self._num_tokens, self._num_dst, self._token_width
        restart = self._restart(run)
        with m.State("INIT"):
            # Slot j: token (seed mod N + j·⌊N/D⌋) mod N; seed < 2N, so one
            # conditional subtraction is the modulo.
            base = Signal(tw + 1, name="base")
            m.d.comb += base.eq(Mux(run.seed >= n, run.seed - n, run.seed))
            stride = n // d
            for j in range(d):
                v = base + j * stride
                m.d.sync += run.dst_token[j].eq(Mux(v >= n, v - n, v))
            m.d.sync += [run.iteration.eq(0), *restart]
            m.next = "COPY"

    def _copy_state(self, m, mem, run, dp):
        """COPY: every dst's features into the dst memory; clears the group sums."""
        cb, tw = self._chunks, self._token_width
        dcb = self._num_dst * cb
        restart = self._restart(run)
        with m.State("COPY"):
            # Issue (slot, chunk): read the slot's token chunk; write it a cycle later.
            copy_token = Signal(tw, name="copy_token")
            m.d.comb += [dp.copy_issue.eq(run.phase < dcb), dp.copy_slot_now.eq(run.token),
                         copy_token.eq(Array(run.dst_token)[run.token]),
                         mem.tok_rd.addr.eq(copy_token * cb + run.chunk)]
            # Clear the group sums while the first slot is copied.
            with m.If(run.phase < cb):
                m.d.comb += [mem.sum_wr.addr.eq(run.chunk), mem.sum_wr.data.eq(0), mem.sum_wr.en.eq(-1)]
            m.d.sync += run.phase.eq(run.phase + 1)
            with m.If(dp.copy_issue):
                self._advance(m, run)
            with m.If(run.phase == dcb):
                m.d.sync += [*restart, run.total.eq(0)]
                m.next = "PAIR"

    def _pair_state(self, m, run, dp):
        """PAIR: every token chunk through the DAU lanes and the min tree."""
        ncb = self._num_tokens * self._chunks
        restart = self._restart(run)
        with m.State("PAIR"):
            m.d.comb += dp.pair_issue.eq(run.phase < ncb)
            m.d.sync += run.phase.eq(run.phase + 1)
            with m.If(dp.pair_issue):
                self._advance(m, run)
            with m.If(run.phase == ncb + dp.pair_drain - 1):
                m.d.sync += restart
                m.next = "LOSS"

    def _loss_state(self, m, run, sel=None):
        """LOSS: the loss beat and the convergence decision."""
        restart = self._restart(run)
        with m.State("LOSS"):
            if sel is not None:
                # The selector starts empty with nothing emitted.
                m.d.sync += [sel.thresh_valid.eq(0), sel.remaining.eq(run.k_eff), sel.popped.eq(0)]
                m.d.sync += [v.eq(0) for v in sel.held]
            next_iteration = Signal(self._iter_width + 1, name="it1")
            m.d.comb += next_iteration.eq(run.iteration + 1)
            change = Signal(self._total_width, name="delta")
            m.d.comb += change.eq(Mux(run.prev_total > run.total, run.prev_total - run.total,
                                      run.total - run.prev_total))
            converged = Signal(name="converged")
            m.d.comb += converged.eq((run.iteration != 0)
                                     & ((change << self._eps_frac) <= run.eps * run.prev_total))
            done = Signal(name="done")
            m.d.comb += done.eq(converged | (next_iteration >= run.max_iter))
            m.d.comb += [self.losses.valid.eq(1), self.losses.payload.total.eq(run.total),
                         self.losses.payload.iteration.eq(next_iteration), self.losses.payload.last.eq(done)]
            with m.If(self.losses.ready):
                m.d.sync += [run.iteration.eq(next_iteration), run.prev_total.eq(run.total), *restart]
                m.d.sync += [c.eq(0) for c in run.group_size]
                with m.If(done):
                    with m.If(run.k_eff == 0):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "TOPK_SEND" if self._topk_buffer == 0 else "TOPK_SCAN"
                with m.Else():
                    m.next = "SUM"

    def _update_states(self, m, run, dp):
        """SUM (group sums and sizes), SELECT (best member per slot), UPDATE (new dsts)."""
        d = self._num_dst
        ncb = self._num_tokens * self._chunks
        restart = self._restart(run)
        with m.State("SUM"):
            m.d.comb += dp.sum_issue.eq(run.phase < ncb)
            m.d.sync += run.phase.eq(run.phase + 1)
            with m.If(dp.sum_issue):
                self._advance(m, run)
            with m.If(run.phase == ncb):
                m.d.sync += [*restart] + [v.eq(0) for v in run.best_valid]
                m.next = "SELECT"
        with m.State("SELECT"):
            m.d.comb += dp.sel_issue.eq(run.phase < ncb)
            m.d.sync += run.phase.eq(run.phase + 1)
            with m.If(dp.sel_issue):
                self._advance(m, run)
            with m.If(run.phase == ncb + dp.sel_drain - 1):
                m.d.sync += restart
                m.next = "UPDATE"
        with m.State("UPDATE"):
            m.d.sync += [run.dst_token[j].eq(run.best_token[j]) for j in range(d)]
            m.d.sync += restart
            m.next = "COPY"

    def _topk_states(self, m, mem, run, topk):
        """TOPK_SEND (keys to the sorter), TOPK_OUT (sorted keys out as pairs)."""
        tw = self._token_width
        restart = self._restart(run)
        with m.State("TOPK_SEND"):
            m.d.comb += topk.i.valid.eq(1)
            m.d.comb += [topk.i.payload.valid.eq(run.key_is_src), topk.i.payload.k.eq(run.k_eff)]
            with m.If(topk.i.ready):
                m.d.sync += restart
                m.next = "TOPK_OUT"
        with m.State("TOPK_OUT"):
            # topk.o -> assignment read -> pairs: a one-stage stall pipeline.
            out_ce = stall_pipeline(m, topk.o.valid, topk.o.ready, self.pairs.valid, self.pairs.ready, 1,
                                    name="out")
            src = topk.o.payload.index[:tw]
            m.d.comb += [mem.asg_rd.addr.eq(src), mem.asg_rd.en.eq(out_ce)]
            out_src = register(m, src, ce=out_ce, name="out_src")
            out_last = register(m, topk.o.payload.last, ce=out_ce, name="out_last")
            m.d.comb += [self.pairs.payload.src.eq(out_src),
                         self.pairs.payload.dst.eq(Array(run.dst_token)[mem.asg_rd.data]),
                         self.pairs.payload.last.eq(out_last)]
            with m.If(self.pairs.valid & self.pairs.ready & out_last):
                m.next = "IDLE"

    def _selector(self, m, mem, run):
        """Streaming top-k: a sorted buffer of K_B keys that one key per cycle
        is inserted into, and the pair output stage behind it.

        A key is {loss, index} compared as one unsigned number (ties to the lower
        index, every key distinct); only src keys above the last key emitted
        (``thresh``) enter, so every scan of the key memory yields the next K_B
        smallest ones."""
        kb, tw, dw = self._topk_buffer, self._token_width, self._dist_width
        sel = SimpleNamespace()
        sel.key = [Signal(tw + dw, name=f"sel_key{j}") for j in range(kb)]
        sel.held = [Signal(name=f"sel_v{j}") for j in range(kb)]
        sel.thresh = Signal(tw + dw, name="sel_thresh")
        sel.thresh_valid = Signal(name="sel_thresh_v")
        sel.remaining = Signal(range(self._num_tokens + 1), name="sel_left")
        sel.popped = Signal(range(kb + 1), name="sel_popped")
        # Pops of this pass, fixed when the scan ends: ``remaining`` falls with
        # every pop, and a bound that followed it would end the pass early.
        sel.quota = Signal(range(kb + 1), name="sel_quota")
        sel.insert = Signal(name="sel_insert")
        sel.insert_index = Signal(tw, name="sel_index")
        incoming = Signal(tw + dw, name="sel_in")
        is_src = mem.key_rd.data[dw]
        m.d.comb += incoming.eq(Cat(sel.insert_index, mem.key_rd.data[:dw]))
        take = Signal(name="sel_take")
        m.d.comb += take.eq(sel.insert & is_src & (~sel.thresh_valid | (incoming > sel.thresh)))
        below = [Signal(name=f"sel_lt{j}") for j in range(kb)]
        m.d.comb += [below[j].eq(~sel.held[j] | (incoming < sel.key[j])) for j in range(kb)]
        with m.If(take):
            for j in range(kb):
                with m.If(below[j]):
                    if j == 0:
                        m.d.sync += [sel.key[0].eq(incoming), sel.held[0].eq(1)]
                    else:
                        m.d.sync += [sel.key[j].eq(Mux(below[j - 1], sel.key[j - 1], incoming)),
                                     sel.held[j].eq(Mux(below[j - 1], sel.held[j - 1], 1))]
        # Output stage: the popped key's dst slot is read from the assignment
        # memory; it runs outside the FSM so a pair may wait under
        # back-pressure while the next scan runs.
        sel.pop_valid = Signal(name="sel_pop_valid")
        pop_ready = Signal(name="sel_pop_ready")
        sel.out_ce = stall_pipeline(m, sel.pop_valid, pop_ready, self.pairs.valid, self.pairs.ready, 1,
                                    name="out")
        sel.pop = Signal(name="sel_pop")
        m.d.comb += sel.pop.eq(sel.pop_valid & pop_ready)
        sel.src = sel.key[0][:tw]
        out_src = register(m, sel.src, ce=sel.out_ce, name="out_src")
        sel.last_now = Signal(name="sel_last_now")
        m.d.comb += sel.last_now.eq(sel.remaining == 1)
        out_last = register(m, sel.last_now, ce=sel.out_ce, name="out_last")
        m.d.comb += [self.pairs.payload.src.eq(out_src),
                     self.pairs.payload.dst.eq(Array(run.dst_token)[mem.asg_rd.data]),
                     self.pairs.payload.last.eq(out_last)]
        return sel

    def _stream_topk_states(self, m, mem, run, sel):
        """TOPK_SCAN (N keys through the buffer, N + 1 cycles) and TOPK_EMIT
        (pop min(K_B, keys left) as pairs), repeated until k' pairs are out;
        TOPK_DRAIN waits for the last pair to be taken."""
        n, kb = self._num_tokens, self._topk_buffer
        restart = self._restart(run)
        # The output stage's assignment read, in every state that may hold a pair.
        hold = [mem.asg_rd.addr.eq(sel.src), mem.asg_rd.en.eq(sel.out_ce)]
        with m.State("TOPK_SCAN"):
            m.d.comb += hold
            m.d.comb += mem.key_rd.addr.eq(run.phase)
            m.d.sync += [run.phase.eq(run.phase + 1), sel.insert_index.eq(run.phase),
                         sel.insert.eq(run.phase < n)]
            with m.If(run.phase == n):
                m.d.sync += [*restart, sel.popped.eq(0), sel.insert.eq(0),
                             sel.quota.eq(Mux(sel.remaining > kb, kb, sel.remaining))]
                m.next = "TOPK_EMIT"
        with m.State("TOPK_EMIT"):
            m.d.comb += hold
            m.d.comb += sel.pop_valid.eq(sel.popped < sel.quota)
            with m.If(sel.pop):
                m.d.sync += [sel.key[j].eq(sel.key[j + 1]) for j in range(kb - 1)]
                m.d.sync += [sel.held[j].eq(sel.held[j + 1]) for j in range(kb - 1)]
                m.d.sync += [sel.held[kb - 1].eq(0), sel.popped.eq(sel.popped + 1),
                             sel.thresh.eq(sel.key[0]), sel.thresh_valid.eq(1),
                             sel.remaining.eq(sel.remaining - 1)]
                with m.If(sel.popped + 1 == sel.quota):
                    with m.If(sel.last_now):
                        m.next = "TOPK_DRAIN"
                    with m.Else():
                        m.d.sync += [v.eq(0) for v in sel.held]
                        m.next = "TOPK_SCAN"
        with m.State("TOPK_DRAIN"):
            m.d.comb += hold
            with m.If(self.pairs.valid & self.pairs.ready & self.pairs.payload.last):
                m.next = "IDLE"
