"""Ditto accelerator (docs/SPEC.md "Ditto accelerator"): golden accelerator
against the plain INT8 products and golden.ditto's Defo, the memory model,
parameters, command format, lint, and co-simulation of a four-layer x
three-timestep slice through AXI4-Lite and AXI4-Stream."""

import types

import numpy as np
import pytest

from golden import ditto as gdt
from golden import ditto_accel as gd

SMALL = {"CUS": 2, "PES": 4, "LANES": 8, "A_DEPTH": 64, "W_DEPTH": 128, "O_DEPTH": 32, "P_DEPTH": 64,
         "MAX_K": 32, "DEFO_ENTRIES": 8, "QUEUE_DEPTH": 8, "STREAM_BYTES": 4}
CASES = ["slice_defo_decisions", "backpressure_and_protocol", "bad_commands", "soft_reset_mid_traffic",
         "attention_differences"]


def _cfg(**kw):
    return gd.Config(**{k.lower(): v for k, v in SMALL.items() if k != "QUEUE_DEPTH"}, **kw)


def _golden_slice(cfg, seed=1, steps=3):
    from sim.accel import tb_ditto_accelerator as tbm

    tb = types.SimpleNamespace(cfg=cfg, rng=np.random.default_rng(seed))
    machine = gd.Machine(cfg)
    sl = tbm.Slice(tb)
    gd.run(sl.weight_loads(), cfg, machine)
    dec = {}
    for step in range(steps):
        for s in sl.specs:
            prog, x = sl.program(s, step)
            res = gd.run(prog, cfg, machine)
            assert not res.errors
            if isinstance(prog[2], gd.Store):
                got = np.frombuffer(res.outputs[0], "<i4").reshape(-1, cfg.cols)
                assert np.array_equal(got, tbm.o_rows(tbm.plain(s, x), cfg.cols))
            dec[(s["name"], step)] = res.layers[0]
    return tbm, dec


def test_slice_is_bit_exact_and_takes_every_defo_decision():
    tbm, dec = _golden_slice(_cfg())
    tbm.check_decisions(dec, 3)


def test_memory_model_decides():
    """With the memory model off the wide layer goes to differences (it saves compute);
    with it on, its doubled traffic sends it to activations."""
    _, on = _golden_slice(_cfg())
    _, off = _golden_slice(_cfg(mem_enable=False))
    assert not on[("wide", 2)].use_diff and off[("wide", 2)].use_diff
    assert all(r.memory == 0 for r in off.values())


def test_defo_follows_golden_table_and_act_is_full_width():
    cfg = _cfg(mem_enable=False)
    m = gd.Machine(cfg)
    rng = np.random.default_rng(3)
    w = rng.integers(-128, 128, size=(16, 8))
    a = rng.integers(-128, 128, size=(4, 16))
    gd.run([gd.Load("W", 0, w), gd.Load("A", 0, a.reshape(-1, 8))], cfg, m)
    r0 = gd.run([gd.Layer(0, 0, 4, 16, 8)], cfg, m).layers[0]
    # Activation mode: every element two lanes, no zero skipped: K/2 packed cycles a row.
    assert r0.packed == 4 * 16 // 2 and r0.counts.tolist() == [0, 0, 64]
    gd.run([gd.Load("A", 0, a.reshape(-1, 8))], cfg, m)   # unchanged input: all differences zero
    r1 = gd.run([gd.Layer(0, 1, 4, 16, 8)], cfg, m).layers[0]
    assert r1.counts.tolist() == [64, 0, 0] and r1.packed == 4
    table = gdt.DefoTable(8)
    table.record(0, 0, r0.cycles)
    table.record(0, 1, r1.cycles)
    assert r1.decision == bool(table.decision[0]) == (r1.cycles < r0.cycles)
    assert np.array_equal(m.mem["O"][:4], a @ w)


def test_attention_in_difference_form_is_exact():
    """Q·Kᵀ from two difference products (the second stored and added transposed by TADD)
    equals the plain INT8 product at every step (golden accelerator)."""
    from sim.accel import tb_ditto_accelerator as tbm

    cfg = _cfg()
    tb = types.SimpleNamespace(cfg=cfg)
    machine = gd.Machine(cfg)
    rng = np.random.default_rng(7)
    t, d = cfg.cols, 2 * cfg.lanes
    q, k = rng.integers(-100, 101, size=(t, d)), rng.integers(-100, 101, size=(t, d))
    for step in range(4):
        if step:
            q = np.clip(q + rng.choice([0, 0, 1, -1, 5], size=q.shape), -128, 127)
            k = np.clip(k + rng.choice([0, 0, 1, -3], size=k.shape), -128, 127)
        res = gd.run(tbm.attention_program(tb, q, k, step), cfg, machine)
        assert not res.errors
        got = np.frombuffer(res.outputs[0], "<i4").astype(np.int64).reshape(-1, cfg.cols)
        assert np.array_equal(got, tbm.o_rows(q @ k.T, cfg.cols))
        if step:
            assert [r.mode for r in res.layers] == ["temporal", "temporal"]


def test_memory_bytes():
    assert gd.memory_bytes(2, 8, 32, "act") == 16 + 256 + 256
    assert gd.memory_bytes(2, 8, 32, "spatial") == gd.memory_bytes(2, 8, 32, "act")
    assert gd.memory_bytes(2, 8, 32, "temporal") == 16 + 256 + 256 + 32 + 256
    assert gd.memory_cycles(2, 8, 32, "temporal", _cfg(bw_log2=3)) == -(-816 // 8)


def test_rtl_rejects_bad_parameters():
    from hdl.accel.ditto_accelerator import DittoAccelerator

    for kw, exc, name in [({"cus": 0}, ValueError, "cus"), ({"pes": 1.5}, TypeError, "pes"),
                          ({"lanes": 33}, ValueError, "lanes"), ({"a_depth": 1}, ValueError, "a_depth"),
                          ({"max_k": 12}, ValueError, "max_k"), ({"stream_bytes": 3}, ValueError, "stream_bytes"),
                          ({"lanes": 4, "stream_bytes": 8}, ValueError, "stream_bytes"),
                          ({"cus": 64, "pes": 32}, ValueError, "cus")]:
        with pytest.raises(exc, match=name):
            DittoAccelerator(**kw)
    top = DittoAccelerator(cus=np.int64(2), pes=4, stream_bytes=4)
    assert top.cols == 8 and type(top.cus) is int


def test_command_format_and_header():
    from hdl.accel.ditto_accelerator import DittoAccelerator
    from hdl.common.regmap import c_header

    top = DittoAccelerator(cus=2, pes=4, stream_bytes=4)
    header = c_header("ditto_accelerator", top.REGMAP, top.COMMANDS)
    for name in ("DITTO_CMD_OP_LAYER 3u", "DITTO_ACCELERATOR_DECISION_OFFSET", "DITTO_ACCELERATOR_MEMORY_OFFSET",
                 "DITTO_CMD_OP_VECTOR 4u"):
        assert name in header
    words = top.COMMANDS.pack(opcode="LAYER", layer=5, step=2, m=3, k=16, n=8, spatial=1)
    fields = top.COMMANDS.unpack(words)
    assert (fields["layer"], fields["step"], fields["spatial"], fields["k"]) == (5, 2, 1, 16)


def test_lint_clean(tmp_path):
    from hdl import registry
    from sim.lint import lint

    files = registry.get("ditto_accelerator").emit_verilog(tmp_path, SMALL)
    assert lint(files, "ditto_accelerator") == []


@pytest.mark.cosim
def test_rtl_slice(cosim):
    """4 layers x 3 timesteps (each Defo outcome), back-pressure, bad commands, soft reset: one build."""
    res = cosim("ditto_accelerator", SMALL, testcase=CASES)
    assert res["tests"] == len(CASES)


def test_digits_dit_through_the_golden_accelerator():
    """The bench's hooks on the golden backend: the sample equals the plain W8A8
    sampler's bit for bit, every product is exact, steps 0 / 1 run on activations /
    differences and later steps follow cycles_diff < cycles_act."""
    pytest.importorskip("torch")
    import torch

    from reports.ditto_accelerator import _layers
    from sim.accel.ditto_dit import DittoAccelHooks, GoldenBackend, bench_config
    from workloads.dit import sample
    from workloads.hooks import Int8Hooks
    from workloads.traces import calibrate, get_model

    model, _, _ = get_model()
    scales = calibrate(model, samples=2, steps=4)
    cfg = bench_config()
    ref = sample(model, [3], seed=0, steps=4, hooks=Int8Hooks(model, scales))
    hooks = DittoAccelHooks(model, scales, GoldenBackend(cfg), cfg)
    x = sample(model, [3], seed=0, steps=4, hooks=hooks)
    assert torch.equal(x, ref) and hooks.bit_exact
    assert {r["mode"] for r in hooks.layers if r["step"] == 0} == {"act"}
    assert {r["mode"] for r in hooks.layers if r["step"] == 1} == {"temporal"}
    layers = _layers(hooks)
    assert len(layers) == 24 and all(e["consistent"] for e in layers)
    assert all((r["mode"] == "temporal") == r["decision"] for r in hooks.layers if r["step"] >= 2)
