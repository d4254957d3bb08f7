"""The host side every accelerator top's testbench starts from (docs/SPEC.md
"Host interface"): the C++ clock, the register map and command format of the
component under test (read from it, never restated), a ``Driver`` over
AXI4-Lite, seeded AXI4-Stream source and sink, reset, stream flush and the
``irq`` wait."""

from cocotb.triggers import ClockCycles, First, ReadOnly, RisingEdge, Timer

from hdl import registry
from sim import env
from sim.axi import Driver, axis_sink, axis_source, start_clock

__all__ = ["ShellTB"]


class ShellTB:
    """Base of the accelerator tops' testbenches; a top's ``TB`` adds its model."""

    def __init__(self, dut):
        self.dut = dut
        top = registry.get(env.unit()).build(env.params())
        top._MustUse__silence = True   # built for its register map and command format, never elaborated
        self.regs, self.commands = top.REGMAP, top.COMMANDS
        self.queue_depth = top.queue_depth
        self.rnd, self.rng = env.rngs()
        self.clk = start_clock(dut)
        self.host = Driver(dut, self.regs, commands=self.commands)
        self.src = axis_source(dut, "s_axis", seed=self.rnd.randrange(1 << 30))
        self.sink = axis_sink(dut, "m_axis", seed=self.rnd.randrange(1 << 30))
        self.runs = []

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.clk, 4)
        self.dut.rst.value = 0
        await ClockCycles(self.clk, 2)

    async def flush_streams(self):
        """Drop what the stream endpoints hold, the frame in flight included
        (as the DMA engines behind them would be reset with the accelerator):
        the library's own bus-reset handling, without resetting the DUT."""
        for ep in (self.src, self.sink):
            ep.axis.clear()
            ep.axis._handle_reset(True)
        await RisingEdge(self.clk)
        for ep in (self.src, self.sink):
            ep.axis._handle_reset(False)
            ep.axis.clear()
        await ClockCycles(self.clk, 2)

    async def wait_done(self, timeout_ns):
        """Await the end of the run on ``irq`` (= STATUS.done): no Python runs
        meanwhile. Not ``Driver.wait_done``, which also returns on
        STATUS.error, set while a run goes on past a bad command."""
        await ClockCycles(self.clk, 2)   # start has cleared the last run's done
        await ReadOnly()
        if not int(self.dut.irq.value):
            deadline = Timer(timeout_ns, "ns")
            got = await First(RisingEdge(self.dut.irq), deadline)
            if got is deadline:
                raise TimeoutError(f"no irq within {timeout_ns} ns")
        await RisingEdge(self.clk)
        return await self.host.status()

    async def start_run(self, src_pause, sink_pause, timeout_ns, start=None):
        """Pace the streams, start the run (``start``, else CONTROL.start),
        await its end on ``irq``, quiet the streams; return the status and
        the output frames."""
        self.src.pause(src_pause)
        self.sink.pause(sink_pause)
        await (start or self.host.start)()
        status = await self.wait_done(timeout_ns)
        self.src.quiet()
        self.sink.quiet()
        frames = []
        while not self.sink.empty():
            frames.append(bytes(self.sink.recv_nowait().tdata))
        return status, frames

    async def soft_reset_to_idle(self):
        """A soft reset (mid-run): the streams go quiet and are flushed, and
        the top must then read idle, error-free, with its queue empty."""
        await self.host.soft_reset()
        self.src.quiet()
        self.sink.quiet()
        await self.flush_streams()
        st = await self.host.status()
        assert st == {"busy": 0, "done": 0, "error": 0, "error_code": 0}, st
        assert await self.host.read_reg("queue") == 0
