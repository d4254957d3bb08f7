"""RADiT accelerator: the GEMM core, the CCU + DTSM redundancy detector, a code
memory, an output-reuse memory and a block controller (docs/SPEC.md "RADiT
accelerator"; RADiT §III, Algorithms 1 and 2, Fig. 7)."""

from pathlib import Path

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..common.params import check_int
from ..common.axi import AXI4LiteRegisters, CommandQueue, accelerator_members, axis_signature
from ..common.run_status import engine_domain, fetch_command, run_status
from ..common.scratchpad import compact_memory_init
from ..radit.ccu_compress import CODE_BITS
from ..radit.radit_detector import RaditDetector
from ..registry import unit
from ..systolic.array import emit_grid
from .gemm_accelerator import CoreParameters
from .gemm_core import COUNTER_BITS, FIELD, GemmCore
from .radit_commands import COMMANDS, DTYPE_CODES, ERRORS, ID_MAGIC, MEMORIES, OPCODES, VERSION, regmap

__all__ = ["RaditAccelerator", "emit_radit_accelerator"]


def emit_radit_accelerator(component, out_dir, name):
    """The top as Amaranth Verilog plus the array's PE and grid modules."""
    from amaranth.back import verilog

    grid = emit_grid(component.core.array, out_dir, f"{name}_array")
    top = Path(out_dir) / f"{name}.v"
    top.write_text(compact_memory_init(verilog.convert(component, name=name, emit_src=False)))
    return [top] + grid


@unit("radit_accelerator", golden="golden.radit_accel.run", testbench="sim.accel.tb_radit_accelerator",
      emit=emit_radit_accelerator, synth={"flatten": False}, sim={"public": "top"})
class RaditAccelerator(CoreParameters, wiring.Component):
    """RADiT accelerator: skip-and-reuse of whole DNN operation blocks on the GEMM core.

    Per block the host queues ``BLOCK_BEGIN`` (the block's FP16 input follows
    on ``s_axis``: compressed to 4-bit codes, compared with the codes of the
    block's previous timestep in the code memory, new codes written back, Δ
    to the DTSM), then the block's GEMM program (LOAD / STORE / GEMM /
    VECTOR, run on the core) and ``BLOCK_END``. On a skip the program's
    commands are dropped (no load, no GEMM) and ``BLOCK_END`` streams the
    block's stored output from the reuse memory; on compute the ``m_axis``
    beats of the STORE / VECTOR commands marked ``output`` are also written
    to the reuse memory (intermediate results the host needs are not).

    Parameters
    ----------
    rows, cols, a_depth, w_depth, acc_depth, queue_depth, stream_bytes
        The GEMM core's (see ``gemm_accelerator``; INT8 datapath); ``stream_bytes``
        >= 2 (an input beat carries ``stream_bytes / 2`` FP16 values).
    blocks : int
        DNN operation blocks the DTSM keeps state for (default 56).
    timesteps : int
        Largest t of the α table (default 250).
    code_depth : int
        Code memory rows, one input beat's codes (``2 * stream_bytes`` bits) each (default 4096).
    reuse_depth : int
        Reuse memory rows, one output beat plus its ``tlast`` each (default 4096).
    alpha_frac : int
        Fractional bits of α (default 15).

    Members
    -------
    s_axil : ``In(axi_lite_signature(12))``
        Registers (``REGMAP``, docs/SPEC.md "RADiT accelerator"): the GEMM
        accelerator's ID .. COMMANDS, then RADIT, TIMESTEPS, CODE_DEPTH,
        REUSE_DEPTH (ro parameters), ALPHA (wo), DECISION, DELTA, THETA (ro,
        the last decision), BLOCKS_DONE, BLOCKS_SKIPPED, DROPPED,
        A_ROWS_SKIPPED, W_ROWS_SKIPPED (ro counters).
    s_axis : ``In(axis_signature(stream_bytes))``
        BLOCK_BEGIN input (FP16, lane 0 in the LSBs) and LOAD data.
    m_axis : ``Out(axis_signature(stream_bytes))``
        STORE / VECTOR results of computed blocks, stored outputs of skipped ones.
    irq : ``Out(1)``
        High while STATUS.done is set.
    """

    def __init__(self, *, rows=16, cols=16, a_depth=1024, w_depth=1024, acc_depth=1024, queue_depth=16,
                 stream_bytes=16, blocks=56, timesteps=250, code_depth=4096, reuse_depth=4096,
                 alpha_frac=15):
        core = dict(rows=rows, cols=cols, a_depth=a_depth, w_depth=w_depth, acc_depth=acc_depth,
                    queue_depth=queue_depth, stream_bytes=stream_bytes)
        params, _ = self.check_core(**core)
        if params["stream_bytes"] < 2:
            raise ValueError(f"stream_bytes ({stream_bytes}) must be at least 2 (one FP16 value per beat)")
        params["blocks"] = check_int("blocks", blocks, maximum=1 << FIELD)
        params["timesteps"] = check_int("timesteps", timesteps, maximum=(1 << FIELD) - 1)
        params["code_depth"] = check_int("code_depth", code_depth, minimum=2, maximum=1 << FIELD)
        params["reuse_depth"] = check_int("reuse_depth", reuse_depth, minimum=2, maximum=1 << FIELD)
        params["alpha_frac"] = check_int("alpha_frac", alpha_frac, minimum=0, maximum=15)
        self._params = params
        self._core = None
        self._detector = None
        self.REGMAP = regmap(**params, dtype=self.dtype)
        self.COMMANDS = COMMANDS
        super().__init__(accelerator_members(self.REGMAP, params["stream_bytes"]))

    @property
    def dtype(self):
        """The GEMM core's datapath: INT8 (a ``dtype`` parameter follows the core's)."""
        return "int8"

    @property
    def blocks(self):
        return self._params["blocks"]

    @property
    def timesteps(self):
        return self._params["timesteps"]

    @property
    def code_depth(self):
        return self._params["code_depth"]

    @property
    def reuse_depth(self):
        return self._params["reuse_depth"]

    @property
    def alpha_frac(self):
        return self._params["alpha_frac"]

    @property
    def lanes(self):
        """FP16 values per input beat."""
        return self._params["stream_bytes"] // 2

    @property
    def core(self):
        if self._core is None:
            p = self._params
            self._core = GemmCore(**{k: p[k] for k in ("rows", "cols", "a_depth", "w_depth", "acc_depth",
                                                       "queue_depth", "stream_bytes")})
        return self._core

    @property
    def detector(self):
        if self._detector is None:
            p = self._params
            # A block's input is at most the code memory: that bounds Δ.
            self._detector = RaditDetector(lanes=self.lanes, max_elements=p["code_depth"] * self.lanes,
                                           blocks=p["blocks"], timesteps=p["timesteps"],
                                           alpha_frac=p["alpha_frac"])
        return self._detector

    def elaborate(self, platform):
        m = Module()
        p = self._params
        sb = p["stream_bytes"]
        core, det = self.core, self.detector
        top_dtype = self.dtype
        m.submodules.regs = regs = AXI4LiteRegisters(self.REGMAP)
        wiring.connect(m, wiring.flipped(self.s_axil), regs.s_axil)

        in_core, start = engine_domain(m, regs)
        m.submodules.top = top = in_core(_Controller(self, core, det))
        m.d.comb += [
            top.start.eq(start),
            top.no_skip.eq(regs.control.no_skip),
            top.cmd_we.eq(regs.cmd_wstb), top.cmd_word.eq(regs.cmd),
            top.alpha_we.eq(regs.alpha_wstb), top.alpha_t.eq(regs.alpha.t), top.alpha_value.eq(regs.alpha.value),
        ]
        wiring.connect(m, wiring.flipped(self.s_axis), top.s_axis)
        wiring.connect(m, top.m_axis, wiring.flipped(self.m_axis))
        m.d.comb += [
            regs.id.eq(ID_MAGIC), regs.version.eq(VERSION),
            regs.array.rows.eq(p["rows"]), regs.array.cols.eq(p["cols"]),
            regs.a_depth.eq(p["a_depth"]), regs.w_depth.eq(p["w_depth"]), regs.acc_depth.eq(p["acc_depth"]),
            regs.config.stream_bytes.eq(sb), regs.config.queue_depth.eq(p["queue_depth"]),
            regs.config.cmd_words.eq(COMMANDS.words), regs.datapath.dtype.eq(DTYPE_CODES[top_dtype]),
            regs.radit.blocks.eq(p["blocks"]), regs.radit.alpha_frac.eq(p["alpha_frac"]),
            regs.timesteps.eq(p["timesteps"]), regs.code_depth.eq(p["code_depth"]),
            regs.reuse_depth.eq(p["reuse_depth"]),
            regs.status.busy.eq(top.busy), regs.status.done.eq(top.done), regs.status.error.eq(top.error),
            regs.status.error_code.eq(top.error_code),
            regs.queue.fill.eq(top.fill), regs.queue.words.eq(top.words),
            regs.decision.block.eq(top.d_block), regs.decision.skip.eq(top.d_skip),
            regs.decision.theta_valid.eq(top.d_theta_valid), regs.decision.dtsm_skip.eq(top.d_dtsm_skip),
            regs.decision.valid.eq(top.d_valid), regs.delta.eq(top.d_delta), regs.theta.eq(top.d_theta),
            self.irq.eq(top.done),
        ]
        for name in ("cycles", "array_busy", "stall", "gemm_cycles", "commands", "blocks_done",
                     "blocks_skipped", "dropped", "a_rows_skipped", "w_rows_skipped"):
            m.d.comb += getattr(regs, name).eq(getattr(top, name))
        return m


class _Controller(wiring.Component):
    """Everything below the register block, in the soft-resettable domain."""

    COUNTERS = ("cycles", "array_busy", "stall", "gemm_cycles", "commands", "blocks_done", "blocks_skipped",
                "dropped", "a_rows_skipped", "w_rows_skipped")

    def __init__(self, top, core, det):
        self._top, self._gcore, self._det = top, core, det
        p = top._params
        sb = p["stream_bytes"]
        members = {
            "start": In(1), "no_skip": In(1), "cmd_we": In(1), "cmd_word": In(32),
            "alpha_we": In(1), "alpha_t": In(16), "alpha_value": In(16),
            "s_axis": In(axis_signature(sb)), "m_axis": Out(axis_signature(sb)),
            "busy": Out(1), "done": Out(1), "error": Out(1), "error_code": Out(4),
            "fill": Out(range(p["queue_depth"] + 1)), "words": Out(range(COMMANDS.words)),
            "d_block": Out(16), "d_skip": Out(1), "d_theta_valid": Out(1), "d_dtsm_skip": Out(1),
            "d_valid": Out(1), "d_delta": Out(32), "d_theta": Out(32),
        }
        members.update({name: Out(COUNTER_BITS) for name in self.COUNTERS})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        top, core, det = self._top, self._gcore, self._det
        p = top._params
        sb, lanes = p["stream_bytes"], top.lanes
        beat = 8 * sb
        m.submodules.core = core
        m.submodules.det = det
        m.submodules.queue = queue = CommandQueue(COMMANDS, depth=p["queue_depth"])
        m.submodules.codes = codes = Memory(shape=CODE_BITS * lanes, depth=p["code_depth"], init=[])
        m.submodules.reuse = reuse = Memory(shape=beat + 1, depth=p["reuse_depth"], init=[])
        c_rd, c_wr = codes.read_port(), codes.write_port()
        r_rd, r_wr = reuse.read_port(), reuse.write_port()

        m.d.comb += [queue.push.eq(self.cmd_we), queue.word.eq(self.cmd_word),
                     self.fill.eq(queue.level), self.words.eq(queue.pending)]
        m.d.comb += [det.alpha.en.eq(self.alpha_we), det.alpha.addr.eq(self.alpha_t),
                     det.alpha.data.eq(self.alpha_value)]

        # --- run status and counters ------------------------------------------------------
        rs = run_status(m, start=self.start, overflow=queue.overflow, overflow_code=ERRORS["QUEUE_FULL"],
                        counters=self.COUNTERS, kept=("gemm_cycles",), counter_bits=COUNTER_BITS)
        running, done, error, code = rs.running, rs.done, rs.error, rs.code
        raise_error, new_code, stalled, ctr = rs.raise_error, rs.new_code, rs.stalled, rs.ctr
        skip_en = Signal()
        m.d.comb += [self.busy.eq(running), self.done.eq(done), self.error.eq(error), self.error_code.eq(code)]
        for name, sig in ctr.items():
            m.d.comb += getattr(self, name).eq(sig)
        d_valid = Signal()
        m.d.comb += self.d_valid.eq(d_valid)
        with m.If(rs.starting):
            m.d.sync += [skip_en.eq(~self.no_skip), d_valid.eq(0)]

        # --- the current command and the open block -------------------------------------
        cmd = Signal(COMMANDS.layout())
        op = cmd.opcode
        words = Signal(COMMANDS.width)   # the command re-packed, for the core's queue
        m.d.comb += [words[f.lsb:f.lsb + f.width].eq(getattr(cmd, f.name)) for f in COMMANDS.fields]
        in_block = Signal()
        skip = Signal()
        b_block = Signal(FIELD)
        b_t = Signal(FIELD)
        b_first = Signal()
        b_out = Signal(FIELD)
        b_code = Signal(FIELD)
        b_reuse = Signal(FIELD)
        in_left = Signal(FIELD)          # input beats still to take
        rd_left = Signal(FIELD)          # previous-code rows still to read
        rd_next = Signal(FIELD)
        pv = Signal()                    # the code read port holds a row for the detector
        wr_ptr = Signal(FIELD)
        out_idx = Signal(FIELD + 1)      # output beats captured of a computed block
        rp_left = Signal(FIELD + 1)      # reuse rows still to read on a replay
        rp_next = Signal(FIELD)
        rv = Signal()                    # the reuse read port holds a beat for m_axis
        fwd = Signal(range(COMMANDS.words + 1))
        keep = Signal()                  # the forwarded command's beats are the block's output

        begin_shape = (cmd.addr0 >= p["blocks"]) | (cmd.addr1 > p["timesteps"]) | (cmd.m == 0) | (cmd.n == 0)
        begin_addr = ((cmd.addr2 + cmd.m) > p["code_depth"]) | ((cmd.addr3 + cmd.n) > p["reuse_depth"])
        is_gemm_op = (op == OPCODES["LOAD"]) | (op == OPCODES["STORE"]) | (op == OPCODES["GEMM"]) | \
                     (op == OPCODES["VECTOR"])

        # Detector input: the block's beats from s_axis, `last` on the final one.
        detecting = Signal()
        m.d.comb += [
            det.i.payload.data.as_value().eq(self.s_axis.tdata),
            det.i.payload.last.eq(in_left == 1),
            det.i.payload.first.eq(b_first),
            det.i.payload.block.eq(b_block),
            det.i.payload.t.eq(b_t),
            det.i.valid.eq(detecting & self.s_axis.tvalid),
            det.prev.valid.eq(pv), det.prev.payload.as_value().eq(c_rd.data),
            det.codes.ready.eq(1),
            c_wr.addr.eq(wr_ptr), c_wr.data.eq(det.codes.payload.as_value()), c_wr.en.eq(det.codes.valid),
        ]
        with m.If(det.codes.valid):
            m.d.sync += wr_ptr.eq(wr_ptr + 1)
        # The code read port is the stage register of the previous-code stream.
        take_prev = det.prev.valid & det.prev.ready
        m.d.comb += [c_rd.addr.eq(rd_next), c_rd.en.eq(take_prev)]
        with m.If(take_prev):
            m.d.sync += [pv.eq(rd_left != 0), rd_next.eq(rd_next + 1), rd_left.eq(rd_left - 1)]

        # Core: command words from the controller, s_axis while not detecting.
        m.d.comb += [
            core.s_axis.tdata.eq(self.s_axis.tdata), core.s_axis.tlast.eq(self.s_axis.tlast),
            core.s_axis.tvalid.eq(self.s_axis.tvalid & ~detecting),
            self.s_axis.tready.eq(Mux(detecting, det.i.ready, core.s_axis.tready)),
        ]
        replaying = Signal()
        m.d.comb += [
            self.m_axis.tvalid.eq(Mux(replaying, rv, core.m_axis.tvalid)),
            self.m_axis.tdata.eq(Mux(replaying, r_rd.data[:beat], core.m_axis.tdata)),
            self.m_axis.tlast.eq(Mux(replaying, r_rd.data[beat], core.m_axis.tlast)),
            core.m_axis.tready.eq(self.m_axis.tready & ~replaying),
        ]
        # Every result beat of a computed block also goes to its reuse region.
        capture = in_block & ~skip & keep & core.m_axis.tvalid & core.m_axis.tready & (out_idx < b_out)
        m.d.comb += [r_wr.addr.eq(b_reuse + out_idx), r_wr.data.eq(Cat(core.m_axis.tdata, core.m_axis.tlast)),
                     r_wr.en.eq(capture)]
        with m.If(capture):
            m.d.sync += out_idx.eq(out_idx + 1)
        m.d.comb += stalled.eq((detecting & ~self.s_axis.tvalid)
                               | (core.s_axis.tready & ~self.s_axis.tvalid)
                               | (self.m_axis.tvalid & ~self.m_axis.tready))

        take_replay = ~rv | self.m_axis.tready
        m.d.comb += [r_rd.addr.eq(rp_next), r_rd.en.eq(replaying & take_replay)]

        with m.FSM(name="ctrl"):
            with m.State("IDLE"):
                fetch_command(m, rs, queue, cmd)
            with m.State("DECODE"):
                m.d.sync += ctr["commands"].eq(ctr["commands"] + 1)
                with m.If(op == OPCODES["BLOCK_BEGIN"]):
                    with m.If(in_block):
                        m.d.comb += [raise_error.eq(1), new_code.eq(ERRORS["SEQUENCE"])]
                        m.next = "IDLE"
                    with m.Elif(begin_shape):
                        m.d.comb += [raise_error.eq(1), new_code.eq(ERRORS["SHAPE"])]
                        m.next = "IDLE"
                    with m.Elif(begin_addr):
                        m.d.comb += [raise_error.eq(1), new_code.eq(ERRORS["ADDRESS"])]
                        m.next = "IDLE"
                    with m.Else():
                        # The first previous-code row is read now, so the detector has it on entry.
                        m.d.comb += [c_rd.addr.eq(cmd.addr2), c_rd.en.eq(1)]
                        m.d.sync += [b_block.eq(cmd.addr0), b_t.eq(cmd.addr1), b_first.eq(cmd.accumulate),
                                     b_out.eq(cmd.n), b_code.eq(cmd.addr2), b_reuse.eq(cmd.addr3),
                                     in_left.eq(cmd.m), rd_left.eq(cmd.m - 1), rd_next.eq(cmd.addr2 + 1),
                                     pv.eq(~cmd.accumulate), wr_ptr.eq(cmd.addr2), out_idx.eq(0),
                                     d_valid.eq(0)]
                        m.next = "DETECT"
                with m.Elif(op == OPCODES["BLOCK_END"]):
                    with m.If(~in_block):
                        m.d.comb += [raise_error.eq(1), new_code.eq(ERRORS["SEQUENCE"])]
                        m.next = "IDLE"
                    with m.Elif(skip):
                        m.d.comb += [r_rd.addr.eq(b_reuse), r_rd.en.eq(1)]
                        m.d.sync += [rv.eq(1), rp_left.eq(b_out - 1), rp_next.eq(b_reuse + 1)]
                        m.next = "REPLAY"
                    with m.Else():
                        m.d.sync += [in_block.eq(0), ctr["blocks_done"].eq(ctr["blocks_done"] + 1)]
                        m.next = "IDLE"
                with m.Elif(is_gemm_op):
                    with m.If(~in_block):
                        m.d.comb += [raise_error.eq(1), new_code.eq(ERRORS["SEQUENCE"])]
                        m.next = "IDLE"
                    with m.Elif(skip):
                        m.d.sync += ctr["dropped"].eq(ctr["dropped"] + 1)
                        with m.If(op == OPCODES["LOAD"]):
                            with m.If(cmd.mem == MEMORIES["A"]):
                                m.d.sync += ctr["a_rows_skipped"].eq(ctr["a_rows_skipped"] + cmd.m)
                            with m.If(cmd.mem == MEMORIES["W"]):
                                m.d.sync += ctr["w_rows_skipped"].eq(ctr["w_rows_skipped"] + cmd.m)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [fwd.eq(0), keep.eq(cmd.output)]
                        m.next = "FORWARD"
                with m.Else():
                    m.d.comb += [raise_error.eq(1), new_code.eq(ERRORS["OPCODE"])]
                    m.next = "IDLE"
            with m.State("DETECT"):
                m.d.comb += detecting.eq(1)
                with m.If(det.i.valid & det.i.ready):
                    m.d.sync += in_left.eq(in_left - 1)
                    with m.If(in_left == 1):
                        m.next = "DECIDE"
            with m.State("DECIDE"):
                m.d.comb += det.o.ready.eq(1)
                with m.If(det.o.valid):
                    taken = det.o.payload.skip & skip_en
                    m.d.sync += [skip.eq(taken), in_block.eq(1), d_valid.eq(1), self.d_block.eq(b_block),
                                 self.d_skip.eq(taken), self.d_dtsm_skip.eq(det.o.payload.skip),
                                 self.d_theta_valid.eq(det.o.payload.theta_valid),
                                 self.d_delta.eq(det.o.payload.delta), self.d_theta.eq(det.o.payload.theta)]
                    with m.If(taken):
                        m.d.sync += ctr["blocks_skipped"].eq(ctr["blocks_skipped"] + 1)
                    m.next = "IDLE"
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
                m.next = "CORE"
            with m.State("CORE"):
                with m.If(core.done):
                    m.d.sync += [ctr["array_busy"].eq(ctr["array_busy"] + core.array_busy),
                                 ctr["gemm_cycles"].eq(core.gemm_cycles)]
                    with m.If(core.error):
                        m.d.comb += [raise_error.eq(1), new_code.eq(core.error_code)]
                    m.next = "IDLE"
            with m.State("REPLAY"):
                m.d.comb += replaying.eq(1)
                with m.If(take_replay):
                    with m.If(rp_left != 0):
                        m.d.sync += [rv.eq(1), rp_left.eq(rp_left - 1), rp_next.eq(rp_next + 1)]
                    with m.Else():
                        m.d.sync += rv.eq(0)
                        with m.If(~rv):
                            m.d.sync += [in_block.eq(0), ctr["blocks_done"].eq(ctr["blocks_done"] + 1)]
                            m.next = "IDLE"
        return m
