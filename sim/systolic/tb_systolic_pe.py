"""Testbench of ``systolic_pe``: random inputs and clock enables every cycle,
every output compared every cycle with a register-level model of the PE
(the docstring's update rules), widths from the unit's parameters.

Arguments: ``cycles`` (default 4000), ``p_ce`` (probability ``ce`` is high,
default 0.7), ``p_flag`` (probability of ``f_in``/``e_in``, default 0.3).
"""

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from golden.systolic import wrap
from sim import env
from sim.stream import TB


@cocotb.test()
async def pe_matches_register_model(dut):
    p, args = env.params(), env.args()
    ib, wb, acc = p["IN_BITS"], p["W_BITS"], p["ACC_BITS"]
    rnd, _ = env.rngs()
    tb = TB(dut)
    await tb.reset()  # every input idle (0)
    # Model state after reset: flags cleared, data registers at their initial 0.
    s = {"a": 0, "f": 0, "e": 0, "act": 0, "shd": 0, "p": 0}
    p_ce, p_flag = args.get("p_ce", 0.7), args.get("p_flag", 0.3)

    def pick(bits):
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        return rnd.choice([lo, hi, rnd.randint(lo, hi), rnd.randint(lo, hi)])

    for cycle in range(args.get("cycles", 4000)):
        x = {"ce": int(rnd.random() < p_ce), "a_in": pick(ib), "f_in": int(rnd.random() < p_flag),
             "e_in": int(rnd.random() < p_flag), "w_in": pick(wb), "p_in": pick(acc)}
        for name, value in x.items():
            getattr(dut, name).value = tb.inputs[name].shape.pack(value)
        await ReadOnly()
        out = {k: tb.ports[k].shape.unpack(int(getattr(dut, k).value))
               for k in ("a_out", "f_out", "e_out", "w_out", "p_out")}
        got = {"a": out["a_out"], "f": out["f_out"], "e": out["e_out"], "shd": out["w_out"], "p": out["p_out"]}
        want = {k: s[k] for k in got}
        assert got == want, f"cycle {cycle}: outputs {got}, model {want}"
        if x["ce"]:
            s = {"a": x["a_in"], "f": x["f_in"], "e": x["e_in"],
                 "act": s["shd"] if x["f_in"] else s["act"],
                 "shd": x["w_in"] if x["e_in"] else s["shd"],
                 "p": int(wrap(x["p_in"] + s["a"] * s["act"], acc))}
        await RisingEdge(dut.clk)
