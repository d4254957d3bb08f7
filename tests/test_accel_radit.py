"""RADiT accelerator (docs/SPEC.md "RADiT accelerator"): golden model against
golden.radit's Algorithm 2, parameters, command format, and co-simulation
of a 2-block x 4-step slice through AXI4-Lite and AXI4-Stream."""

import numpy as np
import pytest

from golden import accel as g
from golden import radit as gradit
from golden import radit_accel as gr

SMALL = {"ROWS": 4, "COLS": 4, "A_DEPTH": 32, "W_DEPTH": 64, "ACC_DEPTH": 32, "QUEUE_DEPTH": 8,
         "STREAM_BYTES": 4, "BLOCKS": 4, "TIMESTEPS": 8, "CODE_DEPTH": 64, "REUSE_DEPTH": 64, "ALPHA_FRAC": 15}
CASES = ["slice_skip_and_compute", "backpressure_and_protocol", "bad_commands", "soft_reset_mid_traffic",
         "system_model"]
# The system model's validation slice: one DiT block (qkv 4x8x24, proj, fc1 4x8x16, fc2) over 4 steps.
SYSTEM_SLICE = {"tokens": 4, "hidden": 8, "depth": 1, "heads": 1, "mlp": 16, "steps": 4}


def _cfg():
    return gr.Config(gemm=g.Config(rows=4, cols=4, a_depth=32, w_depth=32, acc_depth=32, stream_bytes=4),
                     blocks=4, timesteps=8, code_depth=64, reuse_depth=32)


def test_decisions_follow_algorithm_2():
    """Per-request DTSM of the machine = golden.radit.dtsm over the whole trajectory."""
    rng = np.random.default_rng(5)
    steps, blocks = 9, 3
    cfg = gr.Config(gemm=g.Config(rows=4, cols=4, a_depth=32, w_depth=32, acc_depth=32, stream_bytes=4),
                    blocks=blocks, timesteps=steps, code_depth=64, reuse_depth=32)
    machine = gr.Machine(cfg)
    table = gradit.alpha_table(steps, "cosine", 15)
    for t, a in enumerate(table[:steps + 1]):
        machine.set_alpha(t, int(a))
    x = rng.normal(0, 1, size=(blocks, 8, 2))
    deltas = np.zeros((steps - 1, blocks), np.int64)
    skips = np.zeros((steps - 1, blocks), bool)
    for s in range(steps):
        for n in range(blocks):
            x[n] += rng.uniform(0, 1) * rng.normal(0, 1, size=x[n].shape)
            res = gr.run([gr.BlockBegin(n, steps - 1 - s, x[n].astype(np.float16).view(np.uint16), 2,
                                        code_addr=8 * n, first=s == 0), gr.BlockEnd()], cfg, machine)
            d = res.decisions[0]
            if s:
                deltas[s - 1, n], skips[s - 1, n] = d.delta, d.skip
            else:
                assert not d.skip and not d.theta_valid
    alphas = np.array([table[steps - 1 - s] for s in range(1, steps)], np.int64)
    _, want = gradit.dtsm(deltas, alphas)
    assert np.array_equal(skips, want) and skips.any()


def test_skip_replays_the_stored_output_and_drops_the_program():
    cfg = _cfg()
    m = gr.Machine(cfg)
    a = np.arange(32).reshape(4, 8) % 7
    w = np.eye(8, dtype=np.int64)
    prog = [g.Load("A", 0, g.layout_a(a, 4)), g.Load("W", 0, g.layout_w(w, 4, 4)), g.Gemm(4, 8, 8, 0, 0, 0),
            gr.Output(g.Vector(4, 8, 0, mult=1, shift=0, to_stream=True))]
    x = np.full((4, 2), 0x3C00)
    first = gr.run([gr.BlockBegin(0, 3, x, 8, first=True)] + prog + [gr.BlockEnd()], cfg, m)
    m.set_alpha(2, 1 << 14)
    gr.run([gr.BlockBegin(0, 2, x, 8), gr.BlockEnd()], cfg, m)       # θ := Δ = 0
    prog[0] = g.Load("A", 0, g.layout_a(a + 1, 4))
    res = gr.run([gr.BlockBegin(0, 1, x, 8)] + prog + [gr.BlockEnd()], cfg, m)
    assert res.decisions[0].theta == 0 and not res.decisions[0].skip   # Δ = 0 is not < θ = 0
    x2 = x.copy()
    x2[0, 0] = 0x4400
    gr.run([gr.BlockBegin(0, 1, x2, 8)] + prog + [gr.BlockEnd()], cfg, m)   # Δ up: θ stays 0
    # A cycle count that follows the schedule: 2 + beats + 3, then 10 + core run per forwarded command.
    assert first.cycles[0] == 2 + 4 + 3
    assert first.cycles[1] == gr.FORWARD_OVERHEAD + g.run([prog[0]], cfg.gemm).total_cycles
    assert first.outputs and first.cycles[-1] == 2


def test_rtl_rejects_bad_parameters():
    from hdl.accel.radit_accelerator import RaditAccelerator

    for kw, exc in [({"blocks": 0}, ValueError), ({"code_depth": 1}, ValueError), ({"reuse_depth": 1.5}, TypeError),
                    ({"alpha_frac": 16}, ValueError),
                    ({"rows": 4, "cols": 4, "stream_bytes": 1}, ValueError), ({"rows": 6}, ValueError)]:
        name = next(iter(kw)) if "stream_bytes" not in kw else "stream_bytes"
        with pytest.raises(exc, match=name):
            RaditAccelerator(**kw)
    top = RaditAccelerator(rows=4, cols=4, stream_bytes=np.int64(4), blocks=np.int32(3))
    assert top.lanes == 2 and type(top.blocks) is int


def test_command_format_and_header():
    from hdl.accel.radit_accelerator import RaditAccelerator
    from hdl.common.regmap import c_header

    top = RaditAccelerator(rows=4, cols=4, stream_bytes=4)
    header = c_header("radit_accelerator", top.REGMAP, top.COMMANDS)
    for name in ("RADIT_CMD_OP_BLOCK_BEGIN 8u", "RADIT_ACCELERATOR_DECISION_OFFSET", "RADIT_CMD_OP_GEMM 3u"):
        assert name in header
    from hdl.accel.gemm_commands import COMMANDS as GEMM

    words = GEMM.pack(opcode="VECTOR", m=3, n=8, shift=5, to_stream=1)
    assert top.COMMANDS.pack(opcode="VECTOR", m=3, n=8, shift=5, to_stream=1) == words


def test_lint_clean(tmp_path):
    from hdl import registry
    from sim.lint import lint

    files = registry.get("radit_accelerator").emit_verilog(tmp_path, SMALL)
    assert lint(files, "radit_accelerator") == []


@pytest.mark.cosim
def test_rtl_slice(cosim):
    """2 blocks x 4 steps, back-pressure, bad commands, soft reset: one build."""
    res = cosim("radit_accelerator", SMALL, testcase=CASES, args={"system": SYSTEM_SLICE})
    assert res["tests"] == len(CASES)
    _system_model_matches(res["result"]["system"])


def _small_top():
    from golden.system.radit_top import RaditTop

    p = SMALL
    gemm = g.Config(rows=p["ROWS"], cols=p["COLS"], a_depth=p["A_DEPTH"], w_depth=p["W_DEPTH"],
                    acc_depth=p["ACC_DEPTH"], stream_bytes=p["STREAM_BYTES"])
    return RaditTop(gr.Config(gemm=gemm, blocks=p["BLOCKS"], timesteps=p["TIMESTEPS"], code_depth=p["CODE_DEPTH"],
                              reuse_depth=p["REUSE_DEPTH"], alpha_frac=p["ALPHA_FRAC"]), p["QUEUE_DEPTH"])


def _system_model_matches(measured, top=None):
    """docs/SPEC.md "System model", validation: ``radit_run`` on the RADiT top,
    fed the skip matrix the RTL decided, predicts the sum of the runs' CYCLES
    and the bytes the host interface moved (both directions), exactly."""
    import golden.system as gs

    skip = np.array(measured["skip"], dtype=float)
    assert skip[1:].any() and not skip[1:].all(), f"the slice must skip and compute: {skip}"
    run = gs.radit_run(gs.Workload("radit slice", **SYSTEM_SLICE), gs.RADIT, skip, top=top or _small_top())
    assert run["radit"].cycles == measured["cycles"], (run["radit"].cycles, measured)
    assert run["radit"].dram_bytes == measured["bytes_in"] + measured["bytes_out"], (run["radit"].dram, measured)


def test_digits_dit_through_the_golden_accelerator():
    """The bench's sampler hooks on the golden backend: with no_skip the sample
    equals the plain W8A8 sampler's bit for bit; with skipping some blocks skip,
    their programs are dropped and the cycle count falls."""
    pytest.importorskip("torch")
    import torch

    from sim.accel.radit_dit import AccelHooks, GoldenBackend, bench_config
    from workloads.dit import sample
    from workloads.hooks import Int8Hooks
    from workloads.traces import calibrate, get_model

    model, _, _ = get_model()
    scales = calibrate(model, samples=2, steps=4)
    cfg = bench_config()
    steps = 20
    ref = sample(model, [3], seed=0, steps=steps, hooks=Int8Hooks(model, scales))
    runs = {}
    for no_skip in (True, False):
        be = GoldenBackend(cfg, "cosine", steps, no_skip=no_skip)
        hooks = AccelHooks(model, scales, be, steps, cfg)
        runs[no_skip] = (sample(model, [3], seed=0, steps=steps, hooks=hooks), hooks.records(), be)
    x, rec, be = runs[True]
    assert torch.equal(x, ref) and not rec["skip"].any()
    x, rec, be = runs[False]
    assert rec["skip"].any() and not rec["skip"][0].any()
    assert be.counters["dropped"] == 8 * int(rec["skip"].sum()) and be.counters["w_rows_skipped"] > 0
    assert be.cycles < runs[True][2].cycles
    # The system model on the bench top, fed the hooks' skip matrix, predicts both runs' cycles.
    import golden.system as gs
    from golden.system.radit_top import RaditTop
    from sim.accel.radit_dit import BENCH

    c = model.cfg
    w = gs.Workload("digits DiT", tokens=c.tokens, hidden=c.hidden, depth=c.depth, heads=c.heads,
                    mlp=c.mlp_ratio * c.hidden, steps=steps)
    sysrun = gs.radit_run(w, gs.RADIT, rec["skip"].astype(float), top=RaditTop(cfg, BENCH["QUEUE_DEPTH"]))
    assert (sysrun["radit"].cycles, sysrun["base"].cycles) == (be.cycles, runs[True][2].cycles)
