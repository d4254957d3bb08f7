"""Testbench of ``systolic_mac_ref`` (the PE's area yardstick): random operands
with extremes and random clears, the accumulator checked every cycle against
``golden.systolic.wrap`` arithmetic. Argument: ``cycles`` (default 3000)."""

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from golden.systolic import wrap
from sim import env
from sim.stream import TB


@cocotb.test()
async def mac_accumulates(dut):
    p, args = env.params(), env.args()
    ib, wb, acc = p["IN_BITS"], p["W_BITS"], p["ACC_BITS"]
    rnd, _ = env.rngs()
    tb = TB(dut, idle_values={"clr": 1})
    await tb.reset()
    await RisingEdge(dut.clk)  # the clear reaches the operand register
    pipe = []  # operands in the input register: (a, b, clr)
    model = None
    for cycle in range(args.get("cycles", 3000)):
        a = rnd.choice([-(1 << (ib - 1)), (1 << (ib - 1)) - 1, rnd.randint(-(1 << (ib - 1)), (1 << (ib - 1)) - 1)])
        b = rnd.choice([-(1 << (wb - 1)), (1 << (wb - 1)) - 1, rnd.randint(-(1 << (wb - 1)), (1 << (wb - 1)) - 1)])
        clr = int(rnd.random() < 0.02)
        dut.a.value = tb.inputs["a"].shape.pack(a)
        dut.b.value = tb.inputs["b"].shape.pack(b)
        dut.clr.value = clr
        await ReadOnly()
        if model is not None:
            got = tb.ports["acc"].shape.unpack(int(dut.acc.value))
            assert got == model, f"cycle {cycle}: acc {got}, model {model}"
        if pipe:
            pa, pb, pclr = pipe.pop()
            model = int(wrap(pa * pb + (0 if pclr or model is None else model), acc))
        pipe.append((a, b, clr))
        await RisingEdge(dut.clk)
