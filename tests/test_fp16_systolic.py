"""FP16 systolic datapath (docs/SPEC.md "FP16"): the golden FP16 matmul against
binary32 scalar arithmetic in the documented order, tiler/assembler/beat
order, the cycle model's dtype, the RTL's DTYPE parameter, lint, and the FP16
PE and arrays bit- and cycle-exact in co-simulation."""

import numpy as np
import pytest

from golden import fp16 as gf
from golden import systolic as g


def _reference(a, w, rows):
    """Scalar binary32 in the order of docs/SPEC.md "FP16", one output at a time."""
    m, k = a.shape
    n = w.shape[1]
    out = np.zeros((m, n), dtype=np.float32)
    with np.errstate(all="ignore"):
        for i in range(m):
            for j in range(n):
                acc = None
                for k0 in range(0, k, rows):
                    s = np.float32(0.0)
                    for kk in range(k0, min(k, k0 + rows)):
                        s = (s + np.float32(a[i, kk]) * np.float32(w[kk, j])).astype(np.float32)
                    acc = s if acc is None else np.float32(acc + s)
                out[i, j] = acc
    return gf.bits32(out)


def _mixed(rng, shape):
    return (rng.standard_normal(shape) * np.exp2(rng.integers(-14, 8, shape))).astype(np.float16)


@pytest.mark.parametrize("m, k, n, rows", [(3, 17, 5, 4), (1, 1, 1, 1), (4, 64, 3, 16), (2, 9, 7, 9),
                                           (5, 33, 2, 8), (2, 40, 2, 64)])
def test_golden_fp16_matmul_is_binary32_in_order(m, k, n, rows):
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    a, w = _mixed(rng, (m, k)), _mixed(rng, (k, n))
    got = g.matmul(a, w, dtype="fp16", rows=rows)
    assert got.dtype == np.float32
    assert np.array_equal(gf.bits32(got), _reference(a, w, rows))


def test_golden_fp16_order_matters_and_specials_propagate():
    f = np.float16
    # Products 2^24, 1, -2^24: in k order 2^24 + 1 ties to 2^24 and the sum is
    # 0; the reverse order keeps the 1. The order is observable, so it is fixed.
    a = np.array([[4096, 1, -4096]], dtype=f)
    w = np.array([[4096], [1], [4096]], dtype=f)
    assert g.matmul(a, w, dtype="fp16")[0, 0] == 0.0
    assert g.matmul(a[:, ::-1].copy(), w[::-1].copy(), dtype="fp16")[0, 0] == 1.0
    # Products 2^24, 0, 1, 1: one tile (or tiles of one) loses both ones;
    # tiles of two add them first (1 + 1 = 2) and keep them.
    a = np.array([[4096, 0, 1, 1]], dtype=f)
    w = np.array([[4096], [0], [1], [1]], dtype=f)
    assert g.matmul(a, w, dtype="fp16")[0, 0] == 2.0 ** 24
    assert g.matmul(a, w, dtype="fp16", rows=2)[0, 0] == 2.0 ** 24 + 2
    assert g.matmul(a, w, dtype="fp16", rows=1)[0, 0] == 2.0 ** 24
    ones = np.array([[1], [1]], dtype=f)
    zeros_w = np.array([[1], [0]], dtype=f)
    inf, nan = np.float16(np.inf), np.float16(np.nan)
    specials = np.array([[inf, 0], [inf, 1], [inf, -inf], [nan, 1]], dtype=f)
    out = gf.bits32(g.matmul(specials, ones, dtype="fp16"))
    assert out.tolist() == [[0x7F800000], [0x7F800000], [0x7FC00000], [0x7FC00000]]
    assert gf.bits32(g.matmul(specials[:1, ::-1].copy(), zeros_w, dtype="fp16")).tolist() == [[0x7FC00000]]  # 0*1 + inf*0
    # Column sums start at +0.0: products of -0.0 only still give +0.0.
    neg = np.array([[-0.0, -0.0]], dtype=f)
    assert gf.bits32(g.matmul(neg, ones, dtype="fp16")).tolist() == [[0]]


def test_golden_fp16_tiles_assemble_and_beats():
    rng = np.random.default_rng(5)
    a, w = _mixed(rng, (6, 21)), _mixed(rng, (21, 10))
    parts = g.tiles(a, w, 8, 4, dtype="fp16")
    assert len(parts) == 3 * 3 and parts[0].weights.dtype == np.float16
    want = gf.bits32(g.matmul(a, w, dtype="fp16", rows=8))
    assert np.array_equal(gf.bits32(g.assemble(parts, 6, 10, dtype="fp16")), want)
    beats = g.weight_beats(parts[0], "fp16")
    assert np.array_equal(beats[0], parts[0].weights[-1]) and np.array_equal(beats[-1], parts[0].weights[0])
    ip = g.tiles(np.ones((2, 3), dtype=int), np.ones((3, 2), dtype=int), 2, 2)
    assert np.array_equal(g.weight_beats(ip[0]), ip[0].weights)
    # The cycle model is the same for both types (one-cycle FP16 PE).
    assert g.cycles(50, 70, 9, 8, 4, dtype="fp16") == g.cycles(50, 70, 9, 8, 4)
    with pytest.raises(ValueError, match="dtype"):
        g.cycles(1, 1, 1, 1, 1, dtype="bf16")
    with pytest.raises(TypeError):
        g.matmul(np.ones((2, 2), dtype=np.float32), np.ones((2, 2), dtype=np.float16), dtype="fp16")
    with pytest.raises(TypeError, match="dtype"):
        g.matmul(a, w, dtype=16)


# --------------------------------------------------------------------------
# RTL parameters, plain conversion, lint


def test_rtl_dtype_parameter():
    from hdl import registry
    from hdl.systolic.array import SystolicArray
    from hdl.systolic.pe import SystolicPE

    pe = SystolicPE(dtype="fp16")
    assert (pe.dtype, pe.in_bits, pe.w_bits, pe.acc_bits) == ("fp16", 16, 16, 32)
    arr = SystolicArray(rows=np.int32(4), cols=np.uint8(3), dtype="fp16")
    assert (arr.rows, arr.cols, arr.in_bits, arr.acc_bits) == (4, 3, 16, 32)
    assert registry.get("systolic_array").defaults()["DTYPE"] == "int8"
    assert registry.get("systolic_array").resolve({"DTYPE": "fp16"})["DTYPE"] == "fp16"
    for cls in (SystolicPE, SystolicArray):
        with pytest.raises(ValueError, match="dtype"):
            cls(dtype="bf16")
        with pytest.raises(TypeError, match="dtype"):
            cls(dtype=16)
        with pytest.raises(ValueError, match="fixed by dtype"):
            cls(dtype="fp16", in_bits=4)
        with pytest.raises(AttributeError):
            cls().dtype = "fp16"
    with pytest.raises(TypeError, match="rows"):
        SystolicArray(rows=4.0)
    with pytest.raises(AttributeError):
        arr.rows = 8


@pytest.mark.parametrize("dtype", ["int8", "fp16"])
def test_array_plain_conversion_builds_its_grid(dtype):
    from amaranth.back import verilog

    from hdl.systolic.array import SystolicArray

    text = verilog.convert(SystolicArray(rows=2, cols=2, dtype=dtype), name="arr")
    assert "systolic_array_grid" not in text and "_grid" not in text
    assert text.count("\nmodule ") + text.startswith("module ") >= 5  # top + 4 PEs


def test_array_plain_grid_computes_a_tile():
    """The Amaranth-built grid (plain conversion) gives the golden FP16 tile."""
    from amaranth.sim import Simulator

    from hdl.systolic.array import SystolicArray

    rows, cols, m = 2, 2, 3
    rng = np.random.default_rng(3)
    a, w = _mixed(rng, (m, rows)), _mixed(rng, (rows, cols))
    (tile,) = g.tiles(a, w, rows, cols, dtype="fp16")
    dut = SystolicArray(rows=rows, cols=cols, dtype="fp16")
    got = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for beat in g.weight_beats(tile, "fp16"):
            ctx.set(dut.w.valid, 1)
            ctx.set(dut.w.payload, [int(x) for x in beat.view(np.uint16)])
            await ctx.tick().until(dut.w.ready)
        ctx.set(dut.w.valid, 0)
        for i, row in enumerate(tile.activations):
            ctx.set(dut.a.valid, 1)
            ctx.set(dut.a.payload, {"data": [int(x) for x in row.view(np.uint16)], "last": int(i == m - 1)})
            await ctx.tick().until(dut.a.ready)
        ctx.set(dut.a.valid, 0)
        for _ in range(40):
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid:
                got.append([int(x) for x in payload.data])

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == gf.bits32(tile.expected).tolist()


@pytest.mark.parametrize("unit, params", [("systolic_pe", {"DTYPE": "fp16"}),
                                          ("systolic_array", {"DTYPE": "fp16", "ROWS": 4, "COLS": 4}),
                                          ("fp16_mul", {"LANES": 2}), ("fp32_add", {"LANES": 2}),
                                          ("fp16_to_int8", {"LANES": 2}), ("int32_to_fp16", {"LANES": 2}),
                                          ("fp32_to_fp16", {"LANES": 2})])
def test_fp16_designs_lint_clean(tmp_path, unit, params):
    from hdl import registry
    from sim.lint import lint

    assert lint(registry.get(unit).emit_verilog(tmp_path, params), unit) == []


# --------------------------------------------------------------------------
# Co-simulation


@pytest.mark.cosim
def test_rtl_pe_fp16_register_model(cosim):
    cosim("systolic_pe", {"DTYPE": "fp16"}, testbench="sim.systolic.tb_systolic_pe_fp16",
          args={"cycles": 4000})


def _jobs(rows, cols):
    return [
        {"m": 2 * rows + 3, "k": rows, "n": cols, "values": "random", "check_cycles": True},
        {"m": rows + 1, "k": 2 * rows + max(1, rows // 2), "n": 2 * cols + 1, "values": "random",
         "check_cycles": True},
        {"m": max(1, rows // 2), "k": 3 * rows, "n": cols, "values": "random", "check_cycles": True},
        {"m": 2 * rows, "k": 2 * rows, "n": cols, "values": "corners", "check_cycles": True},
        {"m": rows + 2, "k": rows, "n": cols, "values": "cancel", "check_cycles": True},
        {"m": 2 * rows + 5, "k": 2 * rows + 1, "n": 2 * cols, "values": "random", "idle": 0.2,
         "backpressure": 0.3},
        {"m": rows + 3, "k": 2 * rows, "n": cols + 1, "values": "corners", "idle": 0.3, "backpressure": 0.5},
        {"m": 2, "k": 3 * rows, "n": cols, "values": "cancel", "idle": 0.1, "backpressure": 0.6},
    ]


@pytest.mark.cosim
@pytest.mark.parametrize("params", [
    pytest.param({"ROWS": 4, "COLS": 4}, id="4x4"),
    pytest.param({"ROWS": 16, "COLS": 16}, id="16x16", marks=pytest.mark.slow),
])
def test_rtl_array_fp16_exact_and_cycle_exact(cosim, params):
    rows, cols = params["ROWS"], params["COLS"]
    res = cosim("systolic_array", {**params, "DTYPE": "fp16"}, testbench="sim.systolic.tb_systolic_array_fp16",
                args={"jobs": _jobs(rows, cols)})
    jobs = res["result"]["jobs"]
    assert len(jobs) == 8 and any(j["nan_outputs"] for j in jobs)
