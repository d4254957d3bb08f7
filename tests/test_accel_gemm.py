"""GEMM accelerator (docs/SPEC.md "GEMM core"): golden model, parameters,
command format, emission, and co-simulation through AXI4-Lite and AXI4-Stream."""

import json
import math
from fractions import Fraction

import numpy as np
import pytest

from golden import accel as g
from golden.systolic import matmul

SMALL = {"ROWS": 4, "COLS": 4, "A_DEPTH": 256, "W_DEPTH": 256, "ACC_DEPTH": 256, "QUEUE_DEPTH": 8,
         "STREAM_BYTES": 4}
CASES = ["registers", "gemm_end_to_end", "accumulate_and_wrap", "vector_ops", "bad_commands",
         "backpressure_and_protocol", "soft_reset_mid_traffic"]


# --------------------------------------------------------------------------
# Golden model

def _round_half_even(x: Fraction) -> int:
    f = math.floor(x)
    d = x - f
    return f + (d > Fraction(1, 2) or (d == Fraction(1, 2) and f % 2 == 1))


def test_requantize_matches_exact_rational_rounding():
    rng = np.random.default_rng(3)
    acc = np.concatenate([rng.integers(-(1 << 33), 1 << 33, 400), [0, 1, -1, 8, -8, 24, -24, (1 << 31) - 1, -(1 << 31)]])
    for mult, shift in [(1, 0), (1, 4), (3, 1), (0xFFFF, 63), (12345, 20), (1, 1), (77, 49), (5, 50)]:
        got = g.requantize(acc, mult, shift)
        want = [max(-128, min(127, _round_half_even(Fraction(int(a) * mult, 1 << shift)))) for a in acc]
        assert got.tolist() == want, (mult, shift)
    assert g.requantize([8, 24, -8, -24], 1, 4).tolist() == [0, 2, 0, -2]  # ties to even


def test_vector_op_order():
    op = g.Vector(1, 4, 0, mult=1, shift=1, bias=True, residual=True, relu=True, clip_lo=2, clip_hi=60)
    acc = np.array([[10, -300, 101, 500]])
    bias = np.array([[4, 0, 0, -380]])
    res = np.array([[-10, 5, 100, 0]])
    # (acc + bias) / 2 rounded half-even -> clamp -> + res saturating -> relu -> clip [2, 60]
    assert g.vector_op(acc, op, bias, res).tolist() == [[2, 2, 60, 60]]


@pytest.mark.parametrize("m, k, n, rows, cols", [(5, 8, 12, 4, 4), (1, 4, 4, 4, 4), (17, 32, 16, 8, 8)])
def test_layouts_round_trip_through_the_machine(m, k, n, rows, cols):
    rng = np.random.default_rng(m + k + n)
    cfg = g.Config(rows=rows, cols=cols, a_depth=512, w_depth=512, acc_depth=512, stream_bytes=4)
    a = rng.integers(-128, 128, size=(m, k))
    w = rng.integers(-128, 128, size=(k, n))
    prog = [g.Load("A", 3, g.layout_a(a, rows)), g.Load("W", 9, g.layout_w(w, rows, cols)),
            g.Gemm(m, k, n, 3, 9, 20), g.Store("ACC", 20, m * n // cols)]
    res = g.run(prog, cfg)
    assert not res.errors
    got = g.unlayout_acc(g.from_bytes(res.outputs[0], cols, 4), m, n, cols)
    assert np.array_equal(got, matmul(a, w))


def test_errors_leave_memories_and_cost_two_cycles():
    cfg = g.Config(rows=4, cols=4, a_depth=16, w_depth=16, acc_depth=16, stream_bytes=4)
    machine = g.Accelerator(cfg)
    before = {k: v.copy() for k, v in machine.mem.items()}
    bad = [g.Unknown(9), g.Gemm(4, 5, 4, 0, 0, 0), g.Gemm(4, 4, 4, 13, 0, 0), g.Load("A", 15, np.ones((2, 4))),
           g.Store("W", 0, 1), g.Vector(4, 4, 13, to_stream=True)]
    res = g.run(bad, cfg, machine)
    assert [code for _, code in res.errors] == ["OPCODE", "SHAPE", "ADDRESS", "ADDRESS", "SHAPE", "ADDRESS"]
    assert res.cycles == [2] * len(bad) and res.total_cycles == 2 * len(bad) + 1
    assert all(np.array_equal(before[k], machine.mem[k]) for k in before)


def test_cycle_schedule_per_command():
    from golden.systolic import cycles

    cfg = g.Config(rows=4, cols=4, stream_bytes=2)
    assert g.command_cycles(g.Load("ACC", 0, np.zeros((3, 4))), cfg) == 2 + 3 * 8 + 1
    assert g.command_cycles(g.Store("A", 0, 5), cfg) == 2 + 5 * 2 + 2
    assert g.command_cycles(g.Gemm(6, 8, 8, 0, 0, 0), cfg) == 2 + cycles(6, 8, 8, 4, 4).total + 3
    assert g.command_cycles(g.Vector(3, 8, 0), cfg) == 2 + 6 + 4
    assert g.command_cycles(g.Vector(3, 8, 0, to_stream=True), cfg) == 2 + 6 * 2 + 5


def test_dit_layers_reach_the_utilisation_targets_in_the_model():
    from reports.gemm_accelerator import BENCH, layers

    cfg = g.Config(rows=16, cols=16)
    for layer in layers(quick=False):
        chunk = layer.get("n_chunk") or layer["n"]
        gemm = g.Gemm(layer["m"], layer["k"], chunk, 0, 0, 0)
        util = g.gemm_utilisation(gemm, cfg, g.command_cycles(gemm, cfg) - 2)
        assert util >= (0.95 if "XL" in layer["name"] else 0.90), (layer, util)
        kt, nt = layer["k"] // 16, chunk // 16
        assert layer["m"] * kt <= BENCH["A_DEPTH"] and kt * nt * 16 <= BENCH["W_DEPTH"]
        assert layer["m"] * nt <= BENCH["ACC_DEPTH"]


# --------------------------------------------------------------------------
# Golden model, FP16 datapath

FP16_CFG = g.Config(rows=4, cols=4, a_depth=512, w_depth=512, acc_depth=512, stream_bytes=4, dtype="fp16")


def _fp16(rng, shape):
    from golden import fp16

    return fp16.bits16(rng.standard_normal(shape).astype(np.float16)).astype(np.int64)


def _binary32_in_order(a, w, rows, acc=None):
    """Independent reference: numpy float32 scalars, one product and one sum at a time,
    in docs/SPEC.md "FP16" order (tile column sums from +0.0 in k order, tiles added in order)."""
    from golden import fp16

    a, w = fp16.f16(a).astype(np.float32), fp16.f16(w).astype(np.float32)
    m, k = a.shape
    out = np.zeros((m, w.shape[1]), np.float32) if acc is None else fp16.f32(acc).copy()
    with np.errstate(all="ignore"):
        for i in range(m):
            for j in range(w.shape[1]):
                total = None if acc is None else out[i, j]
                for k0 in range(0, k, rows):
                    s = np.float32(0.0)
                    for kk in range(k0, k0 + rows):
                        s = np.float32(s + np.float32(a[i, kk] * w[kk, j]))
                    total = s if total is None else np.float32(total + s)
                out[i, j] = total
    return fp16.bits32(out).astype(np.int64)


@pytest.mark.parametrize("m, k, n, accumulate", [(5, 8, 8, False), (3, 12, 4, True), (1, 4, 12, False)])
def test_fp16_gemm_is_binary32_in_the_documented_order(m, k, n, accumulate):
    from golden import fp16

    rng = np.random.default_rng(m * 100 + k + n)
    a, w = _fp16(rng, (m, k)), _fp16(rng, (k, n))
    a[0, 0], w[1, 0] = 0x7C00, 0x0000          # inf * x and a zero product
    acc = fp16.bits32(rng.standard_normal((m, n)).astype(np.float32)).astype(np.int64)
    acc[0, 1] = 0x7F7FFFFF                    # overflow to inf on accumulate
    prog = [g.Load("A", 3, g.layout_a(a, 4)), g.Load("W", 9, g.layout_w(w, 4, 4))]
    if accumulate:
        prog.append(g.Load("ACC", 20, g.layout_a(acc, 4)))
    prog += [g.Gemm(m, k, n, 3, 9, 20, accumulate), g.Store("ACC", 20, m * n // 4)]
    res = g.run(prog, FP16_CFG)
    assert not res.errors
    got = g.unlayout_acc(g.from_bytes(res.outputs[0], 4, 4, signed=False), m, n, 4)
    assert np.array_equal(got, _binary32_in_order(a, w, 4, acc if accumulate else None))
    assert np.array_equal(got, g.gemm_fp16(a, w, 4, acc if accumulate else None))


def test_fp16_vector_op_order_and_corners():
    from golden import fp16

    f32 = lambda v: int(fp16.bits32(np.float32(v)))    # noqa: E731
    acc = np.array([[f32(1.0), f32(-3.0), f32(65519.0), 0x7FC00001, f32(2.0 ** -25 * 3), 0x80000000,
                     f32(70000.0), f32(-0.5)]])
    bias = np.array([[f32(0.5), 0, f32(0.0), 0, 0, 0x80000000, 0, 0]])
    res = np.array([[0x3C00, 0xC000, 0x0000, 0, 0x0000, 0x8000, 0, 0x3800]])  # 1, -2, 0, ..., -0, 0.5
    op = g.Vector(1, 8, 0, bias=True, residual=True)
    # 1 + .5 + 1; -3 - 2; 65519 rounds to 65504; NaN canonical; 3 * 2^-25 rounds to the subnormal 2^-24 * 2
    # (a tie at 1.5 ulps goes to even); -0 + -0 = -0; 70000 overflows; -0.5 + 0.5 = +0.
    want = [0x4100, 0xC500, 0x7BFF, 0x7E00, 0x0002, 0x8000, 0x7C00, 0x0000]
    assert g.vector_op_fp16(acc, op, bias, res).tolist() == [want]
    relu = g.vector_op_fp16(acc, g.Vector(1, 8, 0, bias=True, residual=True, relu=True), bias, res)
    assert relu.tolist() == [[0x4100, 0, 0x7BFF, 0x7E00, 0x0002, 0, 0x7C00, 0]]
    sat = g.vector_op_fp16(acc, g.Vector(1, 8, 0, bias=True, residual=True, clip_fp16=0xC400), bias, res)
    assert sat.tolist() == [[0x4100, 0xC400, 0x4400, 0x7E00, 0x0002, 0x8000, 0x4400, 0]]
    # INT8 fields are ignored
    assert np.array_equal(g.vector_op_fp16(acc, g.Vector(1, 8, 0, mult=3, shift=9, clip_lo=1, clip_hi=2)),
                          g.vector_op_fp16(acc, g.Vector(1, 8, 0)))


def test_fp16_cycle_schedule_and_layouts():
    from golden.systolic import cycles

    cfg = g.Config(rows=4, cols=4, stream_bytes=2, dtype="fp16")
    assert (cfg.lane_bytes("A"), cfg.lane_bytes("W"), cfg.lane_bytes("ACC")) == (2, 2, 4)
    assert g.command_cycles(g.Load("A", 0, np.zeros((3, 4))), cfg) == 2 + 3 * 4 + 1
    assert g.command_cycles(g.Load("ACC", 0, np.zeros((3, 4))), cfg) == 2 + 3 * 8 + 1
    assert g.command_cycles(g.Store("A", 0, 5), cfg) == 2 + 5 * 4 + 2
    # The array's latency is the INT8 one (docs/SPEC.md "FP16"), so is a GEMM's count.
    assert g.command_cycles(g.Gemm(6, 8, 8, 0, 0, 0), cfg) == 2 + cycles(6, 8, 8, 4, 4, dtype="fp16").total + 3
    assert g.command_cycles(g.Gemm(6, 8, 8, 0, 0, 0), cfg) == g.command_cycles(g.Gemm(6, 8, 8, 0, 0, 0),
                                                                                g.Config(rows=4, cols=4,
                                                                                         stream_bytes=2))
    assert g.command_cycles(g.Vector(3, 8, 0), cfg) == 2 + 6 + 4
    assert g.command_cycles(g.Vector(3, 8, 0, to_stream=True), cfg) == 2 + 6 * 4 + 5
    with pytest.raises(ValueError, match="dtype"):
        g.Config(dtype="bf16")


# --------------------------------------------------------------------------
# RTL parameters, command format, emission

def test_rtl_rejects_bad_parameters():
    from hdl.accel.gemm_accelerator import GemmAccelerator

    for kw, exc in [({"rows": 6}, ValueError), ({"cols": 0}, ValueError), ({"rows": 4.0}, TypeError),
                    ({"a_depth": 1}, ValueError), ({"w_depth": 70000}, ValueError), ({"acc_depth": "8"}, TypeError),
                    ({"stream_bytes": 3}, ValueError), ({"rows": 4, "stream_bytes": 8}, ValueError),
                    ({"queue_depth": 1}, ValueError), ({"queue_depth": True}, TypeError)]:
        name = next(iter(kw)) if "stream_bytes" not in kw else "stream_bytes"
        with pytest.raises(exc, match=name):
            GemmAccelerator(**kw)
    top = GemmAccelerator(rows=np.int64(4), cols=np.int32(8), stream_bytes=np.int16(4))
    assert (top.rows, top.cols, top.stream_bytes) == (4, 8, 4) and type(top.rows) is int
    assert top.dtype == "int8" and GemmAccelerator(dtype="fp16").dtype == "fp16"
    with pytest.raises(ValueError, match="dtype"):
        GemmAccelerator(dtype="bf16")
    with pytest.raises(TypeError, match="dtype"):
        GemmAccelerator(dtype=16)


def test_fp16_building_blocks_check_their_parameters():
    from hdl.accel.gemm_datapath import VectorUnit
    from hdl.common.scratchpad import Accumulator

    assert Accumulator(depth=4, lanes=2, arith="fp32").arith == "fp32" and Accumulator(depth=4).arith == "int"
    with pytest.raises(ValueError, match="arith"):
        Accumulator(depth=4, arith="fp16")
    with pytest.raises(TypeError, match="arith"):
        Accumulator(depth=4, arith=1)
    with pytest.raises(ValueError, match="lane_bits"):
        Accumulator(depth=4, lane_bits=16, arith="fp32")
    vec = VectorUnit(lanes=2, dtype="fp16")
    assert vec.dtype == "fp16" and set(vec.cfg.signature.members) == {"bias", "residual", "relu", "clip"}
    assert "mult" in VectorUnit(lanes=2).cfg.signature.members
    with pytest.raises(ValueError, match="dtype"):
        VectorUnit(dtype="fp32")


def test_fp16_command_format_and_datapath_register():
    from hdl.accel.gemm_accelerator import GemmAccelerator
    from hdl.accel.gemm_commands import COMMANDS, COMMANDS_FP16
    from hdl.common.regmap import c_header

    int8, fp16 = GemmAccelerator(rows=4, cols=4, stream_bytes=4), GemmAccelerator(rows=4, cols=4, stream_bytes=4,
                                                                                   dtype="fp16")
    assert int8.COMMANDS is COMMANDS and fp16.COMMANDS is COMMANDS_FP16
    words = fp16.COMMANDS.pack(opcode="VECTOR", m=1, n=4)
    assert words[5] >> 16 == 0x7C00 and fp16.COMMANDS.unpack(words)["clip_fp16"] == 0x7C00
    # The INT8 fields keep their bits; INT8 commands pack as before.
    assert words[:5] == COMMANDS.pack(opcode="VECTOR", m=1, n=4)[:5]
    assert words[5] & 0xFFFF == COMMANDS.pack(opcode="VECTOR", m=1, n=4)[5]
    for top, code in ((int8, 0), (fp16, 1)):
        reg = top.REGMAP["datapath"]
        assert reg.offset == 0x1C and reg.access == "ro" and reg.fields[0].reset == code
    assert "GEMM_CMD_CLIP_FP16_SHIFT 16u" in c_header("gemm_accelerator", fp16.REGMAP, fp16.COMMANDS)


def test_command_format_and_header():
    from hdl.accel.gemm_accelerator import GemmAccelerator
    from hdl.common.regmap import c_header, json_description

    top = GemmAccelerator(rows=4, cols=4, stream_bytes=4)
    cmd = top.COMMANDS
    words = cmd.pack(opcode="GEMM", m=5, k=8, n=12, addr0=1, addr1=2, addr2=3)
    assert len(words) == 6 and cmd.unpack(words)["k"] == 8 and cmd.unpack(words)["clip_hi"] == 0x7F
    header = c_header("gemm_accelerator", top.REGMAP, cmd)
    for name in ("GEMM_CMD_OP_GEMM 3u", "GEMM_ACCELERATOR_STATUS_OFFSET", "GEMM_CMD_K_WORD 4u"):
        assert name in header
    desc = json.loads(json_description("gemm_accelerator", top.REGMAP, cmd))
    assert desc["regmap"]["registers"][2]["fields"][0]["reset"] == 4


def test_emits_top_grid_and_pe(tmp_path):
    import re

    from hdl import registry

    files = registry.get("gemm_accelerator").emit_verilog(tmp_path, SMALL)
    text = {f.name: f.read_text() for f in files}
    assert set(text) == {"gemm_accelerator.v", "gemm_accelerator_array_grid.v", "gemm_accelerator_array_pe.v"}
    assert "gemm_accelerator_array_grid grid (" in text["gemm_accelerator.v"]
    # Memories stay memories, zeroed by one loop each (not one line per row).
    assert len(re.findall(r"reg \[\d+:0\] mem \[255:0\]", text["gemm_accelerator.v"])) == 3
    assert "mem[17] =" not in text["gemm_accelerator.v"]


@pytest.mark.parametrize("dtype", ["int8", "fp16"])
def test_lint_clean(tmp_path, dtype):
    from hdl import registry
    from sim.lint import lint

    files = registry.get("gemm_accelerator").emit_verilog(tmp_path, {**SMALL, "DTYPE": dtype})
    assert lint(files, "gemm_accelerator") == []


# --------------------------------------------------------------------------
# Co-simulation

@pytest.mark.cosim
def test_rtl_small(cosim):
    """Every testcase at 4x4 in one build (about a minute with the build)."""
    res = cosim("gemm_accelerator", SMALL, testcase=CASES)
    assert res["tests"] == len(CASES)
    _system_model_matches(res, lane_bytes=1)


def _system_model_matches(res, *, lane_bytes):
    """The system model on the RTL's measurements (docs/SPEC.md "System model",
    validation): each GEMM's counter equals ``gemm_top_cycles``, and the bytes
    the host interface moved for the layer (A and W in, the accumulator out)
    equal the model's DRAM bytes at a one-byte burst."""
    import dataclasses

    import golden.system as gs

    gemms = res["result"]["gemms"]
    rows, cols = SMALL["ROWS"], SMALL["COLS"]
    assert gs.validate_cycles(gs.gemm_top_cycles, [(x["m"], x["k"], x["n"], x["gemm_cycles"]) for x in gemms],
                              rows=rows, cols=cols) == []
    acc = dataclasses.replace(gs.RADIT, array=(rows, cols), instances=1, act_bytes=lane_bytes,
                              weight_bytes=lane_bytes, out_bytes=4,
                              dram=gs.Dram("pins", 1e30, 1, 1.0, "host interface bytes"))
    table = gs.energy_table(acc)
    for x in gemms:
        layer = gs.Layer("gemm", x["m"], x["k"], x["n"], 1, "mlp", "linear")
        assert gs.array_layer(layer, acc, table).dram_bytes == x["bytes_in"] + x["bytes_out"], x


FP16_CASES = ["registers", "gemm_end_to_end", "fp16_accumulate_and_vector", "bad_commands",
              "backpressure_and_protocol", "soft_reset_mid_traffic"]


@pytest.mark.cosim
def test_rtl_small_fp16(cosim):
    """The FP16 datapath at 4x4 in one build: shapes, accumulate onto corners,
    K split, vector ops, back-pressure, soft reset, bit- and cycle-exact."""
    res = cosim("gemm_accelerator", {**SMALL, "DTYPE": "fp16"}, testcase=FP16_CASES)
    assert res["tests"] == len(FP16_CASES)
    _system_model_matches(res, lane_bytes=2)


@pytest.mark.slow
@pytest.mark.cosim
def test_rtl_16x16_fp16(cosim):
    """The FP16 datapath in the bench configuration (16x16, 16-byte streams)."""
    from reports.gemm_accelerator import BENCH

    res = cosim("gemm_accelerator", {**BENCH, "DTYPE": "fp16"}, testcase=FP16_CASES)
    assert res["tests"] == len(FP16_CASES)


@pytest.mark.slow
@pytest.mark.cosim
def test_rtl_16x16(cosim):
    """The bench configuration: every testcase, then one DiT-sized layer."""
    from reports.gemm_accelerator import BENCH

    res = cosim("gemm_accelerator", BENCH, testcase=CASES + ["layers"],
                args={"layers": [{"name": "digits fc2", "m": 256, "k": 512, "n": 128}]})
    assert res["tests"] == len(CASES) + 1
