"""ORBIS DATM engine: Distribution-Aware Token Matching in hardware (ORBIS
§3.2-3.3, Algorithm 1, Fig. 6; docs/SPEC.md "DATM engine")."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..common.min_tree import min_tree, min_tree_latency
from ..common.sorting import bitonic_latency
from ..common.stream import check_positive
from ..registry import unit
from .orbis_dau import chunk_latency, distance_chunk
from .orbis_topk import OrbisTopK

__all__ = ["OrbisDATM"]

CODE_WIDTH = 4
QMIN = -8
QMAX = 7


def _bits(v: int) -> int:
    return max(1, int(v).bit_length())


@unit("orbis_datm", golden="golden.orbis.datm", testbench="sim.orbis.tb_orbis_datm")
class OrbisDATM(wiring.Component):
    """DATM engine: dst/src init, DAU + min-tree pairing, loss and convergence
    check, division-free dst update, iteration, bitonic top-k, index pairs out.

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
        Fraction bits F of S_c and of w_c (default 8).
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
    """

    def __init__(self, *, num_tokens=64, channels=32, num_dst=16, ch_lanes=8, scale_width=13,
                 scale_frac=8, eps_frac=16, iter_width=8, topk_register_every=3):
        self._n = check_positive("num_tokens", num_tokens, minimum=2, maximum=1 << 12)
        self._c = check_positive("channels", channels, maximum=1 << 14)
        self._d = check_positive("num_dst", num_dst, maximum=num_tokens - 1)
        self._l = check_positive("ch_lanes", ch_lanes, maximum=256)
        self._sw = check_positive("scale_width", scale_width, maximum=24)
        self._f = check_positive("scale_frac", scale_frac, minimum=0, maximum=24)
        self._ef = check_positive("eps_frac", eps_frac, minimum=0, maximum=32)
        self._itw = check_positive("iter_width", iter_width, maximum=16)
        self._tre = check_positive("topk_register_every", topk_register_every, maximum=64)
        n, c, d, l = num_tokens, channels, num_dst, ch_lanes
        self._cb = -(-c // l)
        self._iw = _bits(n - 1)
        self._slw = _bits(d - 1)
        self._size = 1 << (n - 1).bit_length()
        smax = (1 << scale_width) - 1
        self._wmax = (smax * smax + ((1 << scale_frac) >> 1)) >> scale_frac
        self._ww = _bits(self._wmax)
        self._dist_w = _bits(c * 225 * self._wmax)
        self._tot_w = _bits(n * c * 225 * self._wmax)
        self._sum_w = _bits(8 * n) + 1
        super().__init__({
            "cmd": In(stream.Signature(data.StructLayout({
                "k": range(n + 1), "max_iter": iter_width, "eps": eps_frac + 1, "seed": self._iw}))),
            "scales": In(stream.Signature(data.ArrayLayout(unsigned(scale_width), l))),
            "tokens": In(stream.Signature(data.ArrayLayout(signed(CODE_WIDTH), l))),
            "losses": Out(stream.Signature(data.StructLayout({
                "total": self._tot_w, "iteration": iter_width, "last": 1}))),
            "pairs": Out(stream.Signature(data.StructLayout({
                "src": self._iw, "dst": self._iw, "last": 1}))),
        })

    @property
    def chunks(self):
        return self._cb

    @property
    def topk_latency(self):
        return bitonic_latency(self._size, self._tre) + 2

    def elaborate(self, platform):
        m = Module()
        n, d, l, cb = self._n, self._d, self._l, self._cb
        iw, slw, f = self._iw, self._slw, self._f
        ncb, dcb = n * cb, d * cb
        cl = chunk_latency(l)
        ml = min_tree_latency(d)
        pad_lanes = [j for j in range(l) if (cb - 1) * l + j >= self._c]

        # ---------------------------------------------------------------- storage
        m.submodules.tok_mem = tok_mem = Memory(shape=unsigned(CODE_WIDTH * l), depth=ncb, init=[])
        m.submodules.w_mem = w_mem = Memory(shape=unsigned(self._ww * l), depth=cb, init=[])
        m.submodules.dst_mem = dst_mem = Memory(shape=unsigned(CODE_WIDTH * l * d), depth=cb, init=[])
        m.submodules.sum_mem = sum_mem = Memory(shape=unsigned(self._sum_w * l * d), depth=cb, init=[])
        m.submodules.asg_mem = asg_mem = Memory(shape=unsigned(slw), depth=n, init=[])
        tok_wr = tok_mem.write_port()
        tok_rd = tok_mem.read_port()
        w_wr = w_mem.write_port()
        w_rd = w_mem.read_port()
        dst_wr = dst_mem.write_port(granularity=CODE_WIDTH * l)
        dst_rd = dst_mem.read_port()
        sum_wr = sum_mem.write_port(granularity=self._sum_w * l)
        sum_rd = sum_mem.read_port(transparent_for=(sum_wr,))
        asg_wr = asg_mem.write_port()
        asg_rd = asg_mem.read_port()

        m.submodules.topk = topk = OrbisTopK(size=self._size, loss_width=self._dist_w,
                                             register_every=self._tre)

        k_reg = Signal(range(n + 1))
        max_iter = Signal(self._itw)
        eps = Signal(self._ef + 1)
        seed = Signal(iw)
        dst_idx = [Signal(iw, name=f"dst_idx{j}") for j in range(d)]
        dst_arr = Array(dst_idx)
        count = [Signal(range(n + 1), name=f"count{j}") for j in range(d)]
        count_arr = Array(count)
        best_t = [Signal(iw, name=f"best_t{j}") for j in range(d)]
        best_v = [Signal(name=f"best_v{j}") for j in range(d)]
        key_loss = [Signal(self._dist_w, name=f"key_loss{j}") for j in range(n)]
        key_src = Signal(n)
        total = Signal(self._tot_w)
        prev = Signal(self._tot_w)
        iteration = Signal(self._itw)
        k_eff = Signal(range(n + 1))
        m.d.comb += k_eff.eq(Mux(k_reg > n - d, n - d, k_reg))

        # ---------------------------------------------------------------- counters
        phase = Signal(range(max(ncb, dcb) + cl + ml + 8))
        t_cnt = Signal(range(n + 1))
        c_cnt = Signal(range(cb))
        addr = Signal(range(ncb + 1))
        last_chunk = Signal()
        m.d.comb += last_chunk.eq(c_cnt == cb - 1)

        def restart():
            return [phase.eq(0), t_cnt.eq(0), c_cnt.eq(0), addr.eq(0)]

        def advance():
            m.d.sync += [addr.eq(addr + 1), c_cnt.eq(Mux(last_chunk, 0, c_cnt + 1))]
            with m.If(last_chunk):
                m.d.sync += t_cnt.eq(t_cnt + 1)

        def delay(sig, cycles, name):
            """``sig`` ``cycles`` cycles later (free-running shift register)."""
            out = sig
            for j in range(cycles):
                r = Signal.like(sig, name=f"{name}_d{j + 1}")
                m.d.sync += r.eq(out)
                out = r
            return out

        # ---------------------------------------------------------------- pairing datapath
        # Issue: token t_cnt, chunk c_cnt. Memories answer one cycle later.
        is_dst = Signal()
        own_slot = Signal(slw)
        hits = Signal(d)
        m.d.comb += hits.eq(Cat(*[dst_idx[j] == t_cnt for j in range(d)]))
        m.d.comb += is_dst.eq(hits.any())
        for j in range(d):
            with m.If(hits[j]):
                m.d.comb += own_slot.eq(j)
        pair_issue = Signal()
        first_chunk = Signal()
        m.d.comb += first_chunk.eq(c_cnt == 0)

        src_codes = [tok_rd.data[j * CODE_WIDTH:(j + 1) * CODE_WIDTH].as_signed() for j in range(l)]
        weights = [w_rd.data[j * self._ww:(j + 1) * self._ww] for j in range(l)]
        dists = []
        pair_first = delay(first_chunk, 1 + cl, "pair_first")
        for j in range(d):
            base = j * l * CODE_WIDTH
            dst_codes = [dst_rd.data[base + i * CODE_WIDTH:base + (i + 1) * CODE_WIDTH].as_signed()
                         for i in range(l)]
            chunk = distance_chunk(m, src_codes, dst_codes, weights, name=f"dau{j}")
            acc = Signal(self._dist_w, name=f"acc{j}")
            m.d.sync += acc.eq(Mux(pair_first, chunk, acc + chunk))
            dists.append(acc)
        min_val, min_idx = min_tree(m, dists, name="mint")
        wb_delay = 2 + cl + ml
        wb_valid = delay(pair_issue & last_chunk, wb_delay, "pair_valid")
        wb_t = delay(t_cnt[:iw], wb_delay, "pair_t")
        wb_dst = delay(is_dst, wb_delay, "pair_isdst")
        wb_own = delay(own_slot, wb_delay, "pair_own")
        wb_slot = Signal(slw)
        wb_loss = Signal(self._dist_w)
        m.d.comb += [wb_slot.eq(Mux(wb_dst, wb_own, min_idx[:slw])),
                     wb_loss.eq(Mux(wb_dst, 0, min_val))]

        # ---------------------------------------------------------------- select datapath
        sel_issue = Signal()
        sel_a = Signal(slw)
        m.d.comb += sel_a.eq(asg_rd.data)
        n_a = Signal(range(n + 1))
        m.d.comb += n_a.eq(count_arr[sel_a])
        sum_lanes = []
        for i in range(l):
            lane_vals = [sum_rd.data[(j * l + i) * self._sum_w:(j * l + i + 1) * self._sum_w].as_signed()
                         for j in range(d)]
            sv = Signal(signed(self._sum_w), name=f"sel_sum{i}")
            m.d.comb += sv.eq(Array(lane_vals)[sel_a])
            sum_lanes.append(sv)
        scaled = []
        for i in range(l):
            sq = Signal(signed(_bits(n) + CODE_WIDTH + 1), name=f"sel_nq{i}")
            m.d.comb += sq.eq(src_codes[i] * n_a)
            scaled.append(sq)
        sel_chunk = distance_chunk(m, scaled, sum_lanes, weights, name="sel")
        sel_first = delay(first_chunk, 1 + cl, "sel_first")
        sel_acc = Signal(len(sel_chunk) + _bits(cb), name="sel_acc")
        m.d.sync += sel_acc.eq(Mux(sel_first, sel_chunk, sel_acc + sel_chunk))
        best_e = [Signal(len(sel_acc), name=f"best_e{j}") for j in range(d)]
        sel_valid = delay(sel_issue & last_chunk, 2 + cl, "sel_valid")
        sel_t = delay(t_cnt[:iw], 2 + cl, "sel_t")
        sel_slot = delay(sel_a, 1 + cl, "sel_slot")

        # ---------------------------------------------------------------- sum datapath
        sum_issue = Signal()
        sum_v1 = delay(sum_issue, 1, "sum_valid")
        sum_c1 = delay(c_cnt, 1, "sum_chunk")
        sum_first1 = delay(first_chunk, 1, "sum_first")
        new_lanes = []
        for i in range(l):
            nv = Signal(signed(self._sum_w), name=f"sum_new{i}")
            m.d.comb += nv.eq(sum_lanes[i] + src_codes[i])
            new_lanes.append(nv)

        # ---------------------------------------------------------------- copy datapath
        copy_issue = Signal()
        copy_slot = Signal(range(d))
        copy_v1 = delay(copy_issue, 1, "copy_valid")
        copy_c1 = delay(c_cnt, 1, "copy_chunk")
        copy_s1 = delay(copy_slot, 1, "copy_slot")

        # ---------------------------------------------------------------- top-k output stage
        out_valid = Signal()
        out_src = Signal(iw)
        out_last = Signal()
        out_ce = Signal()

        # Default memory addresses: the issue counters.
        m.d.comb += [tok_rd.addr.eq(addr), dst_rd.addr.eq(c_cnt), w_rd.addr.eq(c_cnt),
                     sum_rd.addr.eq(c_cnt), asg_rd.addr.eq(t_cnt)]

        # Pairing write-back (runs in PAIR's drain; only PAIR raises pair_issue).
        with m.If(wb_valid):
            m.d.comb += [asg_wr.addr.eq(wb_t), asg_wr.data.eq(wb_slot), asg_wr.en.eq(1)]
            m.d.sync += [Array(key_loss)[wb_t].eq(wb_loss), key_src.bit_select(wb_t, 1).eq(~wb_dst),
                         total.eq(total + wb_loss)]
        # Select compare (runs in SELECT's drain).
        with m.If(sel_valid):
            for j in range(d):
                with m.If((sel_slot == j) & (~best_v[j] | (sel_acc < best_e[j]))):
                    m.d.sync += [best_e[j].eq(sel_acc), best_t[j].eq(sel_t), best_v[j].eq(1)]
        # Sum read-modify-write (one cycle after the issue).
        with m.If(sum_v1):
            m.d.comb += [sum_wr.addr.eq(sum_c1), sum_wr.data.eq(Cat(*(new_lanes * d))),
                         sum_wr.en.eq(1 << sel_a)]
            with m.If(sum_first1):
                m.d.sync += count_arr[sel_a].eq(n_a + 1)
        # Copy write (one cycle after the issue).
        with m.If(copy_v1):
            m.d.comb += [dst_wr.addr.eq(copy_c1), dst_wr.data.eq(Cat(*([tok_rd.data] * d))),
                         dst_wr.en.eq(1 << copy_s1)]

        # The top-k keys: one loss per token (padding positions are masked off).
        m.d.comb += topk.i.payload.loss.eq(Cat(*key_loss))

        # ---------------------------------------------------------------- control
        with m.FSM(name="datm"):
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += [k_reg.eq(self.cmd.payload.k), max_iter.eq(self.cmd.payload.max_iter),
                                 eps.eq(self.cmd.payload.eps), seed.eq(self.cmd.payload.seed)]
                    m.d.sync += restart()
                    m.next = "LOAD_S"
            with m.State("LOAD_S"):
                m.d.comb += self.scales.ready.eq(1)
                half = (1 << f) >> 1
                wl = []
                for j in range(l):
                    s = self.scales.payload[j]
                    w = Signal(self._ww, name=f"load_w{j}")
                    m.d.comb += w.eq((s * s + half) >> f)
                    wl.append(w)
                m.d.comb += [w_wr.addr.eq(c_cnt), w_wr.en.eq(self.scales.valid)]
                with m.If(last_chunk):
                    m.d.comb += w_wr.data.eq(Cat(*[Const(0, self._ww) if j in pad_lanes else wl[j]
                                                   for j in range(l)]))
                with m.Else():
                    m.d.comb += w_wr.data.eq(Cat(*wl))
                with m.If(self.scales.valid):
                    advance()
                    with m.If(last_chunk):
                        m.d.sync += restart()
                        m.next = "LOAD_T"
            with m.State("LOAD_T"):
                m.d.comb += [self.tokens.ready.eq(1), tok_wr.addr.eq(addr),
                             tok_wr.data.eq(self.tokens.payload.as_value()), tok_wr.en.eq(self.tokens.valid)]
                with m.If(self.tokens.valid):
                    advance()
                    with m.If(addr == ncb - 1):
                        m.next = "INIT"
            with m.State("INIT"):
                base = Signal(iw + 1)
                m.d.comb += base.eq(Mux(seed >= n, seed - n, seed))
                stride = n // d
                for j in range(d):
                    v = base + j * stride
                    m.d.sync += dst_idx[j].eq(Mux(v >= n, v - n, v))
                m.d.sync += [iteration.eq(0), *restart()]
                m.next = "COPY"
            with m.State("COPY"):
                # issue (slot, chunk): read the slot's token chunk; write it a cycle later.
                copy_token = Signal(iw)
                m.d.comb += [copy_issue.eq(phase < dcb), copy_slot.eq(t_cnt), copy_token.eq(dst_arr[t_cnt]),
                             tok_rd.addr.eq(copy_token * cb + c_cnt)]
                # Clear the group sums while the first slot is copied.
                with m.If((phase < cb)):
                    m.d.comb += [sum_wr.addr.eq(c_cnt), sum_wr.data.eq(0), sum_wr.en.eq(-1)]
                m.d.sync += phase.eq(phase + 1)
                with m.If(copy_issue):
                    advance()
                with m.If(phase == dcb):
                    m.d.sync += [*restart(), total.eq(0)]
                    m.next = "PAIR"
            with m.State("PAIR"):
                m.d.comb += pair_issue.eq(phase < ncb)
                m.d.sync += phase.eq(phase + 1)
                with m.If(pair_issue):
                    advance()
                with m.If(phase == ncb + wb_delay - 1):
                    m.d.sync += restart()
                    m.next = "LOSS"
            with m.State("LOSS"):
                it1 = Signal(self._itw + 1)
                m.d.comb += it1.eq(iteration + 1)
                delta = Signal(self._tot_w)
                m.d.comb += delta.eq(Mux(prev > total, prev - total, total - prev))
                converged = Signal()
                m.d.comb += converged.eq((iteration != 0) & ((delta << self._ef) <= eps * prev))
                done = Signal()
                m.d.comb += done.eq(converged | (it1 >= max_iter))
                m.d.comb += [self.losses.valid.eq(1), self.losses.payload.total.eq(total),
                             self.losses.payload.iteration.eq(it1), self.losses.payload.last.eq(done)]
                with m.If(self.losses.ready):
                    m.d.sync += [iteration.eq(it1), prev.eq(total), *restart()]
                    m.d.sync += [c.eq(0) for c in count]
                    with m.If(done):
                        with m.If(k_eff == 0):
                            m.next = "IDLE"
                        with m.Else():
                            m.next = "TOPK_SEND"
                    with m.Else():
                        m.next = "SUM"
            with m.State("SUM"):
                m.d.comb += sum_issue.eq(phase < ncb)
                m.d.sync += phase.eq(phase + 1)
                with m.If(sum_issue):
                    advance()
                with m.If(phase == ncb):
                    m.d.sync += [*restart()] + [v.eq(0) for v in best_v]
                    m.next = "SELECT"
            with m.State("SELECT"):
                m.d.comb += sel_issue.eq(phase < ncb)
                m.d.sync += phase.eq(phase + 1)
                with m.If(sel_issue):
                    advance()
                with m.If(phase == ncb + cl + 1):
                    m.d.sync += restart()
                    m.next = "UPDATE"
            with m.State("UPDATE"):
                m.d.sync += [dst_idx[j].eq(best_t[j]) for j in range(d)]
                m.d.sync += restart()
                m.next = "COPY"
            with m.State("TOPK_SEND"):
                m.d.comb += topk.i.valid.eq(1)
                m.d.comb += [topk.i.payload.valid.eq(key_src), topk.i.payload.k.eq(k_eff)]
                with m.If(topk.i.ready):
                    m.d.sync += restart()
                    m.next = "TOPK_OUT"
            with m.State("TOPK_OUT"):
                # topk.o -> (assignment read) -> pairs: a one-stage stall pipeline.
                m.d.comb += [out_ce.eq(~out_valid | self.pairs.ready), topk.o.ready.eq(out_ce),
                             asg_rd.addr.eq(topk.o.payload.index[:iw]), asg_rd.en.eq(out_ce)]
                with m.If(out_ce):
                    m.d.sync += [out_valid.eq(topk.o.valid), out_src.eq(topk.o.payload.index[:iw]),
                                 out_last.eq(topk.o.payload.last)]
                m.d.comb += [self.pairs.valid.eq(out_valid), self.pairs.payload.src.eq(out_src),
                             self.pairs.payload.dst.eq(dst_arr[asg_rd.data]),
                             self.pairs.payload.last.eq(out_last)]
                with m.If(self.pairs.valid & self.pairs.ready & out_last):
                    m.d.sync += out_valid.eq(0)
                    m.next = "IDLE"
        return m
