"""Standalone GEMM accelerator: systolic array, scratchpads, accumulator and
vector unit run from a command queue behind AXI4-Lite and AXI4-Stream
(docs/SPEC.md "GEMM core"); the shell the RADiT, Ditto and ORBIS tops build on."""

from pathlib import Path

from amaranth.hdl import Module
from amaranth.lib import wiring

from ..common.run_status import engine_domain
from ..common.scratchpad import compact_memory_init
from ..common.axi import AXI4LiteRegisters, accelerator_members
from ..registry import unit
from ..systolic.array import emit_grid
from .gemm_commands import DTYPE_CODES, ID_MAGIC, VERSION, regmap
from .gemm_core import GemmCore

__all__ = ["CoreParameters", "GemmAccelerator", "emit_gemm_accelerator"]


def emit_gemm_accelerator(component, out_dir, name):
    """The top as Amaranth Verilog plus the array's PE and grid modules
    (:func:`hdl.systolic.array.emit_grid`), which the top places by name."""
    from amaranth.back import verilog

    grid = emit_grid(component.core.array, out_dir, f"{name}_array")
    top = Path(out_dir) / f"{name}.v"
    top.write_text(compact_memory_init(verilog.convert(component, name=name, emit_src=False)))
    return [top] + grid


class CoreParameters:
    """The GEMM core's parameters as read-only properties of a top that keeps
    them in ``self._params`` (every accelerator top built on the core),
    ``dtype`` included; a top whose core is INT8 only overrides ``dtype``
    (``radit_accelerator``)."""

    @staticmethod
    def check_core(**core):
        """``core`` checked by the GEMM core itself, so a top and its core cannot
        disagree; returns the values as plain ints and the (unused) probe core."""
        probe = GemmCore(**core)
        probe._MustUse__silence = probe.array._MustUse__silence = True
        return {name: getattr(probe, name) for name in core}, probe

    @property
    def rows(self):
        return self._params["rows"]

    @property
    def cols(self):
        return self._params["cols"]

    @property
    def a_depth(self):
        return self._params["a_depth"]

    @property
    def w_depth(self):
        return self._params["w_depth"]

    @property
    def acc_depth(self):
        return self._params["acc_depth"]

    @property
    def queue_depth(self):
        return self._params["queue_depth"]

    @property
    def stream_bytes(self):
        return self._params["stream_bytes"]

    @property
    def dtype(self):
        """The core's datapath type: ``"int8"`` or ``"fp16"``."""
        return self._params["dtype"]


@unit("gemm_accelerator", golden="golden.accel.run", testbench="sim.accel.tb_gemm_accelerator",
      emit=emit_gemm_accelerator, synth={"flatten": False}, sim={"public": "top"})
class GemmAccelerator(CoreParameters, wiring.Component):
    """INT8 (or FP16) GEMM accelerator: commands from a queue move data between
    AXI4-Stream and scratchpads, run tiled products on the systolic array and
    requantize (FP16: convert to binary16).

    Parameters
    ----------
    rows, cols : int
        Systolic array size, powers of two (default 16 x 16; tests use 4 x 4).
    a_depth : int
        Input scratchpad rows, ``rows`` INT8 each (default 1024).
    w_depth : int
        Weight scratchpad rows, ``cols`` INT8 each (default 1024).
    acc_depth : int
        Accumulator rows, ``cols`` INT32 each (default 1024).
    queue_depth : int
        Commands the queue holds (default 16).
    stream_bytes : int
        AXI4-Stream ``tdata`` bytes, a power of two dividing ``rows`` and ``cols`` (default 16).
    dtype : str
        ``"int8"`` (default) or ``"fp16"``: binary16 A/W lanes, binary32 ACC
        lanes, FP16 array, binary32 accumulation, FP16 vector unit; the
        commands are ``COMMANDS_FP16`` (docs/SPEC.md "GEMM core", "FP16 datapath").

    Members
    -------
    s_axil : ``In(axi_lite_signature(12))``
        Registers (``REGMAP``): ID, VERSION, ARRAY, A/W/ACC_DEPTH, CONFIG,
        DATAPATH (ro parameters); CONTROL (wo: start, soft_reset); STATUS (ro: busy, done,
        error, error_code); CMD (wo: command word push); QUEUE (ro: fill,
        words); CYCLES, ARRAY_BUSY, STALL, GEMM_CYCLES, COMMANDS (ro counters).
    s_axis : ``In(axis_signature(stream_bytes))``
        LOAD data: one scratchpad row in ``row_bytes / stream_bytes`` beats,
        least significant bytes first; ``tlast`` is ignored.
    m_axis : ``Out(axis_signature(stream_bytes))``
        STORE / VECTOR results, same beat order; ``tlast`` on the command's last beat.
    irq : ``Out(1)``
        High while STATUS.done is set (the end of a run, with or without error).

    Commands (``COMMANDS``, six words): LOAD, STORE, GEMM, VECTOR; see
    docs/SPEC.md "GEMM core" for the layouts, tiling order, vector unit,
    error codes and the cycle schedule that :func:`golden.accel.cycles`
    models exactly. A soft reset clears the controller, queue, status and
    counters (not the memories); the AXI4-Lite block keeps running so the
    write that asked for it is answered.
    """

    def __init__(self, *, rows=16, cols=16, a_depth=1024, w_depth=1024, acc_depth=1024, queue_depth=16,
                 stream_bytes=16, dtype="int8"):
        params = dict(rows=rows, cols=cols, a_depth=a_depth, w_depth=w_depth, acc_depth=acc_depth,
                      queue_depth=queue_depth, stream_bytes=stream_bytes, dtype=dtype)
        params, probe = self.check_core(**params)
        self._params = params
        self._core = None
        self.REGMAP = regmap(**params)
        self.COMMANDS = probe.command_format
        super().__init__(accelerator_members(self.REGMAP, params["stream_bytes"]))

    @property
    def core(self):
        """The engine (made on first use, so a top built only to check its
        parameters leaves no unused elaboratable behind)."""
        if self._core is None:
            self._core = GemmCore(**self._params)
        return self._core

    def elaborate(self, platform):
        m = Module()
        core = self.core
        m.submodules.regs = regs = AXI4LiteRegisters(self.REGMAP)
        wiring.connect(m, wiring.flipped(self.s_axil), regs.s_axil)

        in_core, start = engine_domain(m, regs)
        m.submodules.core = in_core(core)
        wiring.connect(m, wiring.flipped(self.s_axis), core.s_axis)
        wiring.connect(m, core.m_axis, wiring.flipped(self.m_axis))

        m.d.comb += [
            core.start.eq(start),
            core.cmd_we.eq(regs.cmd_wstb), core.cmd_word.eq(regs.cmd),
            regs.id.eq(ID_MAGIC), regs.version.eq(VERSION),
            regs.array.rows.eq(core.rows), regs.array.cols.eq(core.cols),
            regs.a_depth.eq(core.a_depth), regs.w_depth.eq(core.w_depth), regs.acc_depth.eq(core.acc_depth),
            regs.config.stream_bytes.eq(core.stream_bytes), regs.config.queue_depth.eq(core.queue_depth),
            regs.config.cmd_words.eq(self.COMMANDS.words), regs.datapath.dtype.eq(DTYPE_CODES[self.dtype]),
            regs.status.busy.eq(core.busy), regs.status.done.eq(core.done), regs.status.error.eq(core.error),
            regs.status.error_code.eq(core.error_code),
            regs.queue.fill.eq(core.fill), regs.queue.words.eq(core.words),
            regs.cycles.eq(core.cycles), regs.array_busy.eq(core.array_busy), regs.stall.eq(core.stall),
            regs.gemm_cycles.eq(core.gemm_cycles), regs.commands.eq(core.commands),
            self.irq.eq(core.done),
        ]
        return m
