"""The GEMM engine: command queue, controller, scratchpads, accumulator,
systolic array and vector unit (docs/SPEC.md "GEMM core"). The host
interface around it is :class:`hdl.accel.gemm_accelerator.GemmAccelerator`."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ..common.axi import CommandQueue, axis_signature
from ..common.params import check_choice, check_int
from ..common.run_status import fetch_command, run_status
from ..common.scratchpad import Accumulator, Scratchpad
from ..systolic.array import SystolicArray
from .gemm_commands import ERRORS, MEMORIES, OPCODES, commands
from .gemm_datapath import DTYPES, RowSerializer, VectorUnit

__all__ = ["GemmCore"]

FIELD = 16  # command size and address fields are 16 bits
COUNTER_BITS = 32


class GemmCore(wiring.Component):
    """GEMM engine run from a command queue (see :mod:`hdl.accel.gemm_accelerator`).

    Parameters
    ----------
    rows, cols : int
        Systolic array size (powers of two).
    a_depth, w_depth, acc_depth : int
        Rows of the input scratchpad (ROWS INT8 each), weight scratchpad (COLS
        INT8 each) and accumulator (COLS INT32 each); 2 .. 65536.
    queue_depth : int
        Commands the queue holds.
    stream_bytes : int
        AXI4-Stream bytes per beat: a power of two dividing ROWS and COLS.
    dtype : str
        ``"int8"`` (default) or ``"fp16"``: binary16 A and W lanes, binary32
        ACC lanes, the FP16 array, binary32 accumulation and the FP16 vector
        unit (docs/SPEC.md "GEMM core", "FP16 datapath").

    Members
    -------
    cmd_word, cmd_we : ``In(32)``, ``In(1)``
        Command word push (word 0 first).
    start : ``In(1)``
        Pulse: clear done/error/counters and run until the queue is empty.
    busy, done, error, error_code, fill, words : ``Out``
        Status (see the register map).
    cycles, array_busy, stall, gemm_cycles, commands : ``Out(32)``
        Performance counters.
    s_axis : ``In(axis_signature(stream_bytes))``
    m_axis : ``Out(axis_signature(stream_bytes))``
    """

    def __init__(self, *, rows=16, cols=16, a_depth=1024, w_depth=1024, acc_depth=1024, queue_depth=16,
                 stream_bytes=16, dtype="int8"):
        self._rows = rows = check_int("rows", rows, maximum=256, power_of_two=True)
        self._cols = cols = check_int("cols", cols, maximum=256, power_of_two=True)
        self._a_depth = a_depth = check_int("a_depth", a_depth, minimum=2, maximum=1 << FIELD)
        self._w_depth = w_depth = check_int("w_depth", w_depth, minimum=2, maximum=1 << FIELD)
        self._acc_depth = acc_depth = check_int("acc_depth", acc_depth, minimum=2, maximum=1 << FIELD)
        self._queue_depth = queue_depth = check_int("queue_depth", queue_depth, minimum=2, maximum=1024)
        self._stream_bytes = stream_bytes = check_int("stream_bytes", stream_bytes, maximum=256,
                                                      power_of_two=True)
        if rows % stream_bytes or cols % stream_bytes:
            raise ValueError(f"stream_bytes ({stream_bytes}) must divide rows ({rows}) and cols ({cols})")
        self._dtype = check_choice("dtype", dtype, DTYPES)
        self._commands = commands(dtype)
        # Made here so that the emitter can write its grid module before conversion.
        self.array = SystolicArray(rows=rows, cols=cols, dtype=dtype)
        super().__init__({
            "cmd_word": In(32), "cmd_we": In(1), "start": In(1),
            "busy": Out(1), "done": Out(1), "error": Out(1), "error_code": Out(4),
            "fill": Out(range(queue_depth + 1)), "words": Out(range(self._commands.words)),
            "cycles": Out(COUNTER_BITS), "array_busy": Out(COUNTER_BITS), "stall": Out(COUNTER_BITS),
            "gemm_cycles": Out(COUNTER_BITS), "commands": Out(COUNTER_BITS),
            "s_axis": In(axis_signature(stream_bytes)),
            "m_axis": Out(axis_signature(stream_bytes)),
        })

    @property
    def rows(self):
        return self._rows

    @property
    def cols(self):
        return self._cols

    @property
    def a_depth(self):
        return self._a_depth

    @property
    def w_depth(self):
        return self._w_depth

    @property
    def acc_depth(self):
        return self._acc_depth

    @property
    def queue_depth(self):
        return self._queue_depth

    @property
    def stream_bytes(self):
        return self._stream_bytes

    @property
    def dtype(self):
        return self._dtype

    @property
    def command_format(self):
        """The command format the queue decodes (:func:`hdl.accel.gemm_commands.commands`)."""
        return self._commands

    def elaborate(self, platform):
        m = Module()
        rows, cols, sb = self._rows, self._cols, self._stream_bytes
        fp = self._dtype == "fp16"
        lb = 2 if fp else 1    # bytes per A / W lane (and per VECTOR result lane)
        a_bits, w_bits, acc_bits = 8 * lb * rows, 8 * lb * cols, 32 * cols
        beat = 8 * sb
        log_rows, log_cols = exact_log2(rows), exact_log2(cols)

        m.submodules.array = array = self.array
        m.submodules.spa = spa = Scratchpad(depth=self._a_depth, width=a_bits)
        m.submodules.spw = spw = Scratchpad(depth=self._w_depth, width=w_bits)
        m.submodules.acc = acc = Accumulator(depth=self._acc_depth, lanes=cols, arith="fp32" if fp else "int")
        m.submodules.vec = vec = VectorUnit(lanes=cols, dtype=self._dtype)
        m.submodules.ser = ser = RowSerializer(row_bits=acc_bits, beat_bits=beat)

        # --- command push: words assemble into commands in the queue ------------------
        m.submodules.queue = queue = CommandQueue(self._commands, depth=self._queue_depth)
        overflow = Signal(name="overflow")
        m.d.comb += [
            queue.push.eq(self.cmd_we), queue.word.eq(self.cmd_word),
            overflow.eq(queue.overflow),
            self.fill.eq(queue.level), self.words.eq(queue.pending),
        ]

        # --- run control, status, counters ----------------------------------------
        rs = run_status(m, start=self.start, overflow=overflow, overflow_code=ERRORS["QUEUE_FULL"],
                        counters=("cycles", "array_busy", "stall", "gemm_cycles", "commands"),
                        kept=("gemm_cycles",), counter_bits=COUNTER_BITS)
        running, done, error, code = rs.running, rs.done, rs.error, rs.code
        raise_error, new_code, stalled = rs.raise_error, rs.new_code, rs.stalled
        cycles, array_busy, stall = rs.ctr["cycles"], rs.ctr["array_busy"], rs.ctr["stall"]
        gemm_cycles, commands = rs.ctr["gemm_cycles"], rs.ctr["commands"]
        m.d.comb += [self.busy.eq(running), self.done.eq(done), self.error.eq(error),
                     self.error_code.eq(code)]
        m.d.comb += [self.cycles.eq(cycles), self.array_busy.eq(array_busy), self.stall.eq(stall),
                     self.gemm_cycles.eq(gemm_cycles), self.commands.eq(commands)]
        with m.If(running & array.a.valid & array.a.ready):
            m.d.sync += array_busy.eq(array_busy + 1)

        # --- the current command ----------------------------------------------------
        cmd = Signal(self._commands.layout(), name="cmd")
        op = cmd.opcode
        k_tiles = Signal(FIELD, name="k_tiles")
        n_tiles = Signal(FIELD, name="n_tiles")
        m.d.comb += [k_tiles.eq(cmd.k >> log_rows), n_tiles.eq(cmd.n >> log_cols)]
        mk = Signal(2 * FIELD, name="m_x_ktiles")
        mn = Signal(2 * FIELD, name="m_x_ntiles")
        kn = Signal(2 * FIELD + log_rows, name="weight_rows")
        m.d.comb += [mk.eq(cmd.m * k_tiles), mn.eq(cmd.m * n_tiles), kn.eq((k_tiles * n_tiles) << log_rows)]

        def fits(base, count, depth):
            return (base + count) <= depth

        depth_of = Signal(FIELD + 1, name="sel_depth")
        with m.Switch(cmd.mem):
            with m.Case(MEMORIES["A"]):
                m.d.comb += depth_of.eq(self._a_depth)
            with m.Case(MEMORIES["W"]):
                m.d.comb += depth_of.eq(self._w_depth)
            with m.Default():
                m.d.comb += depth_of.eq(self._acc_depth)
        bad_shape = Signal(name="bad_shape")
        bad_addr = Signal(name="bad_addr")
        bad_op = Signal(name="bad_op")
        k_ok = (cmd.k != 0) & ((cmd.k & (rows - 1)) == 0)
        n_ok = (cmd.n != 0) & ((cmd.n & (cols - 1)) == 0)
        with m.Switch(op):
            with m.Case(OPCODES["LOAD"]):
                m.d.comb += [bad_shape.eq((cmd.m == 0) | (cmd.mem == 3)),
                             bad_addr.eq(~fits(cmd.addr0, cmd.m, depth_of))]
            with m.Case(OPCODES["STORE"]):
                m.d.comb += [bad_shape.eq((cmd.m == 0) | (cmd.mem == MEMORIES["W"]) | (cmd.mem == 3)),
                             bad_addr.eq(~fits(cmd.addr0, cmd.m, depth_of))]
            with m.Case(OPCODES["GEMM"]):
                m.d.comb += [bad_shape.eq((cmd.m == 0) | ~k_ok | ~n_ok),
                             bad_addr.eq(~fits(cmd.addr0, mk, self._a_depth)
                                         | ~fits(cmd.addr1, kn, self._w_depth)
                                         | ~fits(cmd.addr2, mn, self._acc_depth))]
            with m.Case(OPCODES["VECTOR"]):
                to_a_bad = Const(int(rows != cols), 1)
                m.d.comb += [bad_shape.eq((cmd.m == 0) | ~n_ok | ((~cmd.to_stream | cmd.residual) & to_a_bad)),
                             bad_addr.eq(~fits(cmd.addr0, mn, self._acc_depth)
                                         | (cmd.bias & ~fits(cmd.addr2, n_tiles, self._acc_depth))
                                         | (cmd.residual & ~fits(cmd.addr3, mn, self._a_depth))
                                         | (~cmd.to_stream & ~fits(cmd.addr1, mn, self._a_depth)))]
            with m.Default():
                m.d.comb += bad_op.eq(1)
        m.d.comb += new_code.eq(Mux(bad_op, ERRORS["OPCODE"],
                                    Mux(bad_shape, ERRORS["SHAPE"], ERRORS["ADDRESS"])))

        # --- datapath state -------------------------------------------------------------
        glast = Signal(range(4 * cols // sb), name="beats_m1")   # beats per row - 1 of this command
        rows_left = Signal(2 * FIELD, name="rows_left")          # LOAD / STORE / VECTOR rows to issue
        ptr = Signal(FIELD, name="ptr")                          # LOAD write / STORE read / VECTOR acc read row
        # LOAD: beats assemble into a row; the row is written the cycle after its last beat.
        lbuf = Signal(acc_bits, name="load_buf")
        lidx = Signal(range(4 * cols // sb), name="load_idx")
        lpend = Signal(name="load_pending")
        laddr = Signal(FIELD, name="load_addr")
        # Linear readers (STORE, W feeder, VECTOR): the memory read port is the stage register.
        rvalid = Signal(name="read_valid")
        # GEMM activation feeder: nt (outer), kt, i (inner).
        a_i = Signal(FIELD, name="a_i")
        a_kt = Signal(FIELD, name="a_kt")
        a_nt = Signal(FIELD + 1, name="a_nt")
        a_base = Signal(FIELD, name="a_base")
        a_valid = Signal(name="a_valid")
        a_last = Signal(name="a_last")
        w_left = Signal(2 * FIELD + log_rows, name="w_left")
        w_ptr = Signal(FIELD, name="w_ptr")      # INT8: the row read; FP16: the tile's first row
        w_j = Signal(range(rows), name="w_j") if fp else None   # FP16: beat within the tile
        # GEMM result rows into the accumulator, same order.
        o_i = Signal(FIELD, name="o_i")
        o_kt = Signal(FIELD, name="o_kt")
        o_nt = Signal(FIELD + 1, name="o_nt")
        o_base = Signal(FIELD, name="o_base")
        o_prev = Signal(name="o_prev")
        # VECTOR: row counters and the bias / residual / destination pointers.
        v_i = Signal(FIELD, name="v_i")
        v_bias = Signal(FIELD, name="v_bias")
        v_res = Signal(FIELD, name="v_res")
        v_dst = Signal(FIELD, name="v_dst")

        with m.FSM(name="ctrl"):
            with m.State("IDLE"):
                fetch_command(m, rs, queue, cmd)
            with m.State("DECODE"):
                m.d.sync += [commands.eq(commands + 1), rvalid.eq(0)]
                with m.If(bad_op | bad_shape | bad_addr):
                    m.d.comb += raise_error.eq(1)
                    m.next = "IDLE"
                with m.Elif(op == OPCODES["LOAD"]):
                    m.d.sync += [rows_left.eq(cmd.m), ptr.eq(cmd.addr0), lidx.eq(0), lpend.eq(0),
                                 glast.eq(Mux(cmd.mem == MEMORIES["A"], lb * rows // sb - 1,
                                              Mux(cmd.mem == MEMORIES["W"], lb * cols // sb - 1,
                                                  4 * cols // sb - 1)))]
                    m.next = "LOAD"
                with m.Elif(op == OPCODES["STORE"]):
                    m.d.sync += [rows_left.eq(cmd.m), ptr.eq(cmd.addr0),
                                 glast.eq(Mux(cmd.mem == MEMORIES["A"], lb * rows // sb - 1, 4 * cols // sb - 1))]
                    m.next = "STORE"
                with m.Elif(op == OPCODES["GEMM"]):
                    m.d.sync += [a_i.eq(0), a_kt.eq(0), a_nt.eq(0), a_base.eq(cmd.addr0), a_valid.eq(0),
                                 w_left.eq(kn), w_ptr.eq(cmd.addr1),
                                 o_i.eq(0), o_kt.eq(0), o_nt.eq(0), o_base.eq(cmd.addr2),
                                 gemm_cycles.eq(0)]
                    if fp:
                        m.d.sync += w_j.eq(0)
                    m.next = "GEMM"
                with m.Else():
                    m.d.sync += [rows_left.eq(mn), ptr.eq(cmd.addr0), v_i.eq(0), v_bias.eq(cmd.addr2),
                                 v_res.eq(cmd.addr3), v_dst.eq(cmd.addr1), glast.eq(lb * cols // sb - 1)]
                    m.next = "VECTOR"

            with m.State("LOAD"):
                take = Signal(name="load_take")
                row_end = Signal(name="load_row_end")
                m.d.comb += [
                    self.s_axis.tready.eq(rows_left != 0),
                    take.eq(self.s_axis.tvalid & self.s_axis.tready),
                    row_end.eq(take & (lidx == glast)),
                    stalled.eq(self.s_axis.tready & ~self.s_axis.tvalid),
                ]
                with m.If(take):
                    m.d.sync += lbuf.word_select(lidx, beat).eq(self.s_axis.tdata)
                    m.d.sync += lidx.eq(Mux(row_end, 0, lidx + 1))
                m.d.sync += lpend.eq(row_end)
                with m.If(row_end):
                    m.d.sync += [rows_left.eq(rows_left - 1), laddr.eq(ptr), ptr.eq(ptr + 1)]
                with m.If(lpend):
                    with m.Switch(cmd.mem):
                        with m.Case(MEMORIES["A"]):
                            m.d.comb += [spa.w.en.eq(1), spa.w.addr.eq(laddr), spa.w.data.eq(lbuf)]
                        with m.Case(MEMORIES["W"]):
                            m.d.comb += [spw.w.en.eq(1), spw.w.addr.eq(laddr), spw.w.data.eq(lbuf)]
                        with m.Default():
                            m.d.comb += [acc.w.en.eq(1), acc.w.addr.eq(laddr), acc.w.data.eq(lbuf)]
                    with m.If(rows_left == 0):
                        m.next = "IDLE"

            with m.State("STORE"):
                en = Signal(name="store_en")
                m.d.comb += [
                    en.eq(~rvalid | ser.i.ready),
                    spa.r[0].addr.eq(ptr), spa.r[0].en.eq(en),
                    acc.r[0].addr.eq(ptr), acc.r[0].en.eq(en),
                    ser.i.valid.eq(rvalid),
                    ser.i.payload.data.eq(Mux(cmd.mem == MEMORIES["A"], spa.r[0].data, acc.r[0].data)),
                    ser.i.payload.last.eq(rows_left == 0),
                    stalled.eq(self.m_axis.tvalid & ~self.m_axis.tready),
                ]
                with m.If(en):
                    m.d.sync += rvalid.eq(rows_left != 0)
                    with m.If(rows_left != 0):
                        m.d.sync += [rows_left.eq(rows_left - 1), ptr.eq(ptr + 1)]
                with m.If(self.m_axis.tvalid & self.m_axis.tready & self.m_axis.tlast):
                    m.next = "IDLE"

            with m.State("GEMM"):
                m.d.sync += gemm_cycles.eq(gemm_cycles + 1)
                # Weight feeder: every tile's rows in order (N tiles outer, K tiles inner).
                w_en = Signal(name="w_en")
                m.d.comb += [
                    w_en.eq(~rvalid | array.w.ready),
                    spw.r[0].en.eq(w_en),
                    array.w.valid.eq(rvalid),
                    array.w.payload.eq(spw.r[0].data),
                ]
                if fp:
                    # FP16 tiles stream last row first (docs/SPEC.md "FP16"): beat j of
                    # the tile at w_ptr reads row w_ptr + ROWS-1-j; the layout stays.
                    m.d.comb += spw.r[0].addr.eq(w_ptr + (rows - 1) - w_j)
                    with m.If(w_en & (w_left != 0)):
                        m.d.sync += w_left.eq(w_left - 1)
                        with m.If(w_j == rows - 1):
                            m.d.sync += [w_j.eq(0), w_ptr.eq(w_ptr + rows)]
                        with m.Else():
                            m.d.sync += w_j.eq(w_j + 1)
                    with m.If(w_en):
                        m.d.sync += rvalid.eq(w_left != 0)
                else:
                    m.d.comb += spw.r[0].addr.eq(w_ptr)
                    with m.If(w_en):
                        m.d.sync += rvalid.eq(w_left != 0)
                        with m.If(w_left != 0):
                            m.d.sync += [w_left.eq(w_left - 1), w_ptr.eq(w_ptr + 1)]
                # Activation feeder: for each N tile, the K tiles' M rows again.
                a_en = Signal(name="a_en")
                a_issue = Signal(name="a_issue")
                m.d.comb += [
                    a_en.eq(~a_valid | array.a.ready),
                    a_issue.eq(a_nt != n_tiles),
                    spa.r[0].addr.eq(a_base + a_i), spa.r[0].en.eq(a_en),
                    array.a.valid.eq(a_valid),
                    array.a.payload.data.eq(spa.r[0].data),
                    array.a.payload.last.eq(a_last),
                ]
                with m.If(a_en):
                    m.d.sync += [a_valid.eq(a_issue), a_last.eq(a_i == cmd.m - 1)]
                    with m.If(a_issue):
                        with m.If(a_i == cmd.m - 1):
                            m.d.sync += a_i.eq(0)
                            with m.If(a_kt == k_tiles - 1):
                                m.d.sync += [a_kt.eq(0), a_base.eq(cmd.addr0), a_nt.eq(a_nt + 1)]
                            with m.Else():
                                m.d.sync += [a_kt.eq(a_kt + 1), a_base.eq(a_base + cmd.m)]
                        with m.Else():
                            m.d.sync += a_i.eq(a_i + 1)
                # Results: the first K tile of a block is stored, the others added.
                m.d.comb += [
                    array.o.ready.eq(1),
                    acc.acc.valid.eq(array.o.valid),
                    acc.acc.addr.eq(o_base + o_i),
                    acc.acc.first.eq((o_kt == 0) & ~cmd.accumulate),
                    acc.acc.data.eq(array.o.payload.data),
                ]
                m.d.sync += o_prev.eq(array.o.valid)
                with m.If(array.o.valid):
                    with m.If(o_i == cmd.m - 1):
                        m.d.sync += o_i.eq(0)
                        with m.If(o_kt == k_tiles - 1):
                            m.d.sync += [o_kt.eq(0), o_nt.eq(o_nt + 1), o_base.eq(o_base + cmd.m)]
                        with m.Else():
                            m.d.sync += o_kt.eq(o_kt + 1)
                    with m.Else():
                        m.d.sync += o_i.eq(o_i + 1)
                with m.If((o_nt == n_tiles) & ~o_prev):
                    m.next = "IDLE"

            with m.State("VECTOR"):
                en = Signal(name="vec_en")
                m.d.comb += [
                    en.eq(~rvalid | vec.i.ready),
                    acc.r[0].addr.eq(ptr), acc.r[0].en.eq(en),
                    acc.r[1].addr.eq(v_bias), acc.r[1].en.eq(en),
                    spa.r[0].addr.eq(v_res), spa.r[0].en.eq(en),
                    vec.i.valid.eq(rvalid),
                    vec.i.payload.acc.eq(acc.r[0].data),
                    vec.i.payload.bias.eq(acc.r[1].data),
                    vec.i.payload.res.eq(spa.r[0].data),
                    vec.i.payload.last.eq(rows_left == 0),
                ]
                with m.If(en):
                    m.d.sync += rvalid.eq(rows_left != 0)
                    with m.If(rows_left != 0):
                        m.d.sync += [rows_left.eq(rows_left - 1), ptr.eq(ptr + 1), v_res.eq(v_res + 1)]
                        with m.If(v_i == cmd.m - 1):
                            m.d.sync += [v_i.eq(0), v_bias.eq(v_bias + 1)]
                        with m.Else():
                            m.d.sync += v_i.eq(v_i + 1)
                with m.If(cmd.to_stream):
                    m.d.comb += [
                        ser.i.valid.eq(vec.o.valid),
                        ser.i.payload.data.eq(vec.o.payload.data),
                        ser.i.payload.last.eq(vec.o.payload.last),
                        vec.o.ready.eq(ser.i.ready),
                        stalled.eq(self.m_axis.tvalid & ~self.m_axis.tready),
                    ]
                    with m.If(self.m_axis.tvalid & self.m_axis.tready & self.m_axis.tlast):
                        m.next = "IDLE"
                with m.Else():
                    m.d.comb += [
                        vec.o.ready.eq(1),
                        spa.w.en.eq(vec.o.valid), spa.w.addr.eq(v_dst), spa.w.data.eq(vec.o.payload.data),
                    ]
                    with m.If(vec.o.valid):
                        m.d.sync += v_dst.eq(v_dst + 1)
                        with m.If(vec.o.payload.last):
                            m.next = "IDLE"

        m.d.comb += [vec.cfg.bias.eq(cmd.bias), vec.cfg.residual.eq(cmd.residual), vec.cfg.relu.eq(cmd.relu)]
        if fp:
            m.d.comb += vec.cfg.clip.eq(cmd.clip_fp16)
        else:
            m.d.comb += [vec.cfg.mult.eq(cmd.mult), vec.cfg.shift.eq(cmd.shift),
                         vec.cfg.clip_lo.eq(cmd.clip_lo), vec.cfg.clip_hi.eq(cmd.clip_hi)]
        m.d.comb += [
            ser.beats_m1.eq(glast),
            self.m_axis.tvalid.eq(ser.o.valid),
            self.m_axis.tdata.eq(ser.o.payload.data),
            self.m_axis.tlast.eq(ser.o.payload.last),
            ser.o.ready.eq(self.m_axis.tready),
        ]
        return m
