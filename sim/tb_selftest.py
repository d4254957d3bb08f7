"""Testbench used by tests/test_sim_infra.py to check that the runner reports
failures (it runs against ``ccu_compress``); not a unit's testbench."""

import cocotb

from sim import env
from sim.stream import TB


@cocotb.test()
async def passes(dut):
    tb = TB(dut)
    await tb.reset(idle=("i__valid", "o__ready"))
    env.report(seed=env.seed(), cycles=tb.cycle)


@cocotb.test()
async def fails(dut):
    tb = TB(dut)
    await tb.reset(idle=("i__valid", "o__ready"))
    assert env.args().get("expect") == "pass", "deliberate failure"
