"""Ditto accelerator: encoding unit → compute units → vector-unit summation
and requantization, previous-input and previous-output buffers and the Defo
unit in the loop, behind the shell's host interface (docs/SPEC.md "Ditto
accelerator"; Ditto §IV, §V, Fig. 10-12)."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for, ceil_log2, exact_log2

from ..common.axi import AXI4LiteRegisters, CommandQueue, axi_lite_signature, axis_signature
from ..common.params import check_int
from ..common.run_status import engine_domain, fetch_command, run_status
from ..common.scratchpad import Accumulator, Scratchpad
from ..ditto.defo_unit import DefoOp, DefoUnit
from ..ditto.ditto_compute_unit import DittoComputeUnit
from ..ditto.ditto_encoder import DittoEncoder, Mode
from ..registry import unit
from .ditto_commands import COMMANDS, ERRORS, ID_MAGIC, MEMORIES, OPCODES, VERSION, regmap
from .gemm_core import COUNTER_BITS, FIELD
from .gemm_datapath import RowSerializer, VectorUnit

__all__ = ["DittoAccelerator"]

PARAMS = ("cus", "pes", "lanes", "a_depth", "w_depth", "o_depth", "p_depth", "max_k", "defo_entries",
          "queue_depth", "stream_bytes")


@unit("ditto_accelerator", golden="golden.ditto_accel.run", testbench="sim.accel.tb_ditto_accelerator",
      synth={"flatten": False}, sim={"public": "top"})
class DittoAccelerator(wiring.Component):
    """Ditto accelerator: difference processing of linear layers under Defo control, from a command queue.

    A ``LAYER`` command runs ``O = A·W`` for an (M x K) activation block and
    a (K x N) weight matrix, N in tiles of ``CUS * PES`` columns. Its Defo
    entry and step choose the execution: the first timestep (step 0) runs on
    activations, the second (step 1) on differences, later ones (step 2) as
    the Defo table decided from the two recorded cycle counts. Activations
    go through the encoding unit at full 8-bit width (two lanes an element,
    no zero skipping); differences are temporal (against the layer's
    previous input in the P buffer) or, with the command's ``spatial`` bit,
    Ditto+ row differences. The compute units' sums are added to the
    previous outputs in O (temporal: ``O := O + ΔA·W``), to the previous
    row's (spatial) or stored (activations); VECTOR requantizes O rows to
    INT8 on the stream. The cycles Defo records are ``max(compute, memory)``
    with the memory model of docs/SPEC.md "Ditto accelerator".

    Parameters
    ----------
    cus : int
        Compute units (default 4), 1..64.
    pes : int
        PEs per compute unit (default 16), 1..256; ``CUS * PES`` <= 1024
        output columns per pass.
    lanes : int
        INT8 elements per encoder input beat = bytes of an A / P row (default 8), 1..32.
    a_depth, p_depth : int
        Activation and previous-input buffer rows (default 1024 each).
    w_depth : int
        Weight rows per compute unit (default 1152), 2..65536.
    o_depth : int
        Output (previous-output) buffer rows of ``CUS * PES`` INT32 (default 1024).
    max_k : int
        Longest K (default 1152), a multiple of ``lanes``.
    defo_entries : int
        Defo table entries (default 512).
    queue_depth : int
        Commands the queue holds (default 16).
    stream_bytes : int
        AXI4-Stream bytes per beat (default 8), a power of two dividing
        ``lanes`` and ``CUS * PES``.

    Members
    -------
    s_axil : ``In(axi_lite_signature(...))``
        Registers (``REGMAP``, docs/SPEC.md "Ditto accelerator").
    s_axis : ``In(axis_signature(stream_bytes))``
        LOAD data, one row in ``row bytes / stream_bytes`` beats, least significant byte first.
    m_axis : ``Out(axis_signature(stream_bytes))``
        STORE and VECTOR rows; ``tlast`` on a command's last beat.
    irq : ``Out(1)``
        High while STATUS.done is set.
    """

    def __init__(self, *, cus=4, pes=16, lanes=8, a_depth=1024, w_depth=1152, o_depth=1024, p_depth=1024,
                 max_k=1152, defo_entries=512, queue_depth=16, stream_bytes=8):
        p = {}
        p["cus"] = check_int("cus", cus, maximum=64)
        p["pes"] = check_int("pes", pes, maximum=256)
        if p["cus"] * p["pes"] > 1024:
            raise ValueError(f"cus * pes ({p['cus'] * p['pes']}) must be at most 1024")
        p["lanes"] = check_int("lanes", lanes, maximum=32)
        for name, value in (("a_depth", a_depth), ("w_depth", w_depth), ("o_depth", o_depth),
                            ("p_depth", p_depth)):
            p[name] = check_int(name, value, minimum=2, maximum=1 << FIELD)
        p["max_k"] = check_int("max_k", max_k, minimum=p["lanes"], maximum=(1 << FIELD) - 1)
        if p["max_k"] % p["lanes"]:
            raise ValueError(f"max_k ({max_k}) must be a multiple of lanes ({lanes})")
        p["defo_entries"] = check_int("defo_entries", defo_entries, maximum=1 << FIELD)
        p["queue_depth"] = check_int("queue_depth", queue_depth, minimum=2, maximum=1024)
        p["stream_bytes"] = sb = check_int("stream_bytes", stream_bytes, maximum=256, power_of_two=True)
        if p["lanes"] % sb or (p["cus"] * p["pes"]) % sb:
            raise ValueError(f"stream_bytes ({sb}) must divide lanes ({p['lanes']}) and cus * pes "
                             f"({p['cus'] * p['pes']})")
        self._params = p
        self.REGMAP = regmap(**p)
        self.COMMANDS = COMMANDS
        super().__init__({
            "s_axil": In(axi_lite_signature(self.REGMAP.addr_width)),
            "s_axis": In(axis_signature(sb)),
            "m_axis": Out(axis_signature(sb)),
            "irq": Out(1),
        })

    @property
    def cus(self):
        return self._params["cus"]

    @property
    def pes(self):
        return self._params["pes"]

    @property
    def lanes(self):
        return self._params["lanes"]

    @property
    def a_depth(self):
        return self._params["a_depth"]

    @property
    def w_depth(self):
        return self._params["w_depth"]

    @property
    def o_depth(self):
        return self._params["o_depth"]

    @property
    def p_depth(self):
        return self._params["p_depth"]

    @property
    def max_k(self):
        return self._params["max_k"]

    @property
    def defo_entries(self):
        return self._params["defo_entries"]

    @property
    def queue_depth(self):
        return self._params["queue_depth"]

    @property
    def stream_bytes(self):
        return self._params["stream_bytes"]

    @property
    def cols(self):
        """Output columns per pass (``CUS * PES``)."""
        return self.cus * self.pes

    def elaborate(self, platform):
        m = Module()
        p = self._params
        m.submodules.regs = regs = AXI4LiteRegisters(self.REGMAP)
        wiring.connect(m, wiring.flipped(self.s_axil), regs.s_axil)
        # The engine runs in its own reset domain: a soft reset leaves the register block alone.
        in_core, start = engine_domain(m, regs)
        m.submodules.engine = eng = in_core(_Engine(self))
        wiring.connect(m, wiring.flipped(self.s_axis), eng.s_axis)
        wiring.connect(m, eng.m_axis, wiring.flipped(self.m_axis))
        m.d.comb += [
            eng.start.eq(start),
            eng.cmd_we.eq(regs.cmd_wstb), eng.cmd_word.eq(regs.cmd),
            eng.bw_log2.eq(regs.memory.bw_log2), eng.mem_en.eq(regs.memory.enable),
            regs.id.eq(ID_MAGIC), regs.version.eq(VERSION),
            regs.array.cus.eq(p["cus"]), regs.array.pes.eq(p["pes"]),
            regs.a_depth.eq(p["a_depth"]), regs.w_depth.eq(p["w_depth"]), regs.o_depth.eq(p["o_depth"]),
            regs.p_depth.eq(p["p_depth"]),
            regs.config.stream_bytes.eq(p["stream_bytes"]), regs.config.queue_depth.eq(p["queue_depth"]),
            regs.config.cmd_words.eq(COMMANDS.words),
            regs.ditto.lanes.eq(p["lanes"]), regs.ditto.max_k.eq(p["max_k"]),
            regs.defo_entries.eq(p["defo_entries"]),
            regs.status.busy.eq(eng.busy), regs.status.done.eq(eng.done), regs.status.error.eq(eng.error),
            regs.status.error_code.eq(eng.error_code),
            regs.queue.fill.eq(eng.fill), regs.queue.words.eq(eng.words),
            regs.decision.layer.eq(eng.d_layer), regs.decision.step.eq(eng.d_step),
            regs.decision.use_diff.eq(eng.d_use_diff), regs.decision.decision.eq(eng.d_decision),
            regs.decision.valid.eq(eng.d_valid),
            self.irq.eq(eng.done),
        ]
        for name in _Engine.COUNTERS + _Engine.LAST:
            m.d.comb += getattr(regs, name).eq(getattr(eng, name))
        return m


class _Engine(wiring.Component):
    """Queue, controller, memories, encoder, compute units, vector unit and
    Defo unit: everything below the register block, in the soft-reset domain."""

    COUNTERS = ("cycles", "busy_cycles", "stall", "commands", "layers")
    LAST = ("cycles_act", "cycles_diff", "layer_cycles", "compute_cycles", "memory_cycles", "zero", "low", "full")

    def __init__(self, top):
        self._top = top
        p = top._params
        sb = p["stream_bytes"]
        members = {
            "start": In(1), "cmd_we": In(1), "cmd_word": In(32), "bw_log2": In(4), "mem_en": In(1),
            "s_axis": In(axis_signature(sb)), "m_axis": Out(axis_signature(sb)),
            "busy": Out(1), "done": Out(1), "error": Out(1), "error_code": Out(4),
            "fill": Out(range(p["queue_depth"] + 1)), "words": Out(range(COMMANDS.words)),
            "d_layer": Out(16), "d_step": Out(2), "d_use_diff": Out(1), "d_decision": Out(1), "d_valid": Out(1),
        }
        members.update({name: Out(COUNTER_BITS) for name in self.COUNTERS + self.LAST})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        top = self._top
        p = top._params
        cus, pes, lanes, sb = p["cus"], p["pes"], p["lanes"], p["stream_bytes"]
        cols = cus * pes
        beat = 8 * sb
        log_lanes = exact_log2(lanes) if lanes & (lanes - 1) == 0 else None
        a_bits, o_bits, w_bits = 8 * lanes, 32 * cols, 8 * cols
        row_bits = max(a_bits, o_bits)

        # --- units and memories --------------------------------------------------------------
        m.submodules.queue = queue = CommandQueue(COMMANDS, depth=p["queue_depth"])
        m.submodules.spa = spa = Scratchpad(depth=p["a_depth"], width=a_bits)
        m.submodules.spp = spp = Scratchpad(depth=p["p_depth"], width=a_bits)
        m.submodules.out = acc = Accumulator(depth=p["o_depth"], lanes=cols)
        enc_queue = max(32, 1 << ceil_log2(2 * (lanes + 1)))
        enc_offset = 1 << ceil_log2(max(p["max_k"] // lanes, 1))
        m.submodules.enc = enc = DittoEncoder(in_lanes=lanes, max_row=p["max_k"], queue_depth=enc_queue,
                                              max_offset=enc_offset)
        units = [DittoComputeUnit(pes=pes, max_row=p["w_depth"]) for _ in range(cus)]
        for c, cu in enumerate(units):
            m.submodules[f"cu{c}"] = cu
        m.submodules.defo = defo = DefoUnit(entries=p["defo_entries"])
        m.submodules.vec = vec = VectorUnit(lanes=cols)
        m.submodules.ser = ser = RowSerializer(row_bits=row_bits, beat_bits=beat)

        m.d.comb += [queue.push.eq(self.cmd_we), queue.word.eq(self.cmd_word),
                     self.fill.eq(queue.level), self.words.eq(queue.pending)]

        # --- run status and counters --------------------------------------------------------
        rs = run_status(m, start=self.start, overflow=queue.overflow, overflow_code=ERRORS["QUEUE_FULL"],
                        counters=self.COUNTERS, counter_bits=COUNTER_BITS)
        running, done, error, code = rs.running, rs.done, rs.error, rs.code
        raise_error, new_code, stalled, ctr = rs.raise_error, rs.new_code, rs.stalled, rs.ctr
        m.d.comb += [self.busy.eq(running), self.done.eq(done), self.error.eq(error), self.error_code.eq(code)]
        last = {name: Signal(COUNTER_BITS, name=f"{name}_r") for name in self.LAST}
        for name, sig in {**ctr, **last}.items():
            m.d.comb += getattr(self, name).eq(sig)
        d_valid = Signal()
        m.d.comb += self.d_valid.eq(d_valid)
        with m.If(rs.starting):
            m.d.sync += d_valid.eq(0)

        # --- the current command ------------------------------------------------------------
        cmd = Signal(COMMANDS.layout())
        op = cmd.opcode
        kb = Signal(FIELD, name="k_beats")          # beats per activation row
        nt = Signal(FIELD, name="n_tiles")
        m.d.comb += [kb.eq(cmd.k >> log_lanes if log_lanes is not None else cmd.k // lanes),
                     nt.eq(cmd.n // cols)]
        m_kb = Signal(2 * FIELD, name="a_rows")
        nt_k = Signal(2 * FIELD, name="w_rows")
        m_nt = Signal(2 * FIELD, name="o_rows")
        m.d.comb += [m_kb.eq(cmd.m * kb), nt_k.eq(nt * cmd.k), m_nt.eq(cmd.m * nt)]
        depth = Signal(FIELD + 1, name="sel_depth")
        with m.Switch(cmd.mem):
            with m.Case(MEMORIES["A"]):
                m.d.comb += depth.eq(p["a_depth"])
            with m.Case(MEMORIES["W"]):
                m.d.comb += depth.eq(p["w_depth"])
            with m.Case(MEMORIES["O"]):
                m.d.comb += depth.eq(p["o_depth"])
            with m.Default():
                m.d.comb += depth.eq(p["p_depth"])
        bad_op, bad_shape, bad_addr = Signal(), Signal(), Signal()
        with m.Switch(op):
            with m.Case(OPCODES["LOAD"]):
                m.d.comb += [bad_shape.eq(cmd.m == 0), bad_addr.eq(cmd.addr0 + cmd.m > depth)]
            with m.Case(OPCODES["STORE"]):
                m.d.comb += [bad_shape.eq((cmd.m == 0) | (cmd.mem == MEMORIES["W"])),
                             bad_addr.eq(cmd.addr0 + cmd.m > depth)]
            with m.Case(OPCODES["VECTOR"]):
                m.d.comb += [bad_shape.eq(cmd.m == 0), bad_addr.eq(cmd.addr0 + cmd.m > p["o_depth"])]
            with m.Case(OPCODES["LAYER"]):
                m.d.comb += [
                    bad_shape.eq((cmd.m == 0) | (cmd.k == 0) | (cmd.k % lanes != 0) | (cmd.k > p["max_k"])
                                 | (cmd.n == 0) | (cmd.n % cols != 0) | (cmd.layer >= p["defo_entries"])
                                 | (cmd.step == 3)),
                    bad_addr.eq((cmd.addr0 + m_kb > p["a_depth"]) | (cmd.addr1 + nt_k > p["w_depth"])
                                | (cmd.addr2 + m_nt > p["o_depth"]) | (cmd.addr3 + m_kb > p["p_depth"])),
                ]
            with m.Case(OPCODES["TADD"]):
                m.d.comb += [
                    bad_shape.eq((cmd.m == 0) | (cmd.n == 0) | (cmd.m % cols != 0) | (cmd.n % cols != 0)),
                    bad_addr.eq((cmd.addr0 + (cmd.m // cols) * cmd.n > p["o_depth"])
                                | (cmd.addr2 + (cmd.n // cols) * cmd.m > p["o_depth"])),
                ]
            with m.Default():
                m.d.comb += bad_op.eq(1)
        m.d.comb += new_code.eq(Mux(bad_op, ERRORS["OPCODE"], Mux(bad_shape, ERRORS["SHAPE"], ERRORS["ADDRESS"])))

        # --- LOAD / STORE / VECTOR state -------------------------------------------------------
        glast = Signal(range(row_bits // beat), name="beats_m1")
        rows_left = Signal(FIELD + 1, name="rows_left")
        ptr = Signal(FIELD, name="ptr")
        lbuf = Signal(row_bits, name="load_buf")
        lidx = Signal(range(row_bits // beat), name="load_idx")
        lpend = Signal(name="load_pending")
        laddr = Signal(FIELD, name="load_addr")
        rvalid = Signal(name="read_valid")

        # --- LAYER state ---------------------------------------------------------------------
        use_diff = Signal(name="use_diff")
        spatial = Signal(name="spatial_layer")
        pwrite = Signal(name="prev_write")        # keep this step's inputs in P for the next one
        f_b = Signal(FIELD, name="f_beat")
        f_i = Signal(FIELD, name="f_row")
        f_t = Signal(FIELD, name="f_tile")
        fa = Signal(FIELD, name="f_a_addr")
        fp = Signal(FIELD, name="f_p_addr")
        f_more = Signal(name="f_more")
        fvalid = Signal(name="f_valid")
        st_last = Signal(name="st_last")
        st_layer_last = Signal(name="st_layer_last")
        st_pw = Signal(name="st_pwrite")
        st_paddr = Signal(FIELD, name="st_paddr")
        e_row = Signal(FIELD, name="e_row")
        w_base = Signal(FIELD + 1, name="w_base")
        o_ptr = Signal(FIELD, name="o_ptr")
        o_i = Signal(FIELD, name="o_row")
        rows_out = Signal(2 * FIELD, name="rows_out")
        lc = Signal(COUNTER_BITS, name="layer_count")
        memcyc = Signal(COUNTER_BITS + 8, name="mem_cycles")
        comp = Signal(COUNTER_BITS, name="compute_cycles_l")
        stats = {k: Signal(COUNTER_BITS, name=f"layer_{k}") for k in ("zero", "low", "full")}

        # Memory model (docs/SPEC.md): bytes the layer's mode moves, at 2^bw_log2 bytes a cycle.
        mk = cmd.m * cmd.k
        kn = cmd.k * cmd.n
        mn4 = (cmd.m * cmd.n) << 2
        ans_diff = defo.o.payload.use_diff
        temporal = ans_diff & ~cmd.spatial
        bytes_ = Signal(COUNTER_BITS + 6, name="mem_bytes")
        m.d.comb += bytes_.eq(mk + kn + mn4 + Mux(temporal, (mk << 1) + Mux(cmd.store, 0, mn4), 0))
        mem_now = Signal(COUNTER_BITS + 8, name="mem_cycles_now")
        m.d.comb += mem_now.eq(Mux(self.mem_en, (bytes_ + (Const(1, 16) << self.bw_log2) - 1) >> self.bw_log2, 0))

        # Encoder input: the A and P read ports are the stage register of the feeder.
        m.d.comb += [
            enc.i.valid.eq(fvalid),
            enc.i.payload.cur.as_value().eq(spa.r[0].data),
            enc.i.payload.prev.as_value().eq(spp.r[0].data),
            enc.i.payload.mode.eq(Mux(use_diff, Mux(spatial, Mode.SPATIAL, Mode.TEMPORAL), Mode.FULL)),
            enc.i.payload.last.eq(st_last),
            enc.i.payload.layer_last.eq(st_layer_last),
            enc.spatial_offset.eq(kb),
            enc.stats.ready.eq(1),
        ]
        enc_take = enc.i.valid & enc.i.ready
        # Encoder -> compute units: one lane stream, weight index offset to the tile's rows.
        ready_all = Signal(name="cu_ready")
        m.d.comb += ready_all.eq(Cat(cu.i.ready for cu in units).all())
        for cu in units:
            m.d.comb += [cu.i.valid.eq(enc.o.valid), cu.i.payload.hi.eq(enc.o.payload.hi),
                         cu.i.payload.last.eq(enc.o.payload.last), cu.o.ready.eq(1)]
            for lane in range(4):
                src, dst = enc.o.payload.lanes[lane], cu.i.payload.lanes[lane]
                m.d.comb += [dst.nib.eq(src.nib), dst.ext.eq(src.ext), dst.valid.eq(src.valid),
                             dst.index.eq(w_base + src.index)]
        m.d.comb += enc.o.ready.eq(ready_all)
        enc_out = enc.o.valid & enc.o.ready
        with m.If(enc_out):
            m.d.sync += ctr["busy_cycles"].eq(ctr["busy_cycles"] + 1)
            with m.If(enc.o.payload.last):
                with m.If(e_row == cmd.m - 1):
                    m.d.sync += [e_row.eq(0), w_base.eq(w_base + cmd.k)]
                with m.Else():
                    m.d.sync += e_row.eq(e_row + 1)
        with m.If(enc.stats.valid):
            m.d.sync += [stats[k].eq(stats[k] + getattr(enc.stats.payload, k)) for k in stats]

        # Compute units -> summation (the vector unit's first stage) -> O.
        sums = Cat(cu.o.payload.as_value() for cu in units)
        run = Signal(o_bits, name="spatial_sum")
        run_next = Signal(o_bits, name="spatial_sum_next")
        m.d.comb += run_next.eq(Mux(o_i == 0, sums,
                                    Cat((run.word_select(j, 32) + sums.word_select(j, 32))[:32]
                                        for j in range(cols))))
        res_valid = units[0].o.valid
        # TADD: S += Rᵀ block by block through a C x C transpose buffer of C skewed banks: partial row
        # w's lane l sits in bank (l + w) mod C at address w, so a row write and a column read
        # each touch every bank once (docs/SPEC.md "Ditto accelerator", attention).
        t_active = Signal(name="tadd_active")
        t_phase = Signal(name="tadd_read_phase")
        t_n = Signal(range(cols + 1), name="tadd_issue")
        t_it = Signal(FIELD, name="tadd_row_tile")
        t_nt = Signal(FIELD, name="tadd_col_tile")
        t_pbase = Signal(FIELD + 1, name="tadd_pbase")       # partial row of the block's first row
        t_sbase = Signal(FIELD + 1, name="tadd_sbase")       # sum row of the block's first row
        c_valid = Signal(name="tadd_c_valid")
        c_phase = Signal(name="tadd_c_phase")
        c_k = Signal(range(cols), name="tadd_c_k")
        banks = []
        for bnk in range(cols):
            mem = Memory(shape=32, depth=max(cols, 2), init=[])
            m.submodules[f"tbuf{bnk}"] = mem
            banks.append((mem.write_port(), mem.read_port()))

        kbits = max(1, (cols - 1).bit_length())

        def mod_c(x):   # x in (-C, C) -> x mod C
            return Const(0, 1) if cols == 1 else Mux(x < 0, x + cols, x)[:kbits]

        def mod_up(x):  # x in [0, 2C) -> x mod C
            return Const(0, 1) if cols == 1 else Mux(x >= cols, x - cols, x)[:kbits]

        lanes_in = [acc.r[1].data.word_select(j, 32) for j in range(cols)]
        for bnk, (wp, rp) in enumerate(banks):
            m.d.comb += [wp.addr.eq(c_k), wp.en.eq(c_valid & ~c_phase),
                         wp.data.eq(Array(lanes_in)[mod_c(Const(bnk, 16).as_signed() - c_k)]),
                         rp.addr.eq(mod_c(Const(bnk, 16).as_signed() - t_n)),
                         rp.en.eq(t_active & t_phase & (t_n < cols))]
        outs = [rp.data for _, rp in banks]
        gathered = Signal(o_bits, name="tadd_column")
        m.d.comb += gathered.eq(Cat(Array(outs)[mod_up(c_k + j)] if cols > 1 else outs[0]
                                    for j in range(cols)))
        c_oaddr = Signal(FIELD + 1, name="tadd_c_oaddr")
        m.d.comb += c_oaddr.eq(t_sbase + c_k)
        t_update = c_valid & c_phase
        m.d.comb += [
            acc.acc.valid.eq(Mux(t_active, t_update, res_valid)),
            acc.acc.addr.eq(Mux(t_active, c_oaddr, o_ptr)),
            acc.acc.first.eq(Mux(t_active, 0, ~use_diff | spatial | cmd.store)),
            acc.acc.data.eq(Mux(t_active, gathered, Mux(use_diff & spatial, run_next, sums))),
        ]
        compute_done = Signal(name="compute_done")
        m.d.comb += compute_done.eq(res_valid & (rows_out == m_nt - 1))
        with m.If(res_valid):
            m.d.sync += [run.eq(run_next), o_ptr.eq(o_ptr + 1), rows_out.eq(rows_out + 1),
                         o_i.eq(Mux(o_i == cmd.m - 1, 0, o_i + 1))]

        # Serializer input and the stream output.
        ser_from_vec = Signal()
        ser_data = Signal(row_bits, name="ser_data")
        m.d.comb += [
            ser.beats_m1.eq(glast),
            ser.i.payload.data.eq(Mux(ser_from_vec, vec.o.payload.data.as_value(), ser_data)),
            self.m_axis.tvalid.eq(ser.o.valid), self.m_axis.tdata.eq(ser.o.payload.data),
            self.m_axis.tlast.eq(ser.o.payload.last), ser.o.ready.eq(self.m_axis.tready),
            vec.cfg.mult.eq(cmd.mult), vec.cfg.shift.eq(cmd.shift), vec.cfg.relu.eq(cmd.relu),
            vec.cfg.clip_lo.eq(-128), vec.cfg.clip_hi.eq(127),
            vec.i.payload.acc.as_value().eq(acc.r[1].data),
            # No bias or residual here (cfg.bias / cfg.residual stay 0): the inputs take any live value.
            vec.i.payload.bias.as_value().eq(acc.r[1].data), vec.i.payload.res.as_value().eq(lbuf[:w_bits]),
        ]
        out_end = self.m_axis.tvalid & self.m_axis.tready & self.m_axis.tlast

        def beats_m1(mem):
            return Mux(mem == MEMORIES["W"], w_bits // beat - 1,
                       Mux(mem == MEMORIES["O"], o_bits // beat - 1, a_bits // beat - 1))

        tick = Signal(name="defo_tick")
        m.d.comb += defo.tick.eq(tick)

        with m.FSM(name="ctrl"):
            with m.State("IDLE"):
                fetch_command(m, rs, queue, cmd)
            with m.State("DECODE"):
                m.d.sync += [ctr["commands"].eq(ctr["commands"] + 1), rvalid.eq(0), rows_left.eq(cmd.m),
                             ptr.eq(cmd.addr0), lidx.eq(0), lpend.eq(0), glast.eq(beats_m1(cmd.mem))]
                with m.If(bad_op | bad_shape | bad_addr):
                    m.d.comb += raise_error.eq(1)
                    m.next = "IDLE"
                with m.Elif(op == OPCODES["LOAD"]):
                    m.next = "LOAD"
                with m.Elif(op == OPCODES["STORE"]):
                    m.next = "STORE"
                with m.Elif(op == OPCODES["TADD"]):
                    m.d.sync += [t_phase.eq(0), t_n.eq(0), t_it.eq(0), t_nt.eq(0), t_pbase.eq(cmd.addr0),
                                 t_sbase.eq(cmd.addr2), c_valid.eq(0)]
                    m.next = "TADD"
                with m.Elif(op == OPCODES["VECTOR"]):
                    m.d.sync += glast.eq(w_bits // beat - 1)
                    m.next = "VECTOR"
                with m.Else():
                    m.next = "QUERY"

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
                    m.d.sync += [lbuf.word_select(lidx, beat).eq(self.s_axis.tdata),
                                 lidx.eq(Mux(row_end, 0, lidx + 1))]
                m.d.sync += lpend.eq(row_end)
                with m.If(row_end):
                    m.d.sync += [rows_left.eq(rows_left - 1), laddr.eq(ptr), ptr.eq(ptr + 1)]
                with m.If(lpend):
                    with m.Switch(cmd.mem):
                        with m.Case(MEMORIES["A"]):
                            m.d.comb += [spa.w.en.eq(1), spa.w.addr.eq(laddr), spa.w.data.eq(lbuf[:a_bits])]
                        with m.Case(MEMORIES["P"]):
                            m.d.comb += [spp.w.en.eq(1), spp.w.addr.eq(laddr), spp.w.data.eq(lbuf[:a_bits])]
                        with m.Case(MEMORIES["O"]):
                            m.d.comb += [acc.w.en.eq(1), acc.w.addr.eq(laddr), acc.w.data.eq(lbuf[:o_bits])]
                        with m.Default():
                            for c, cu in enumerate(units):
                                m.d.comb += [cu.w.valid.eq(1), cu.w.payload.addr.eq(laddr),
                                             cu.w.payload.row.as_value().eq(lbuf[8 * pes * c:8 * pes * (c + 1)])]
                    with m.If(rows_left == 0):
                        m.next = "IDLE"

            with m.State("STORE"):
                en = ~rvalid | ser.i.ready
                with m.Switch(cmd.mem):
                    with m.Case(MEMORIES["A"]):
                        m.d.comb += [spa.r[0].addr.eq(ptr), spa.r[0].en.eq(en), ser_data.eq(spa.r[0].data)]
                    with m.Case(MEMORIES["P"]):
                        m.d.comb += [spp.r[0].addr.eq(ptr), spp.r[0].en.eq(en), ser_data.eq(spp.r[0].data)]
                    with m.Default():
                        m.d.comb += [acc.r[1].addr.eq(ptr), acc.r[1].en.eq(en), ser_data.eq(acc.r[1].data)]
                m.d.comb += [ser.i.valid.eq(rvalid), ser.i.payload.last.eq(rows_left == 0),
                             stalled.eq(self.m_axis.tvalid & ~self.m_axis.tready)]
                with m.If(en):
                    m.d.sync += rvalid.eq(rows_left != 0)
                    with m.If(rows_left != 0):
                        m.d.sync += [rows_left.eq(rows_left - 1), ptr.eq(ptr + 1)]
                with m.If(out_end):
                    m.next = "IDLE"

            with m.State("VECTOR"):
                en = ~rvalid | vec.i.ready
                m.d.comb += [
                    acc.r[1].addr.eq(ptr), acc.r[1].en.eq(en),
                    vec.i.valid.eq(rvalid), vec.i.payload.last.eq(rows_left == 0),
                    ser_from_vec.eq(1), ser.i.valid.eq(vec.o.valid), ser.i.payload.last.eq(vec.o.payload.last),
                    vec.o.ready.eq(ser.i.ready),
                    stalled.eq(self.m_axis.tvalid & ~self.m_axis.tready),
                ]
                with m.If(en):
                    m.d.sync += rvalid.eq(rows_left != 0)
                    with m.If(rows_left != 0):
                        m.d.sync += [rows_left.eq(rows_left - 1), ptr.eq(ptr + 1)]
                with m.If(out_end):
                    m.next = "IDLE"

            with m.State("TADD"):
                # Per C x C block: C partial-row reads into the buffer (phase 0), then C column reads
                # added to the sum rows (phase 1); 2C + 2 cycles a block.
                issue = t_n < cols
                m.d.comb += [t_active.eq(1), acc.r[1].addr.eq(t_pbase + t_n), acc.r[1].en.eq(~t_phase & issue)]
                m.d.sync += [c_valid.eq(issue), c_phase.eq(t_phase), c_k.eq(t_n[:len(c_k)] if cols > 1 else 0)]
                with m.If(issue):
                    m.d.sync += t_n.eq(t_n + 1)
                block_end = c_valid & c_phase & (c_k == cols - 1)
                with m.If(c_valid & ~c_phase & (c_k == cols - 1)):
                    m.d.sync += [t_phase.eq(1), t_n.eq(0)]
                with m.If(block_end):
                    m.d.sync += [t_phase.eq(0), t_n.eq(0)]
                    with m.If(t_nt == cmd.n // cols - 1):
                        m.d.sync += t_nt.eq(0)
                        with m.If(t_it == cmd.m // cols - 1):
                            m.next = "IDLE"
                        with m.Else():
                            m.d.sync += [t_it.eq(t_it + 1), t_pbase.eq(t_pbase + cols),
                                         t_sbase.eq(cmd.addr2 + (t_it + 1) * cols)]
                    with m.Else():
                        m.d.sync += [t_nt.eq(t_nt + 1), t_pbase.eq(t_pbase + cols), t_sbase.eq(t_sbase + cmd.m)]
            with m.State("QUERY"):
                m.d.comb += [defo.i.valid.eq(1), defo.i.payload.op.eq(DefoOp.QUERY),
                             defo.i.payload.layer.eq(cmd.layer), defo.i.payload.step.eq(cmd.step)]
                m.next = "ANSWER"
            with m.State("ANSWER"):
                m.d.comb += defo.o.ready.eq(1)
                with m.If(defo.o.valid):
                    m.d.sync += [
                        use_diff.eq(ans_diff), spatial.eq(cmd.spatial),
                        pwrite.eq(~cmd.spatial & (ans_diff | (cmd.step == 0))),
                        memcyc.eq(mem_now),
                        f_b.eq(0), f_i.eq(0), f_t.eq(0), fa.eq(cmd.addr0), fp.eq(cmd.addr3), f_more.eq(1),
                        fvalid.eq(0), e_row.eq(0), w_base.eq(cmd.addr1), o_ptr.eq(cmd.addr2), o_i.eq(0),
                        rows_out.eq(0), lc.eq(0),
                    ] + [s.eq(0) for s in stats.values()]
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += tick.eq(1)
                m.d.sync += lc.eq(lc + 1)
                en = ~fvalid | enc.i.ready
                m.d.comb += [spa.r[0].addr.eq(fa), spa.r[0].en.eq(en), spp.r[0].addr.eq(fp), spp.r[0].en.eq(en)]
                row_end = f_b == kb - 1
                with m.If(en):
                    m.d.sync += [fvalid.eq(f_more), st_last.eq(row_end), st_layer_last.eq(row_end & (f_i == cmd.m - 1)),
                                 st_pw.eq(pwrite & (f_t == nt - 1)), st_paddr.eq(fp)]
                    with m.If(f_more):
                        with m.If(row_end & (f_i == cmd.m - 1)):
                            m.d.sync += [f_b.eq(0), f_i.eq(0), f_t.eq(f_t + 1), fa.eq(cmd.addr0), fp.eq(cmd.addr3)]
                            with m.If(f_t == nt - 1):
                                m.d.sync += f_more.eq(0)
                        with m.Else():
                            m.d.sync += [f_b.eq(Mux(row_end, 0, f_b + 1)), fa.eq(fa + 1), fp.eq(fp + 1)]
                            with m.If(row_end):
                                m.d.sync += f_i.eq(f_i + 1)
                with m.If(enc_take & st_pw):
                    m.d.comb += [spp.w.en.eq(1), spp.w.addr.eq(st_paddr), spp.w.data.eq(spa.r[0].data)]
                with m.If(compute_done):
                    m.d.sync += comp.eq(lc + 1)
                    m.next = "WAIT"
            with m.State("WAIT"):
                with m.If(lc < memcyc):
                    m.d.comb += tick.eq(1)
                    m.d.sync += lc.eq(lc + 1)
                with m.Else():
                    m.next = "RECORD"
            with m.State("RECORD"):
                m.d.comb += [defo.i.valid.eq(1), defo.i.payload.op.eq(DefoOp.RECORD),
                             defo.i.payload.layer.eq(cmd.layer), defo.i.payload.step.eq(cmd.step)]
                m.next = "RESULT"
            with m.State("RESULT"):
                m.d.comb += defo.o.ready.eq(1)
                with m.If(defo.o.valid):
                    o = defo.o.payload
                    m.d.sync += [
                        d_valid.eq(1), self.d_layer.eq(cmd.layer), self.d_step.eq(cmd.step),
                        self.d_use_diff.eq(use_diff), self.d_decision.eq(o.decision),
                        last["cycles_act"].eq(o.cycles_act), last["cycles_diff"].eq(o.cycles_diff),
                        last["layer_cycles"].eq(lc), last["compute_cycles"].eq(comp),
                        last["memory_cycles"].eq(memcyc),
                        ctr["layers"].eq(ctr["layers"] + 1),
                    ] + [last[k].eq(s) for k, s in stats.items()]
                    m.next = "IDLE"
        return m
