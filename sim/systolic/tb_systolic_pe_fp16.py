"""Testbench of ``systolic_pe`` with ``DTYPE=fp16``: random bit patterns (with
binary16/binary32 corners: zeros, subnormals, largest finite, infinities,
NaNs) and random clock enables every cycle; every output compared every cycle
with a register-level model of the PE whose partial-sum update is
``golden.fp16.fp32_add(p_in, golden.fp16.fp16_mul(a, act))``. Ports and their
packers come from the unit's signature (``sim.stream.TB``).

Arguments: ``cycles`` (default 4000), ``p_ce`` (default 0.7), ``p_flag``
(probability of ``f_in``/``e_in``, default 0.3).
"""

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from golden import fp16 as g
from sim import env
from sim.stream import TB


@cocotb.test()
async def pe_fp16_matches_register_model(dut):
    args = env.args()
    rnd, rng = env.rngs()
    tb = TB(dut)
    await tb.reset()  # every input idle (0)
    s = {"a": 0, "f": 0, "e": 0, "act": 0, "shd": 0, "p": 0}
    p_ce, p_flag = args.get("p_ce", 0.7), args.get("p_flag", 0.3)
    c16 = [int(x) for x in g.corners16()]
    c32 = [int(x) for x in g.corners32()]

    def half():
        r = rnd.random()
        if r < 0.2:
            return rnd.choice(c16)
        if r < 0.6:  # ordinary magnitudes: real rounding in the sum
            return int(g.bits16(np.float16(rng.standard_normal() * 4)))
        return rnd.getrandbits(16)

    def single():
        r = rnd.random()
        if r < 0.2:
            return rnd.choice(c32)
        if r < 0.7:  # partial sums of the size products have
            return int(g.bits32(np.float32(rng.standard_normal() * 16)))
        return rnd.getrandbits(32)

    for cycle in range(args.get("cycles", 4000)):
        x = {"ce": int(rnd.random() < p_ce), "a_in": half(), "f_in": int(rnd.random() < p_flag),
             "e_in": int(rnd.random() < p_flag), "w_in": half(), "p_in": single()}
        for name, value in x.items():
            getattr(dut, name).value = tb.inputs[name].shape.pack(value)
        await ReadOnly()
        out = {k: tb.ports[k].shape.unpack(int(getattr(dut, k).value))
               for k in ("a_out", "f_out", "e_out", "w_out", "p_out")}
        got = {"a": out["a_out"], "f": out["f_out"], "e": out["e_out"], "shd": out["w_out"], "p": out["p_out"]}
        want = {k: s[k] for k in got}
        assert got == want, f"cycle {cycle}: outputs { {k: hex(v) for k, v in got.items()} }, " \
                            f"model { {k: hex(v) for k, v in want.items()} }"
        if x["ce"]:
            p = int(g.fp32_add(np.uint32(x["p_in"]), g.fp16_mul(np.uint16(s["a"]), np.uint16(s["act"]))))
            s = {"a": x["a_in"], "f": x["f_in"], "e": x["e_in"],
                 "act": s["shd"] if x["f_in"] else s["act"],
                 "shd": x["w_in"] if x["e_in"] else s["shd"], "p": p}
        await RisingEdge(dut.clk)
