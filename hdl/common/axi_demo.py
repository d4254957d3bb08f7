"""A minimal top with the shell every accelerator top has: the host-interface
kit's demonstration and co-simulation target (``docs/SPEC.md``, "Accelerator
tops" / "Host interface")."""

from amaranth.hdl import Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..registry import unit
from .axi import (AXI4LiteRegisters, AXIStreamToStream, CommandQueue, StreamToAXIStream, axi_lite_signature,
                  axis_signature)
from .params import check_int
from .regmap import CommandFormat, Field, Register, RegisterMap

__all__ = ["AXIShellDemo", "DEMO_ID", "ERR_OPCODE", "ERR_OVERFLOW"]

DEMO_ID = 0xD1700DE0
ERR_OPCODE = 1
ERR_OVERFLOW = 2

OP_NOP = 0
OP_DELAY = 1

COMMANDS = CommandFormat("axi_shell_demo_cmd", 2, [
    Field("opcode", 0, 4, doc="NOP or DELAY"),
    Field("tag", 8, 8, doc="echoed in STATUS.last_tag when the command retires"),
    Field("count", 32, 32, doc="DELAY: busy cycles"),
], {"nop": OP_NOP, "delay": OP_DELAY}, doc="Demonstration commands.")


def demo_regmap(data_bytes: int, queue_depth: int) -> RegisterMap:
    return RegisterMap("axi_shell_demo", [
        Register("id", 0x00, 32, "ro", "constant identifying the top", reset=DEMO_ID),
        Register("version", 0x04, 32, "ro", "register map version"),
        Register("params", 0x08, [
            Field("data_bytes", 0, 8, reset=data_bytes, doc="AXI4-Stream tdata bytes"),
            Field("queue_depth", 8, 8, reset=queue_depth, doc="commands the queue holds"),
        ], "ro", "configuration"),
        Register("control", 0x0C, [
            Field("start", 0, 1, doc="run the queued commands"),
            Field("soft_reset", 1, 1, doc="drop queue, status and counters"),
        ], "wo", "pulses"),
        Register("status", 0x10, [
            Field("busy", 0, 1, doc="a command is running or queued after start"),
            Field("done", 1, 1, doc="the queue ran empty after a start"),
            Field("error", 2, 1, doc="a command was dropped (see error_code)"),
            Field("error_code", 4, 4, doc="1 unknown opcode, 2 queue overflow"),
            Field("queue_level", 8, 8, doc="commands queued"),
            Field("last_tag", 16, 8, doc="tag of the last retired command"),
        ], "ro", "state"),
        Register("irq_enable", 0x14, [Field("done", 0, 1), Field("error", 1, 1)], "rw",
                 "irq = OR of irq_status & irq_enable"),
        Register("irq_status", 0x18, [Field("done", 0, 1), Field("error", 1, 1)], "w1c",
                 "sticky interrupt causes"),
        Register("cmd", 0x1C, 32, "wo", "command-queue push, word 0 first"),
        Register("scratch", 0x20, 32, "rw", "free for the host", reset=0x5A5A5A5A),
        Register("addend", 0x24, 8, "rw", "added to every byte of the stream (modulo 256)"),
        Register("cycles", 0x30, 32, "ro", "cycles from start until done"),
        Register("busy_cycles", 0x34, 32, "ro", "cycles a DELAY ran"),
        Register("stall_cycles", 0x38, 32, "ro", "cycles m_axis was stalled by the sink"),
    ], version=0x00010000)


@unit("axi_shell_demo", testbench="sim.common.tb_axi_shell_demo")
class AXIShellDemo(wiring.Component):
    """Shell demonstration top: AXI4-Lite registers, a command queue and an
    AXI4-Stream path that adds a register to every byte.

    Parameters
    ----------
    data_bytes : int
        AXI4-Stream ``tdata`` bytes (default 4).
    queue_depth : int
        Commands the queue holds (default 4).

    Members
    -------
    s_axil : ``In(axi_lite_signature(12))``
        Control; the register map is ``REGMAP`` (C header: ``ditgen header axi_shell_demo``).
    s_axis : ``In(axis_signature(data_bytes))``
    m_axis : ``Out(axis_signature(data_bytes))``
        Every beat of ``s_axis`` with ``ADDEND`` added to each byte,
        ``tlast`` passed through; latency 2, II = 1.
    irq : ``Out(1)``
        ``|(irq_status & irq_enable)``.

    Commands (``COMMANDS``, two words): NOP retires at once; DELAY keeps the
    top busy for ``count`` cycles. ``start`` runs the queue until it is
    empty, then sets ``status.done`` and ``irq_status.done``. An unknown opcode
    or a push into a full queue sets ``status.error`` with a code and drops
    the command. Implements docs/SPEC.md "Shell conventions (every top)" and
    "Host interface".
    """

    def __init__(self, *, data_bytes=4, queue_depth=4):
        self._data_bytes = check_int("data_bytes", data_bytes, maximum=64)
        self._queue_depth = check_int("queue_depth", queue_depth, maximum=255)
        self._regmap = demo_regmap(self._data_bytes, self._queue_depth)
        super().__init__({
            "s_axil": In(axi_lite_signature(self._regmap.addr_width)),
            "s_axis": In(axis_signature(self._data_bytes)),
            "m_axis": Out(axis_signature(self._data_bytes)),
            "irq": Out(1),
        })

    @property
    def data_bytes(self):
        return self._data_bytes

    @property
    def queue_depth(self):
        return self._queue_depth

    COMMANDS = COMMANDS

    @property
    def REGMAP(self) -> RegisterMap:
        return self._regmap

    def elaborate(self, platform):
        m = Module()
        m.submodules.csr = csr = AXI4LiteRegisters(self._regmap)
        wiring.connect(m, wiring.flipped(self.s_axil), csr.s_axil)
        m.submodules.queue = queue = CommandQueue(COMMANDS, depth=self._queue_depth)
        soft = Signal()
        start = Signal()
        m.d.comb += [
            csr.id.eq(DEMO_ID),
            csr.version.eq(self._regmap.version),
            csr.params.data_bytes.eq(self._data_bytes),
            csr.params.queue_depth.eq(self._queue_depth),
            soft.eq(csr.control_wstb & csr.control.soft_reset),
            start.eq(csr.control_wstb & csr.control.start),
            queue.push.eq(csr.cmd_wstb),
            queue.word.eq(csr.cmd),
            queue.clear.eq(soft),
        ]

        running = Signal()
        done = Signal()
        error = Signal()
        error_code = Signal(4)
        last_tag = Signal(8)
        remaining = Signal(32)
        delaying = Signal()
        cycles = Signal(32)
        busy_cycles = Signal(32)
        stall_cycles = Signal(32)
        retire = Signal()
        bad = Signal()
        cmd = queue.o.payload
        m.d.comb += queue.o.ready.eq(running & ~delaying)
        with m.If(queue.o.valid & queue.o.ready):
            with m.Switch(cmd.opcode):
                with m.Case(OP_NOP):
                    m.d.comb += retire.eq(1)
                with m.Case(OP_DELAY):
                    with m.If(cmd.count == 0):
                        m.d.comb += retire.eq(1)
                    with m.Else():
                        m.d.sync += [delaying.eq(1), remaining.eq(cmd.count)]
                with m.Default():
                    m.d.comb += bad.eq(1)
        tag = Signal(8)
        with m.If(queue.o.valid & queue.o.ready):
            m.d.sync += tag.eq(cmd.tag)
        with m.If(retire):
            m.d.sync += last_tag.eq(cmd.tag)
        with m.If(delaying):
            m.d.sync += [remaining.eq(remaining - 1), busy_cycles.eq(busy_cycles + 1)]
            with m.If(remaining == 1):
                m.d.sync += [delaying.eq(0), last_tag.eq(tag)]
        finished = Signal()
        m.d.comb += finished.eq(running & ~delaying & ~queue.o.valid)
        with m.If(running):
            m.d.sync += cycles.eq(cycles + 1)
        with m.If(finished):
            m.d.sync += [running.eq(0), done.eq(1)]
        with m.If(queue.overflow):
            m.d.sync += [error.eq(1), error_code.eq(ERR_OVERFLOW)]
        with m.Elif(bad):
            m.d.sync += [error.eq(1), error_code.eq(ERR_OPCODE)]
        with m.If(start):
            m.d.sync += [running.eq(1), done.eq(0), cycles.eq(0), busy_cycles.eq(0)]

        # Stream path: bytes + addend, registered at both ends.
        m.submodules.rx = rx = AXIStreamToStream(self._data_bytes, registered=True)
        m.submodules.tx = tx = StreamToAXIStream(self._data_bytes, registered=True)
        wiring.connect(m, wiring.flipped(self.s_axis), rx.s_axis)
        wiring.connect(m, tx.m_axis, wiring.flipped(self.m_axis))
        m.d.comb += [tx.i.valid.eq(rx.o.valid), rx.o.ready.eq(tx.i.ready),
                     tx.i.payload.last.eq(rx.o.payload.last)]
        for b in range(self._data_bytes):
            m.d.comb += tx.i.payload.data[8 * b:8 * b + 8].eq(rx.o.payload.data[8 * b:8 * b + 8] + csr.addend)
        with m.If(self.m_axis.tvalid & ~self.m_axis.tready):
            m.d.sync += stall_cycles.eq(stall_cycles + 1)

        with m.If(soft):
            m.d.sync += [running.eq(0), done.eq(0), error.eq(0), error_code.eq(0), delaying.eq(0),
                         cycles.eq(0), busy_cycles.eq(0), stall_cycles.eq(0), last_tag.eq(0)]

        m.d.comb += [
            csr.status.busy.eq(running),
            csr.status.done.eq(done),
            csr.status.error.eq(error),
            csr.status.error_code.eq(error_code),
            csr.status.queue_level.eq(queue.level),
            csr.status.last_tag.eq(last_tag),
            csr.irq_status_set.done.eq(finished),
            csr.irq_status_set.error.eq(bad | queue.overflow),
            csr.cycles.eq(cycles),
            csr.busy_cycles.eq(busy_cycles),
            csr.stall_cycles.eq(stall_cycles),
            self.irq.eq((Value.cast(csr.irq_status) & Value.cast(csr.irq_enable)).any()),
        ]
        return m
