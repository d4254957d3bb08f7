"""Testbench used by tests/test_sim_infra.py to check the runner and the
harness (it runs against ``ccu_compress``); not a unit's testbench."""

import cocotb

from sim import env
from sim.stream import TB


@cocotb.test()
async def passes(dut):
    tb = TB(dut)
    await tb.reset()
    env.report(seed=env.seed(), cycles=tb.cycle)


@cocotb.test()
async def fails(dut):
    tb = TB(dut)
    await tb.reset()
    assert env.args().get("expect") == "pass", "deliberate failure"


@cocotb.test()
async def unexpected_beat(dut):
    """A beat nobody expects: ``finish`` must fail."""
    tb = TB(dut)
    await tb.reset()
    tb.i.send([[0] * tb.i.packer.length])
    await tb.finish()


@cocotb.test()
async def protocol_violation(dut):
    """Run against a small stream producer (tests/test_sim_infra.py): with the
    sink stalling three cycles in four, the checker must catch a producer
    that drops ``valid`` or changes the payload before its beat is taken."""
    tb = TB(dut, backpressure=[1, 1, 1, 0])
    await tb.reset()
    dut.fault.value = env.args()["fault"]
    await tb.cycles(40)
    assert len(tb.o.items) >= 5, "the producer sent too few beats"
    tb.o.expect(tb.o.items)
    tb.check()
