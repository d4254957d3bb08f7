"""golden.system: the composition adds nothing unaccounted (cycles equal the
units' RTL-validated cycle models, DRAM bytes equal a count from the layer
shapes), energy moves the obvious ways, and every headline figure is computed
from its statistic (docs/SPEC.md "System model")."""

import dataclasses
import math

import numpy as np
import pytest

from golden import system as gs
from golden.ditto import classify, differences, itc_cycles, pack_cycles, trajectory
from golden.orbis import datm_cycles, ogm_schedule
from golden.system.configs import CU_PES, Layer
from golden.system.model import array_compute_cycles
from golden.systolic import cycles as sa_cycles

FAST = gs.Dram("ideal", 1e30, 1, 1.0, "test: never the bottleneck")
TINY = gs.Workload("tiny", tokens=8, hidden=16, depth=2, heads=2, mlp=32, steps=4)


def tiny_array(**kw):
    base = dict(array=(4, 4), instances=1, dram=FAST, sram_bytes=64 * 1024)
    base.update(kw)
    return dataclasses.replace(gs.RADIT, **base)


def sa_total(m, k, n, rows=4, cols=4):
    return sa_cycles(m, k, n, rows, cols).total


# --------------------------------------------------------------------------- cycles

def test_baseline_cycles_are_the_systolic_model_summed():
    acc = tiny_array()
    skip = np.zeros((TINY.steps, 2 * TINY.depth))
    run = gs.radit_run(TINY, acc, skip)
    per_step = sum(lay.count * sa_total(lay.m, lay.k, lay.n) for _, lay in TINY.layers())
    assert run["base"].compute == TINY.steps * per_step
    assert run["base"].cycles == run["base"].compute  # an ideal DRAM never stalls


def test_radit_cycles_count_computed_sub_blocks_and_the_ccu():
    acc = tiny_array()
    rng = np.random.default_rng(3)
    skip = rng.random((TINY.steps, 2 * TINY.depth)) < 0.5
    skip[0] = False
    run = gs.radit_run(TINY, acc, skip)
    want = 0
    for t in range(TINY.steps):
        for b, lay in TINY.layers():
            n = 2 * b + (0 if lay.sub == "attn" else 1)
            if not skip[t, n]:
                want += lay.count * sa_total(lay.m, lay.k, lay.n)
    lanes = acc.params["ccu_lanes"]
    want += TINY.steps * 2 * TINY.depth * math.ceil(TINY.tokens * TINY.hidden / lanes)
    assert run["radit"].compute == want
    with pytest.raises(ValueError, match="first step"):
        gs.radit_run(TINY, acc, np.ones((TINY.steps, 2 * TINY.depth)))


def test_several_arrays_split_copies_or_columns():
    acc = tiny_array(instances=4)
    assert array_compute_cycles(Layer("x", 8, 16, 16, 8, "attn", "attention"), acc) == 2 * sa_total(8, 16, 16)
    assert array_compute_cycles(Layer("y", 8, 16, 16, 1, "attn", "linear"), acc) == sa_total(8, 16, 4)


def test_ditto_cycles_are_pack_cycles_summed():
    acts = trajectory(np.random.default_rng(1), 2, (12, 40))
    d = differences(acts[1], acts[0], "temporal")
    cls = classify(d)
    stats = gs.row_stats(cls)
    one_cu = dataclasses.replace(gs.DITTO, compute_units=1, dram=FAST)
    layer = Layer("fc", 12, 40, 40, 1, "mlp", "linear")
    cost = gs.ditto_layer(layer, one_cu, gs.energy_table(one_cu), stats, "temporal")
    assert cost.compute == int(np.sum(pack_cycles(cls))) * -(-40 // CU_PES)
    itc = gs.itc_layer(layer, dataclasses.replace(gs.ITC, compute_units=1, dram=FAST), gs.energy_table(gs.ITC))
    assert itc.compute == itc_cycles(12, 40) * -(-40 // CU_PES)


def test_orbis_reduces_only_rc_steps_sdpa_and_counts_datm():
    w = dataclasses.replace(TINY, tokens=16, steps=8)
    kinds = ogm_schedule(w.steps, 3)
    full = sum(lay.count * sa_total(lay.m, lay.k, lay.n) for _, lay in w.layers())
    r = 4  # round(0.25 * 16)
    red = 0
    for _, lay in w.layers():
        if lay.name.startswith("attention Q"):
            red += lay.count * sa_total(16 - r, lay.k, 16 - r)
        elif lay.name.startswith("attention P"):
            red += lay.count * sa_total(16 - r, 16 - r, lay.n)
        else:
            red += lay.count * sa_total(lay.m, lay.k, lay.n)
    block = full // w.depth
    # A fast engine hides behind the block; a one-lane engine with many
    # iterations does not.
    for lanes, iterations in ((16, 2), (1, 10)):
        acc = dataclasses.replace(gs.ORBIS, array=(4, 4), instances=1, dram=FAST,
                                  params={**gs.ORBIS.params, "num_dst": 2, "ch_lanes": lanes})
        none = gs.orbis_run(w, acc, 0.0, iterations=iterations)
        assert none["orbis"].compute == none["base"].compute
        run = gs.orbis_run(w, acc, 0.25, iterations=iterations)
        assert run["orbis"].compute == kinds.count("FC") * full + kinds.count("RC") * red
        dc = datm_cycles(16, 16, 2, lanes, iterations, r)
        assert run["datm_cycles_per_fc_step"] == w.depth * dc
        assert run["datm_exposed_per_fc_step"] == w.depth * max(0, dc - block)
        assert run["orbis"].cycles == run["orbis"].compute + kinds.count("FC") * run["datm_exposed_per_fc_step"]
        assert (run["datm_exposed_per_fc_step"] > 0) == (lanes == 1)


# --------------------------------------------------------------------------- DRAM bytes

def _count_bytes(w, a, wt, o, burst):
    rnd = lambda n: -(-n // burst) * burst  # noqa: E731
    total = 0
    for _, lay in w.layers():
        total += lay.count * (rnd(lay.m * lay.k * a) + rnd(lay.m * lay.n * o))
        total += lay.count * (rnd(lay.k * lay.n * wt) if lay.kind == "linear" else rnd(lay.k * lay.n * a))
    return total


@pytest.mark.parametrize("burst", [1, 64])
def test_dram_bytes_equal_a_count_from_the_shapes(burst):
    acc = tiny_array(dram=gs.Dram("t", 1e30, burst, 1.0, "test"))
    run = gs.radit_run(TINY, acc, np.zeros((TINY.steps, 2 * TINY.depth)))
    assert run["base"].dram_bytes == TINY.steps * _count_bytes(TINY, 2, 2, 2, burst)
    elements = TINY.tokens * TINY.hidden
    codes = -(-(elements // 2) // burst) * burst
    assert run["ccu"].dram["codes"] == 2 * TINY.depth * (2 * TINY.steps - 1) * codes


def test_ditto_temporal_mode_reads_previous_inputs_and_outputs():
    acc = dataclasses.replace(gs.DITTO, compute_units=1, dram=gs.Dram("t", 1e30, 1, 1.0, "test"))
    layer = Layer("fc", 8, 32, 16, 1, "mlp", "linear")
    st = gs.mix_row_stats(32, (0.5, 0.5, 0.0))
    table = gs.energy_table(acc)
    act = gs.ditto_layer(layer, acc, table, st, "act")
    tmp = gs.ditto_layer(layer, acc, table, st, "temporal")
    assert act.dram_bytes == 8 * 32 + 32 * 16 + 8 * 16
    assert tmp.dram_bytes == act.dram_bytes + 8 * 32 + 2 * 8 * 16 * 4


def test_dram_model():
    d = gs.Dram("t", 10e9, 32, 2.0, "test")
    assert d.moved(0) == 0 and d.moved(1) == 32 and d.moved(64) == 64
    assert d.cycles(100, 1e9) == 10
    assert d.energy_pj(4) == 64.0
    with pytest.raises(ValueError, match="burst"):
        gs.Dram("t", 1e9, 0, 1.0, "x")


# --------------------------------------------------------------------------- energy

def test_energy_table_sources_and_scaling():
    for cap, pj in gs.energy.SRAM_POINTS:
        assert gs.sram_pj_per_bit(cap) == pytest.approx(pj)
    caps = [64, 1024, 8192, 20000, 32768, 500000, 1 << 20, 192 << 20]
    e = [gs.sram_pj_per_bit(c) for c in caps]
    assert all(a <= b for a, b in zip(e, e[1:]))
    t45 = gs.EnergyTable.at(45, 3.9, "x")
    t28 = gs.EnergyTable.at(28, 3.9, "x")
    assert t28.mac["FP16"] == pytest.approx(t45.mac["FP16"] * 28 / 45)
    assert t45.mac["A4W8"] < t45.mac["INT8"] < t45.mac["FP16"]
    assert t28.dram_bit == t45.dram_bit  # DRAM is not scaled by the accelerator's node
    with pytest.raises(ValueError, match="capacity"):
        gs.sram_pj_per_bit(0)


def test_energy_is_monotone():
    acc = tiny_array(dram=gs.Dram("t", 1e30, 1, 10.0, "test"))
    S, N = TINY.steps, 2 * TINY.depth
    few, many = np.zeros((S, N)), np.zeros((S, N))
    few[1:, 0] = 1
    many[1:] = 1
    e = [gs.radit_run(TINY, acc, s)["radit"].energy_pj for s in (np.zeros((S, N)), few, many)]
    assert e[0] > e[1] > e[2]
    dearer = tiny_array(dram=gs.Dram("t", 1e30, 1, 20.0, "test"))
    assert gs.radit_run(TINY, dearer, few)["radit"].energy_pj > e[1]
    bigger = tiny_array(dram=acc.dram, sram_bytes=1 << 20)
    assert gs.radit_run(TINY, bigger, few)["radit"].energy_pj > e[1]
    older = tiny_array(dram=acc.dram, node_nm=45)
    assert gs.radit_run(TINY, older, few)["radit"].energy_pj > e[1]


# --------------------------------------------------------------------------- headline figures move with their statistics

def test_radit_speedup_follows_the_skip_ratio():
    S, N = gs.DIT_XL2.steps, 2 * gs.DIT_XL2.depth
    lo = gs.radit_run(gs.DIT_XL2, gs.RADIT, gs.expand_skip([0.2], S, N))
    hi = gs.radit_run(gs.DIT_XL2, gs.RADIT, gs.expand_skip([0.4], S, N))
    s_lo = lo["base"].cycles / lo["radit"].cycles
    s_hi = hi["base"].cycles / hi["radit"].cycles
    assert 1 < s_lo < s_hi
    assert hi["radit"].energy_pj < lo["radit"].energy_pj


def test_ditto_speedup_follows_the_class_mix():
    def speed(mix):
        stats = {k: gs.mix_row_stats(k, mix, rows=32) for k in {lay.k for _, lay in gs.DIT_XL2.layers()}}
        run = gs.ditto_run(gs.DIT_XL2, gs.DITTO, gs.ITC, lambda lay: stats[lay.k])
        return run["base"].cycles / run["ditto"].cycles

    assert speed((0.6, 0.38, 0.02)) > speed((0.3, 0.6, 0.1))


def test_orbis_speedup_follows_the_reduction_ratio():
    def speed(ratio):
        run = gs.orbis_run(gs.COGVIDEOX_5B, gs.ORBIS, ratio, iterations=4)
        return run["base"].cycles / run["orbis"].cycles

    assert 1 < speed(0.3) < speed(0.6)


def test_headline_report_is_computed(tmp_path, monkeypatch):
    import json

    from reports import system

    res = system.run(tmp_path, quick=True, combined=False)
    data = json.loads((tmp_path / "system.json").read_text())
    for key in ("radit", "ditto", "orbis"):
        for fig in ("speedup", "energy_saving", "dram_overhead", "paper"):
            assert fig in data[key]
        for fig in ("speedup", "energy_saving", "dram_overhead"):
            assert data[key][fig] is not None or fig in data[key]["reason"]
    assert data["orbis"]["speedup_vs_a100"] is None and "speedup_vs_a100" in data["orbis"]["reason"]
    assert (tmp_path / "system.md").read_text().startswith("# System model")
    # The figure is a function of the statistic: another skip profile, another speedup.
    moved = system.radit_headline([0.5], "test", 0.41)
    assert moved["speedup"] > res["radit"]["speedup"]
    # The paper's figure is quoted, ours is not it.
    assert data["radit"]["speedup"] != data["radit"]["paper"]["speedup"]


# --------------------------------------------------------------------------- seams and shared facts

def test_validate_cycles_seam():
    meas = [(m, k, n, sa_total(m, k, n)) for m, k, n in ((8, 16, 16), (3, 5, 7), (64, 4, 4))]
    assert gs.validate_cycles(gs.systolic_cycles, meas, rows=4, cols=4) == []
    meas[1] = (3, 5, 7, meas[1][3] + 1)
    bad = gs.validate_cycles(gs.systolic_cycles, meas, rows=4, cols=4)
    assert len(bad) == 1 and bad[0]["measured"] == bad[0]["model"] + 1
    # Another cycle model plugs into the system model in place of the array's.
    acc = tiny_array()
    zero = np.zeros((TINY.steps, 2 * TINY.depth))
    a = gs.radit_run(TINY, acc, zero)["base"].compute
    b = gs.radit_run(TINY, acc, zero, cycle_model=lambda *s: 2 * gs.systolic_cycles(*s))["base"].compute
    assert b == 2 * a


def test_radit_top_parameters_and_pricing():
    """RaditTop checks its parameters; a skipped sub-block costs its dropped
    program and the replay, a computed one its runs (docs/SPEC.md "System model")."""
    from golden import accel as ga
    from golden import radit_accel as gr

    cfg = gr.Config(gemm=ga.Config(rows=4, cols=4, a_depth=32, w_depth=64, acc_depth=32, stream_bytes=4))
    with pytest.raises(TypeError, match="cfg"):
        gs.RaditTop(ga.Config())
    with pytest.raises(TypeError, match="queue_depth"):
        gs.RaditTop(cfg, 8.0)
    with pytest.raises(ValueError, match="queue_depth"):
        gs.RaditTop(cfg, 1)
    top = gs.RaditTop(cfg, 8)
    fc = Layer("fc", 4, 8, 8, 1, "mlp", "linear")
    att = Layer("attention Q K^T", 4, 8, 4, 1, "attn", "attention")
    assert top.layer(att).cycles == 0 and top.layer(att).dram_bytes == 0   # SDPA is the host's
    # Two linears: 8 dropped commands and BLOCK_END replaying 8 rows x 4 beats, in 2 runs of <= 8 commands.
    sk = top.skipped([fc, fc])
    assert sk.cycles == 8 * 2 + (2 + 32 + 1) + 2 and sk.dram == {"reuse_out": 32 * 4}
    want = sum(gr.FORWARD_OVERHEAD + ga.command_cycles(c, cfg.gemm) + 1 for c in top.program(fc)) + 1
    assert top.layer(fc).cycles == want
    assert top.layer(fc).dram == {"act_in": 32, "weights": 64, "act_out": 8 * 4 * 4}


def test_ditto_counts_agree_with_the_rtl_configuration():
    from hdl.accel import configs

    assert gs.configs.DITTO_LANES == configs.DITTO_LANES
    assert gs.DITTO.compute_units == configs.DITTO_CUS


def test_workload_layers_come_from_the_systolic_layer_list():
    from golden.systolic import dit_xl2_layers

    layers = gs.DIT_XL2.block_layers(0)
    assert [(lay.m, lay.k, lay.n, lay.count) for lay in layers] == [t[1:] for t in dit_xl2_layers()]
    latte = gs.LATTE_XL2.block_layers(1)  # temporal block: 256 sequences of 16 frames
    qk = [lay for lay in latte if lay.name.startswith("attention Q")][0]
    assert (qk.m, qk.n, qk.count) == (16, 16, 16 * 256)
    assert gs.LATTE_XL2.macs_per_step() < 16 * gs.DIT_XL2.macs_per_step()


# --------------------------------------------------------------------------- combined hooks

def test_combined_hooks_keep_the_last_computed_state_of_skipped_blocks():
    torch = pytest.importorskip("torch")
    from reports.system import _combined_hooks, digits_cycles
    from workloads.dit import DiT, DiTConfig, sample
    from workloads.hooks import DittoHooks, OrbisHooks, RaditHooks
    from workloads.traces import calibrate

    torch.manual_seed(0)
    model = DiT(DiTConfig(depth=2, hidden=32, heads=2))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.1)
    steps, labels = 5, np.array([1, 2])
    scales = calibrate(model, samples=2, seed=1, steps=steps)
    _, Combined = _combined_hooks()
    # A threshold no Δ reaches: every sub-block after step 0 is skipped.
    comb = Combined(RaditHooks(steps, "fixed", fixed_threshold=10 ** 9), DittoHooks(model, scales),
                    OrbisHooks(4, "datm", num_dst=4))
    sample(model, labels, seed=0, steps=steps, hooks=comb)

    class FirstStep(DittoHooks):
        def begin_step(self, index, t):
            if index == 1:
                self.after_first = {k: (c.copy(), o.copy()) for k, (c, o) in self.prev.items()}
            super().begin_step(index, t)

    first = FirstStep(model, scales)
    sample(model, labels, seed=0, steps=steps, hooks=first)
    for key, (cur, out) in first.after_first.items():
        assert np.array_equal(comb.ditto.prev[key][0], cur)
        assert np.array_equal(comb.ditto.prev[key][1], out)
        assert comb.ditto.stats[3][key]["skipped"].all()
    for block in range(2):  # step 4 is FC but skipped: the pairs of step 0 stay
        for i in range(2):
            assert np.array_equal(comb.orbis.current[block][i], comb.orbis.pairs[(0, block)][i])
    cfg = model.cfg
    skip = comb.radit.records()["skip"]
    all_on = digits_cycles(cfg, steps, images=2)["mean"]
    only_ccu = digits_cycles(cfg, steps, skip=skip, images=2)["mean"]
    ccu = steps * 2 * cfg.depth * -(-(cfg.tokens * cfg.hidden) // 16)
    assert only_ccu == pytest.approx(all_on / steps + ccu)
