"""ORBIS accelerator: the GEMM core as the DXE, the QE and the DATM engine
beside it, a pair memory per layer, reduce and restore units around attention
and the OGM step sequencer (docs/SPEC.md "ORBIS accelerator"; ORBIS §3, Fig. 6)."""

from pathlib import Path

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for, exact_log2

from ..common.axi import AXI4LiteRegisters, CommandQueue, accelerator_members, axis_signature
from ..common.params import check_int
from ..common.run_status import engine_domain, fetch_command, run_status
from ..common.scratchpad import compact_memory_init
from ..common.stream import stall_pipeline
from ..orbis.orbis_datm import OrbisDATM
from ..orbis.orbis_qe import OrbisQE
from ..registry import unit
from ..systolic.array import emit_grid
from .gemm_accelerator import CoreParameters
from .gemm_core import COUNTER_BITS, FIELD, GemmCore
from .orbis_commands import COMMANDS, DTYPE_CODES, ERRORS, ID_MAGIC, LAYER_BITS, MEMORIES, OPCODES, VERSION, \
    regmap

__all__ = ["OrbisAccelerator", "emit_orbis_accelerator", "MAX_LAYERS"]

MAX_LAYERS = 32   # the PAIRS_VALID and LATE registers hold one bit per layer
EPS_FRAC = 16     # MATCH's eps field: ε with 16 fraction bits
ITER_BITS = 8


def emit_orbis_accelerator(component, out_dir, name):
    """The top as Amaranth Verilog plus the array's PE and grid modules."""
    from amaranth.back import verilog

    grid = emit_grid(component.core.array, out_dir, f"{name}_array")
    top = Path(out_dir) / f"{name}.v"
    top.write_text(compact_memory_init(verilog.convert(component, name=name, emit_src=False)))
    return [top] + grid


@unit("orbis_accelerator", golden="golden.orbis_accel.run", testbench="sim.accel.tb_orbis_accelerator",
      emit=emit_orbis_accelerator, synth={"flatten": False, "in_all": False}, sim={"public": "top"})
class OrbisAccelerator(CoreParameters, wiring.Component):
    """ORBIS accelerator: output-guided token matching beside the GEMM core.

    The host runs each timestep as a GEMM program (LOAD / STORE / GEMM /
    VECTOR on the core, word for word the GEMM accelerator's) opened by
    ``STEP``; the OGM sequencer makes one step in ``RC_STEPS + 1`` a
    full-computation (FC) step, the others reduced-computation (RC) steps.
    In an FC step a VECTOR-to-stream marked ``capture`` (a layer's SDPA
    output) also fills the feature memory, and ``MATCH`` starts the match
    engine on it -- feeder, QE, DATM engine, pair writer -- in the background:
    the controller goes on forwarding GEMM commands to the array while the
    engine quantizes and matches. The pairs land in the layer's region of the
    pair memory, with a token -> reduced-row map. In an RC step a LOAD A
    marked ``reduce`` passes the reduce unit (every src merged into its dst
    by the rounded mean of the group) and a VECTOR-to-stream marked
    ``restore`` passes the restore unit (every src copies its dst's row).

    Parameters
    ----------
    rows, cols, a_depth, w_depth, acc_depth, queue_depth, stream_bytes
        The GEMM core's (see ``gemm_accelerator``; INT8 datapath).
    tokens : int
        Tokens N of a matched matrix and of a reduced K tile (default 64).
    channels : int
        Channels C of the matched SDPA output, a multiple of ``cols`` (default 64).
    num_dst : int
        DATM dst tokens D, 1 <= D < N (default 16); at most N - D pairs per layer.
    layers : int
        Pair-memory layers (default 12, at most 32).
    rc_steps : int
        RC steps after every FC step (default 3).
    scale_frac : int
        Fraction bits of the QE's scales and the DATM weights (default 8).
    topk_buffer : int
        The DATM engine's streaming top-k buffer (0: bitonic network; default 0).

    Members
    -------
    s_axil : ``In(axi_lite_signature(12))``
        Registers (``REGMAP``, docs/SPEC.md "ORBIS accelerator").
    s_axis : ``In(axis_signature(stream_bytes))``
        LOAD data (through the reduce unit for a reduced LOAD).
    m_axis : ``Out(axis_signature(stream_bytes))``
        STORE / VECTOR results (through the restore unit for a restored VECTOR).
    irq : ``Out(1)``
        High while STATUS.done is set.
    """

    def __init__(self, *, rows=16, cols=16, a_depth=1024, w_depth=1024, acc_depth=1024, queue_depth=16,
                 stream_bytes=16, tokens=64, channels=64, num_dst=16, layers=12, rc_steps=3, scale_frac=8,
                 topk_buffer=0):
        core = dict(rows=rows, cols=cols, a_depth=a_depth, w_depth=w_depth, acc_depth=acc_depth,
                    queue_depth=queue_depth, stream_bytes=stream_bytes)
        params, _ = self.check_core(**core)
        params["tokens"] = check_int("tokens", tokens, minimum=2, maximum=1 << 12)
        params["channels"] = check_int("channels", channels, maximum=1 << 12)
        if params["channels"] % params["cols"]:
            raise ValueError(f"channels ({channels}) must be a multiple of cols ({params['cols']})")
        params["num_dst"] = check_int("num_dst", num_dst, maximum=params["tokens"] - 1)
        params["layers"] = check_int("layers", layers, maximum=MAX_LAYERS)
        params["rc_steps"] = check_int("rc_steps", rc_steps, minimum=0, maximum=255)
        params["scale_frac"] = check_int("scale_frac", scale_frac, minimum=1, maximum=12)
        params["topk_buffer"] = check_int("topk_buffer", topk_buffer, minimum=0, maximum=1 << 10)
        self._params = params
        self._core = self._qe = self._datm = None
        self.REGMAP = regmap(**{k: params[k] for k in ("rows", "cols", "a_depth", "w_depth", "acc_depth",
                                                       "queue_depth", "stream_bytes", "tokens", "channels",
                                                       "num_dst", "layers", "rc_steps")}, dtype=self.dtype)
        self.COMMANDS = COMMANDS
        super().__init__(accelerator_members(self.REGMAP, params["stream_bytes"]))

    @property
    def dtype(self):
        """The GEMM core's datapath, and so the QE's: INT8 (a ``dtype`` parameter follows the core's)."""
        return "int8"

    @property
    def tokens(self):
        return self._params["tokens"]

    @property
    def channels(self):
        return self._params["channels"]

    @property
    def num_dst(self):
        return self._params["num_dst"]

    @property
    def layers(self):
        return self._params["layers"]

    @property
    def rc_steps(self):
        return self._params["rc_steps"]

    @property
    def scale_frac(self):
        return self._params["scale_frac"]

    @property
    def topk_buffer(self):
        return self._params["topk_buffer"]

    @property
    def max_pairs(self):
        """Pairs a layer holds at most: N - D."""
        return self.tokens - self.num_dst

    @property
    def feature_depth(self):
        """Feature memory rows (one stream beat each): N·C / STREAM_BYTES."""
        return self.tokens * self.channels // self._params["stream_bytes"]

    @property
    def core(self):
        if self._core is None:
            p = self._params
            self._core = GemmCore(**{k: p[k] for k in ("rows", "cols", "a_depth", "w_depth", "acc_depth",
                                                       "queue_depth", "stream_bytes")})
        return self._core

    @property
    def qe(self):
        if self._qe is None:
            p = self._params
            self._qe = OrbisQE(num_tokens=p["tokens"], channels=p["channels"], ch_lanes=p["stream_bytes"],
                               data_width=8, scale_frac=p["scale_frac"], dtype=self.dtype)
        return self._qe

    @property
    def datm(self):
        if self._datm is None:
            p = self._params
            self._datm = OrbisDATM(num_tokens=p["tokens"], channels=p["channels"], num_dst=p["num_dst"],
                                   ch_lanes=p["stream_bytes"], scale_width=self.qe.scale_width,
                                   scale_frac=p["scale_frac"], eps_frac=EPS_FRAC, iter_width=ITER_BITS,
                                   topk_buffer=p["topk_buffer"])
        return self._datm

    def elaborate(self, platform):
        m = Module()
        p = self._params
        m.submodules.regs = regs = AXI4LiteRegisters(self.REGMAP)
        wiring.connect(m, wiring.flipped(self.s_axil), regs.s_axil)

        in_core, start = engine_domain(m, regs)
        m.submodules.top = top = in_core(_Controller(self))
        m.d.comb += [
            top.start.eq(start),
            top.cmd_we.eq(regs.cmd_wstb), top.cmd_word.eq(regs.cmd),
            top.sel_we.eq(regs.pair_sel_wstb), top.sel_layer.eq(regs.pair_sel.layer),
            top.sel_index.eq(regs.pair_sel.index),
        ]
        wiring.connect(m, wiring.flipped(self.s_axis), top.s_axis)
        wiring.connect(m, top.m_axis, wiring.flipped(self.m_axis))
        m.d.comb += [
            regs.id.eq(ID_MAGIC), regs.version.eq(VERSION),
            regs.array.rows.eq(p["rows"]), regs.array.cols.eq(p["cols"]),
            regs.a_depth.eq(p["a_depth"]), regs.w_depth.eq(p["w_depth"]), regs.acc_depth.eq(p["acc_depth"]),
            regs.config.stream_bytes.eq(p["stream_bytes"]), regs.config.queue_depth.eq(p["queue_depth"]),
            regs.config.cmd_words.eq(COMMANDS.words), regs.datapath.dtype.eq(DTYPE_CODES[self.dtype]),
            regs.orbis.tokens.eq(p["tokens"]), regs.orbis.num_dst.eq(p["num_dst"]),
            regs.orbis2.channels.eq(p["channels"]), regs.orbis2.layers.eq(p["layers"]),
            regs.orbis2.rc_steps.eq(p["rc_steps"]),
            regs.status.busy.eq(top.busy), regs.status.done.eq(top.done), regs.status.error.eq(top.error),
            regs.status.error_code.eq(top.error_code),
            regs.queue.fill.eq(top.fill), regs.queue.words.eq(top.words),
            regs.ogm.phase.eq(top.phase), regs.ogm.rc.eq(top.rc), regs.ogm.engine_busy.eq(top.engine_busy),
            regs.ogm.feeder_busy.eq(top.feeder_busy),
            regs.pairs_valid.eq(top.pairs_valid), regs.late.eq(top.late),
            regs.pair.src.eq(top.pair_src), regs.pair.dst.eq(top.pair_dst),
            regs.pair_count.count.eq(top.pair_count), regs.pair_count.iterations.eq(top.pair_iterations),
            regs.match_done.eq(top.match_done),
            self.irq.eq(top.done),
        ]
        for name in _Controller.COUNTERS:
            m.d.comb += getattr(regs, name).eq(getattr(top, name))
        return m


class _Controller(wiring.Component):
    """Everything below the register block, in the soft-resettable domain."""

    COUNTERS = ("cycles", "array_busy", "stall", "gemm_cycles", "commands", "datm_busy", "exposed", "matches",
                "dropped", "match_cycles")

    def __init__(self, top):
        self._top = top
        p = top._params
        sb = p["stream_bytes"]
        members = {
            "start": In(1), "cmd_we": In(1), "cmd_word": In(32),
            "sel_we": In(1), "sel_layer": In(LAYER_BITS), "sel_index": In(FIELD),
            "s_axis": In(axis_signature(sb)), "m_axis": Out(axis_signature(sb)),
            "busy": Out(1), "done": Out(1), "error": Out(1), "error_code": Out(4),
            "fill": Out(range(p["queue_depth"] + 1)), "words": Out(range(COMMANDS.words)),
            "phase": Out(8), "rc": Out(1), "engine_busy": Out(1), "feeder_busy": Out(1),
            "pairs_valid": Out(MAX_LAYERS), "late": Out(MAX_LAYERS),
            "pair_src": Out(FIELD), "pair_dst": Out(FIELD), "pair_count": Out(FIELD), "pair_iterations": Out(FIELD), "match_done": Out(COUNTER_BITS),
        }
        members.update({name: Out(COUNTER_BITS) for name in self.COUNTERS})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        top = self._top
        p = top._params
        core, qe, datm = top.core, top.qe, top.datm
        sb = p["stream_bytes"]
        n_tok, n_dst, n_layers = p["tokens"], p["num_dst"], p["layers"]
        kmax = top.max_pairs
        beat = 8 * sb
        tw = bits_for(n_tok - 1)             # a token index
        rw = bits_for(n_tok)                 # a count of tokens
        g_red = p["rows"] // sb              # beats of an A row (a reduced LOAD)
        g_res = p["cols"] // sb              # beats of a VECTOR result row (a restored VECTOR)
        cb = p["channels"] // sb             # beats of one token's channels (QE chunks)
        n_tiles_feat = p["channels"] // p["cols"]
        fdepth = top.feature_depth
        m.submodules.core = core
        m.submodules.qe = qe
        m.submodules.datm = datm
        m.submodules.queue = queue = CommandQueue(COMMANDS, depth=p["queue_depth"])
        m.submodules.feat = feat = Memory(shape=beat, depth=fdepth, init=[])
        m.submodules.pairs = pairs = Memory(shape=2 * tw, depth=n_layers * kmax, init=[])
        m.submodules.maps = maps = Memory(shape=tw, depth=n_layers * n_tok, init=[])
        # Reduce accumulators: one entry per (reduced row, beat): the lanes' sums and the group size.
        sw = 8 + bits_for(n_tok) + 1
        m.submodules.racc = racc = Memory(shape=sb * sw + rw, depth=n_tok * g_red, init=[])
        # Restore buffer: one N tile of the core's result rows.
        m.submodules.rbuf = rbuf = Memory(shape=beat, depth=n_tok * g_res, init=[])
        f_wr, f_rd = feat.write_port(), feat.read_port()
        p_wr, p_rd, p_host = pairs.write_port(), pairs.read_port(), pairs.read_port()
        m_wr, m_rd = maps.write_port(), maps.read_port()
        a_wr = racc.write_port()
        a_rd = racc.read_port(transparent_for=(a_wr,))
        b_wr, b_rd = rbuf.write_port(), rbuf.read_port()

        m.d.comb += [queue.push.eq(self.cmd_we), queue.word.eq(self.cmd_word),
                     self.fill.eq(queue.level), self.words.eq(queue.pending)]

        # --- run status and counters ------------------------------------------------------
        rs = run_status(m, start=self.start, overflow=queue.overflow, overflow_code=ERRORS["QUEUE_FULL"],
                        counters=self.COUNTERS, kept=("gemm_cycles", "match_cycles"), counter_bits=COUNTER_BITS)
        running, done, error, code = rs.running, rs.done, rs.error, rs.code
        raise_error, new_code, stalled, ctr = rs.raise_error, rs.new_code, rs.stalled, rs.ctr
        m.d.comb += [self.busy.eq(running), self.done.eq(done), self.error.eq(error), self.error_code.eq(code)]
        for name, sig in ctr.items():
            m.d.comb += getattr(self, name).eq(sig)
        late = Signal(MAX_LAYERS)
        m.d.comb += self.late.eq(late)
        with m.If(rs.starting):
            m.d.sync += late.eq(0)
        eng_busy = Signal()
        with m.If(running & eng_busy):
            m.d.sync += ctr["datm_busy"].eq(ctr["datm_busy"] + 1)

        # --- OGM step sequencer ---------------------------------------------------------------
        phase = Signal(8)
        rc = Signal()
        m.d.comb += [rc.eq(phase != 0), self.phase.eq(phase), self.rc.eq(rc)]

        # --- per-layer pair state -----------------------------------------------------------
        valid = Signal(MAX_LAYERS)
        counts = Array(Signal(rw, name=f"pair_count_{l}") for l in range(n_layers))
        iters = Array(Signal(ITER_BITS, name=f"pair_iters_{l}") for l in range(n_layers))
        done_at = Array(Signal(COUNTER_BITS, name=f"match_done_{l}") for l in range(n_layers))
        m.d.comb += self.pairs_valid.eq(valid)
        sel_layer = Signal(LAYER_BITS)
        sel_index = Signal(FIELD)
        with m.If(self.sel_we):
            m.d.sync += [sel_layer.eq(self.sel_layer), sel_index.eq(self.sel_index)]
        sel_ok = sel_layer < n_layers
        m.d.comb += [p_host.addr.eq(sel_layer * kmax + sel_index),
                     self.pair_src.eq(p_host.data[:tw]), self.pair_dst.eq(p_host.data[tw:]),
                     self.pair_count.eq(Mux(sel_ok, counts[sel_layer], 0)),
                     self.pair_iterations.eq(Mux(sel_ok, iters[sel_layer], 0)),
                     self.match_done.eq(Mux(sel_ok, done_at[sel_layer], 0))]

        cmd = Signal(COMMANDS.layout())

        # --- match engine: feeder -> QE -> DATM -> pair writer -> map builder ----------------
        wiring.connect(m, qe.scales, datm.scales)
        wiring.connect(m, qe.o, datm.tokens)
        launch = Signal()
        l_iter = Signal(FIELD)
        l_eps = Signal(FIELD)
        l_seed = Signal(FIELD)
        e_layer = Signal(LAYER_BITS)
        e_kk = Signal(rw)
        e_cycles = Signal(COUNTER_BITS)
        d_cmd = Signal()
        m.d.comb += [datm.cmd.valid.eq(d_cmd), datm.cmd.payload.k.eq(e_kk), datm.cmd.payload.max_iter.eq(l_iter),
                     datm.cmd.payload.eps.eq(l_eps), datm.cmd.payload.seed.eq(l_seed)]
        with m.If(datm.cmd.ready):
            m.d.sync += d_cmd.eq(0)
        # Feeder: token-major reads of the tile-major feature memory (N tiles of N rows of COLS/SB beats).
        f_left = Signal(range(fdepth + 1))
        f_valid = Signal()
        f_addr = Signal(range(fdepth + 1))
        f_row = Signal(range(fdepth + 1))
        f_b = Signal(range(max(g_res, 2)))
        f_nt = Signal(range(max(n_tiles_feat, 2)))
        f_en = Signal()
        m.d.comb += [self.feeder_busy.eq((f_left != 0) | f_valid),
                     f_en.eq(~f_valid | qe.i.ready), f_rd.addr.eq(f_addr), f_rd.en.eq(f_en),
                     qe.i.valid.eq(f_valid), qe.i.payload.as_value().eq(f_rd.data)]
        with m.If(f_en):
            m.d.sync += f_valid.eq(f_left != 0)
            with m.If(f_left != 0):
                m.d.sync += f_left.eq(f_left - 1)
                with m.If(f_b == g_res - 1):
                    m.d.sync += f_b.eq(0)
                    with m.If(f_nt == n_tiles_feat - 1):
                        m.d.sync += [f_nt.eq(0), f_row.eq(f_row + g_res), f_addr.eq(f_row + g_res)]
                    with m.Else():
                        m.d.sync += [f_nt.eq(f_nt + 1), f_addr.eq(f_addr + (n_tok - 1) * g_res + 1)]
                with m.Else():
                    m.d.sync += [f_b.eq(f_b + 1), f_addr.eq(f_addr + 1)]
        is_src = Signal(n_tok)
        p_idx = Signal(rw)
        rank = Signal(rw)
        e_j = Signal(rw)
        fx = Signal(rw + 1)
        fx_v1 = Signal()
        fx_v2 = Signal()
        fx_src1 = Signal(tw)
        map_ctrl = Signal()         # the controller owns the map read port (engine idle)
        m.d.comb += [datm.losses.ready.eq(1), datm.pairs.ready.eq(1)]
        with m.If(eng_busy):
            m.d.sync += e_cycles.eq(e_cycles + 1)
        with m.FSM(name="engine"):
            with m.State("IDLE"):
                m.d.comb += map_ctrl.eq(1)
                with m.If(launch):
                    kk = Mux(cmd.m > kmax, kmax, cmd.m)
                    m.d.sync += [e_layer.eq(cmd.layer), e_kk.eq(kk), d_cmd.eq(1), f_left.eq(fdepth), f_addr.eq(0),
                                 f_row.eq(0), f_b.eq(0), f_nt.eq(0), is_src.eq(0), p_idx.eq(0), e_cycles.eq(0),
                                 valid.bit_select(cmd.layer, 1).eq(0)]
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += eng_busy.eq(1)
                with m.If(datm.losses.valid & datm.losses.payload.last):
                    m.d.sync += iters[e_layer].eq(datm.losses.payload.iteration)
                    with m.If(e_kk == 0):
                        m.d.sync += [rank.eq(0), e_j.eq(0)]
                        m.next = "RANK"
                m.d.comb += [p_wr.addr.eq(e_layer * kmax + p_idx),
                             p_wr.data.eq(Cat(datm.pairs.payload.src, datm.pairs.payload.dst)),
                             p_wr.en.eq(datm.pairs.valid)]
                with m.If(datm.pairs.valid):
                    m.d.sync += [p_idx.eq(p_idx + 1), is_src.bit_select(datm.pairs.payload.src, 1).eq(1)]
                    with m.If(datm.pairs.payload.last):
                        m.d.sync += [rank.eq(0), e_j.eq(0)]
                        m.next = "RANK"
            with m.State("RANK"):
                # Kept tokens take the reduced rows 0.. in token order.
                m.d.comb += eng_busy.eq(1)
                kept = ~is_src.bit_select(e_j, 1)
                m.d.comb += [m_wr.addr.eq(e_layer * n_tok + e_j), m_wr.data.eq(rank), m_wr.en.eq(kept)]
                m.d.sync += [rank.eq(rank + kept), e_j.eq(e_j + 1)]
                with m.If(e_j == n_tok - 1):
                    m.d.sync += [fx.eq(0), fx_v1.eq(0), fx_v2.eq(0)]
                    m.next = "FIX"
            with m.State("FIX"):
                # Every src maps to its dst's row: pair read, map read of the dst (src held), map write of the src.
                m.d.comb += eng_busy.eq(1)
                m.d.comb += [p_rd.addr.eq(e_layer * kmax + fx), p_rd.en.eq(1)]
                m.d.sync += [fx.eq(fx + 1), fx_v1.eq(fx < e_kk), fx_v2.eq(fx_v1)]
                m.d.comb += [m_rd.addr.eq(e_layer * n_tok + p_rd.data[tw:]), m_rd.en.eq(1)]
                m.d.sync += fx_src1.eq(p_rd.data[:tw])
                m.d.comb += [m_wr.addr.eq(e_layer * n_tok + fx_src1), m_wr.data.eq(m_rd.data), m_wr.en.eq(fx_v2)]
                with m.If(fx == e_kk + 1):
                    m.d.sync += [valid.bit_select(e_layer, 1).eq(1), counts[e_layer].eq(e_kk),
                                 done_at[e_layer].eq(ctr["cycles"]),
                                 ctr["match_cycles"].eq(e_cycles + 1)]
                    m.next = "IDLE"
        m.d.comb += self.engine_busy.eq(eng_busy)

        # --- the current command --------------------------------------------------------------
        op = cmd.opcode
        words = Signal(COMMANDS.width)   # the command re-packed, for the core's queue
        m.d.comb += [words[f.lsb:f.lsb + f.width].eq(getattr(cmd, f.name)) for f in COMMANDS.fields]
        fwd = Signal(range(COMMANDS.words + 1))
        is_gemm_op = (op == OPCODES["LOAD"]) | (op == OPCODES["STORE"]) | (op == OPCODES["GEMM"]) | \
                     (op == OPCODES["VECTOR"])
        vec_stream = (op == OPCODES["VECTOR"]) & cmd.to_stream
        do_capture = Signal()
        do_reduce = Signal()
        do_restore = Signal()
        cap_en = Signal()
        cap_ptr = Signal(range(fdepth + 1))
        layer_ok = cmd.layer < n_layers
        match_bad = ~layer_ok | (cmd.m > n_tok) | (cmd.addr0 >= n_tok) | (cmd.n >= (1 << ITER_BITS))
        with m.If(launch):
            m.d.sync += cap_ptr.eq(0)

        # Token -> reduced row of the command's layer, loaded before a reduce / restore.
        map_reg = Array(Signal(tw, name=f"map_{j}") for j in range(n_tok))
        ml = Signal(rw + 1)
        r_cnt = Signal(rw)               # pairs r of the command's layer
        keep_rows = Signal(rw)           # N - r
        m.d.comb += keep_rows.eq(n_tok - r_cnt)
        m_rd_ctrl_addr = Signal(range(n_layers * n_tok))
        m_rd_ctrl_en = Signal()
        with m.If(map_ctrl):
            m.d.comb += [m_rd.addr.eq(m_rd_ctrl_addr), m_rd.en.eq(m_rd_ctrl_en)]

        # --- reduce unit: host beats of a reduced LOAD -> merged rows into the core ----------------
        red_on = Signal()
        red_out = Signal()               # 0: accumulate a tile, 1: send its merged rows
        red_j = Signal(rw)
        red_b = Signal(range(max(g_red, 2)))
        red_kt = Signal(FIELD)
        touched = Signal(n_tok * g_red)
        pv = Signal()
        pe = Signal(range(n_tok * g_red))
        px = Signal(beat)
        red_take = Signal()
        target = Signal(tw)
        entry = Signal(range(n_tok * g_red))
        m.d.comb += [target.eq(map_reg[red_j]), entry.eq(target * g_red + red_b),
                     red_take.eq(red_on & ~red_out & self.s_axis.tvalid)]
        m.d.comb += [a_rd.addr.eq(entry), a_rd.en.eq(red_take)]
        m.d.sync += [pv.eq(red_take), pe.eq(entry), px.eq(self.s_axis.tdata)]
        old = Signal(sb * sw + rw)
        m.d.comb += old.eq(Mux(touched.bit_select(pe, 1), a_rd.data, 0))
        lanes_new = []
        for l in range(sb):
            s = Signal(signed(sw), name=f"red_sum_{l}")
            m.d.comb += s.eq(old[l * sw:(l + 1) * sw].as_signed() + px[8 * l:8 * l + 8].as_signed())
            lanes_new.append(s)
        m.d.comb += [a_wr.addr.eq(pe), a_wr.data.eq(Cat(*lanes_new, old[sb * sw:] + 1)), a_wr.en.eq(pv)]
        with m.If(pv):
            m.d.sync += touched.bit_select(pe, 1).eq(1)
        with m.If(red_take):
            with m.If(red_b == g_red - 1):
                m.d.sync += [red_b.eq(0), red_j.eq(red_j + 1)]
                with m.If(red_j == n_tok - 1):
                    m.d.sync += [red_j.eq(0), red_out.eq(1)]
            with m.Else():
                m.d.sync += red_b.eq(red_b + 1)
        # Output: read the entries in order, divide, send (a 2-stage stall pipeline).
        o_left = Signal(range(n_tok * g_red + 1))
        o_sent = Signal(range(n_tok * g_red + 1))
        o_ptr = Signal(range(n_tok * g_red + 1))
        o_issue = Signal()
        o_ready = Signal()
        o_valid = Signal()
        o_data = Signal(beat)
        o_take = Signal()
        m.d.comb += o_issue.eq(red_on & red_out & (o_left != 0))
        red_ce = stall_pipeline(m, o_issue, o_ready, o_valid, core.s_axis.tready, 2, name="red")
        with m.If(red_on & red_out):
            m.d.comb += [a_rd.addr.eq(o_ptr), a_rd.en.eq(red_ce)]
        with m.If(o_issue & o_ready):
            m.d.sync += [o_ptr.eq(o_ptr + 1), o_left.eq(o_left - 1)]
        n_grp = Signal(rw)
        m.d.comb += n_grp.eq(a_rd.data[sb * sw:])
        with m.If(red_ce):
            for l in range(sb):
                s = a_rd.data[l * sw:(l + 1) * sw].as_signed()
                num = Signal(signed(sw + 2), name=f"red_num_{l}")
                den = Signal(signed(rw + 2), name=f"red_den_{l}")
                m.d.comb += [num.eq((s << 1) + n_grp), den.eq(Cat(Const(0, 1), n_grp, Const(0, 1)).as_signed())]
                # The mean of INT8 values is an INT8 value: the quotient's low byte is all of it.
                q = Signal(signed(8), name=f"red_mean_{l}")
                m.d.comb += q.eq(num // Mux(den == 0, 1, den))
                m.d.sync += o_data[8 * l:8 * l + 8].eq(q)
        m.d.comb += o_take.eq(o_valid & core.s_axis.tready)
        with m.If(o_take):
            m.d.sync += o_sent.eq(o_sent + 1)
            with m.If(o_sent == keep_rows * g_red - 1):
                m.d.sync += [o_sent.eq(0), o_ptr.eq(0), o_left.eq(keep_rows * g_red), red_out.eq(0), touched.eq(0),
                             red_kt.eq(red_kt + 1)]
                with m.If(red_kt == cmd.k - 1):
                    m.d.sync += red_on.eq(0)

        # --- restore unit: core result rows of a restored VECTOR -> N rows per tile -----------------
        res_on = Signal()
        res_out = Signal()
        res_in = Signal(range(n_tok * g_res + 1))
        res_nt = Signal(FIELD)
        res_tiles = Signal(FIELD)
        res_j = Signal(rw)
        res_b = Signal(range(max(g_res, 2)))
        res_left = Signal(range(n_tok * g_res + 1))
        res_v = Signal()
        res_last = Signal()
        res_issue = Signal()
        res_en = Signal()
        res_in_take = Signal()
        m.d.comb += [res_in_take.eq(res_on & ~res_out & core.m_axis.tvalid),
                     b_wr.addr.eq(res_in), b_wr.data.eq(core.m_axis.tdata), b_wr.en.eq(res_in_take)]
        with m.If(res_in_take):
            m.d.sync += res_in.eq(res_in + 1)
            with m.If(res_in == keep_rows * g_res - 1):
                m.d.sync += [res_in.eq(0), res_out.eq(1), res_left.eq(n_tok * g_res), res_j.eq(0), res_b.eq(0)]
        m.d.comb += [res_issue.eq(res_on & res_out & (res_left != 0)), res_en.eq(~res_v | self.m_axis.tready),
                     b_rd.addr.eq(map_reg[res_j] * g_res + res_b), b_rd.en.eq(res_en)]
        with m.If(res_en):
            m.d.sync += [res_v.eq(res_issue), res_last.eq((res_left == 1) & (res_nt == res_tiles - 1))]
            with m.If(res_issue):
                m.d.sync += res_left.eq(res_left - 1)
                with m.If(res_b == g_res - 1):
                    m.d.sync += [res_b.eq(0), res_j.eq(res_j + 1)]
                with m.Else():
                    m.d.sync += res_b.eq(res_b + 1)
        res_tile_end = res_on & res_out & (res_left == 0) & (~res_v | self.m_axis.tready)
        with m.If(res_tile_end):
            m.d.sync += [res_out.eq(0), res_nt.eq(res_nt + 1)]
            with m.If(res_nt == res_tiles - 1):
                m.d.sync += res_on.eq(0)
        restoring = res_on & res_out

        # --- streams ----------------------------------------------------------------------------
        m.d.comb += [
            core.s_axis.tdata.eq(Mux(red_on, o_data, self.s_axis.tdata)),
            core.s_axis.tlast.eq(Mux(red_on, 0, self.s_axis.tlast)),
            core.s_axis.tvalid.eq(Mux(red_on, o_valid, self.s_axis.tvalid)),
            self.s_axis.tready.eq(Mux(red_on, ~red_out, core.s_axis.tready)),
            self.m_axis.tvalid.eq(Mux(res_on, res_v, core.m_axis.tvalid)),
            self.m_axis.tdata.eq(Mux(res_on, b_rd.data, core.m_axis.tdata)),
            self.m_axis.tlast.eq(Mux(res_on, res_last, core.m_axis.tlast)),
            core.m_axis.tready.eq(Mux(res_on, ~res_out, self.m_axis.tready)),
        ]
        cap_take = cap_en & core.m_axis.tvalid & core.m_axis.tready & (cap_ptr < fdepth)
        m.d.comb += [f_wr.addr.eq(cap_ptr), f_wr.data.eq(core.m_axis.tdata), f_wr.en.eq(cap_take)]
        with m.If(cap_take):
            m.d.sync += cap_ptr.eq(cap_ptr + 1)
        m.d.comb += stalled.eq((self.s_axis.tready & ~self.s_axis.tvalid)
                               | (self.m_axis.tvalid & ~self.m_axis.tready))

        # --- controller ------------------------------------------------------------------------
        wait_ok = Signal()
        m.d.comb += wait_ok.eq(Mux(do_capture, ~self.feeder_busy, ~eng_busy))
        with m.FSM(name="ctrl"):
            with m.State("IDLE"):
                with m.If(fetch_command(m, rs, queue, cmd, hold=eng_busy)):
                    m.d.sync += [ctr["exposed"].eq(ctr["exposed"] + 1), late.bit_select(e_layer, 1).eq(1)]
            with m.State("DECODE"):
                m.d.sync += [ctr["commands"].eq(ctr["commands"] + 1), do_capture.eq(0), do_reduce.eq(0),
                             do_restore.eq(0), cap_en.eq(0)]
                with m.If(op == OPCODES["STEP"]):
                    m.d.sync += phase.eq(Mux(cmd.accumulate | (phase == p["rc_steps"]), 0, phase + 1))
                    m.next = "IDLE"
                with m.Elif(op == OPCODES["MATCH"]):
                    with m.If(rc):
                        m.d.sync += ctr["dropped"].eq(ctr["dropped"] + 1)
                        m.next = "IDLE"
                    with m.Elif(match_bad):
                        m.d.comb += [raise_error.eq(1), new_code.eq(ERRORS["SHAPE"])]
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "WAIT"
                with m.Elif(is_gemm_op):
                    cap = cmd.capture & ~rc
                    red = cmd.reduce & rc
                    res = cmd.restore & rc
                    with m.If((cap & ~vec_stream)
                              | (red & ((op != OPCODES["LOAD"]) | (cmd.mem != MEMORIES["A"])
                                        | (cmd.m != cmd.k * n_tok) | (cmd.k == 0) | ~layer_ok))
                              | (res & (~vec_stream | ~layer_ok))):
                        m.d.comb += [raise_error.eq(1), new_code.eq(ERRORS["SHAPE"])]
                        m.next = "IDLE"
                    with m.Elif(cap | red | res):
                        m.d.sync += [do_capture.eq(cap), do_reduce.eq(red), do_restore.eq(res)]
                        m.next = "WAIT"
                    with m.Else():
                        m.d.sync += fwd.eq(0)
                        m.next = "FORWARD"
                with m.Else():
                    m.d.comb += [raise_error.eq(1), new_code.eq(ERRORS["OPCODE"])]
                    m.next = "IDLE"
            with m.State("WAIT"):
                r_now = counts[cmd.layer]
                with m.If(~wait_ok):
                    m.d.sync += [ctr["exposed"].eq(ctr["exposed"] + 1), late.bit_select(e_layer, 1).eq(1)]
                with m.Elif(op == OPCODES["MATCH"]):
                    m.d.comb += launch.eq(1)
                    m.d.sync += [l_iter.eq(cmd.n), l_eps.eq(cmd.mult),
                                 l_seed.eq(cmd.addr0), ctr["matches"].eq(ctr["matches"] + 1)]
                    m.next = "IDLE"
                with m.Elif(do_capture):
                    m.d.sync += [fwd.eq(0), cap_en.eq(1)]
                    m.next = "FORWARD"
                with m.Elif(~valid.bit_select(cmd.layer, 1)):
                    m.d.comb += [raise_error.eq(1), new_code.eq(ERRORS["SEQUENCE"])]
                    m.next = "IDLE"
                with m.Elif(do_restore & (cmd.m != n_tok - r_now)):
                    m.d.comb += [raise_error.eq(1), new_code.eq(ERRORS["SHAPE"])]
                    m.next = "IDLE"
                with m.Elif(do_reduce & ((cmd.addr0 + cmd.k * (n_tok - r_now)) > p["a_depth"])):
                    m.d.comb += [raise_error.eq(1), new_code.eq(ERRORS["ADDRESS"])]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [r_cnt.eq(r_now), ml.eq(0)]
                    with m.If(do_reduce):
                        m.d.sync += cmd.m.eq(cmd.k * (n_tok - r_now))
                    m.next = "MAPLOAD"
            with m.State("MAPLOAD"):
                m.d.comb += [m_rd_ctrl_addr.eq(cmd.layer * n_tok + ml), m_rd_ctrl_en.eq(1)]
                m.d.sync += ml.eq(ml + 1)
                with m.If(ml != 0):
                    m.d.sync += map_reg[ml - 1].eq(m_rd.data)
                with m.If(ml == n_tok):
                    m.d.sync += fwd.eq(0)
                    m.next = "FORWARD"
            with m.State("FORWARD"):
                with m.Switch(fwd):
                    for w in range(COMMANDS.words):
                        with m.Case(w):
                            m.d.comb += [core.cmd_we.eq(1), core.cmd_word.eq(words[32 * w:32 * w + 32])]
                m.d.sync += fwd.eq(fwd + 1)
                with m.If(fwd == COMMANDS.words - 1):
                    m.next = "START"
            with m.State("START"):
                m.d.comb += core.start.eq(1)
                with m.If(do_reduce):
                    m.d.sync += [red_on.eq(1), red_out.eq(0), red_j.eq(0), red_b.eq(0), red_kt.eq(0), touched.eq(0),
                                 o_left.eq(keep_rows * g_red), o_sent.eq(0), o_ptr.eq(0)]
                with m.If(do_restore):
                    m.d.sync += [res_on.eq(1), res_out.eq(0), res_in.eq(0), res_nt.eq(0),
                                 res_tiles.eq(cmd.n >> exact_log2(p["cols"]))]
                m.next = "CORE"
            with m.State("CORE"):
                with m.If(core.done & ~red_on & ~res_on):
                    m.d.sync += [ctr["array_busy"].eq(ctr["array_busy"] + core.array_busy),
                                 ctr["gemm_cycles"].eq(core.gemm_cycles), cap_en.eq(0)]
                    with m.If(core.error):
                        m.d.comb += [raise_error.eq(1), new_code.eq(core.error_code)]
                    m.next = "IDLE"
                with m.Elif(core.done & core.error):
                    # A rejected restored VECTOR sends nothing: drop the restore.
                    m.d.sync += [red_on.eq(0), res_on.eq(0)]
        return m
