"""Ditto accelerator on the digits DiT: DDIM sampling with every linear layer
(qkv, proj, fc1, fc2 of the six blocks) run as a LAYER command with Defo in
the loop (``sim.accel.ditto_dit``).

The whole run goes through the golden accelerator (``golden.ditto_accel``,
exact values and cycles); a slice of it -- the first ``RTL_STEPS`` steps of
the same run, every layer, Defo's steps 0, 1 and 2 -- runs on the RTL in
Verilator, checked against the golden accelerator in lockstep, and its
CYCLES are compared with the golden run's for the same commands
(``rtl_cycles == model_cycles``). Reported: ``bit_exact`` (every product
equal to the plain INT8 ``A_q·W_q``; the sample equal to the W8A8 sampler's),
``model_cycles`` (whole run), the Defo-recorded layer cycles against an
iso-area A8W8 ITC accelerator (``itc_cycles_iso_area``, ``speedup_vs_itc``:
ITC PEs = Ditto PEs x the measured A4W8/A8W8 PE area ratio, four INT8
multipliers each, no skipping, the same memory model on activation traffic),
the same at other memory bandwidths, the temporal-difference class mix per
layer type and step range (real traces), and ``layers``: per layer its
Defo entry's ``cycles_act``, ``cycles_diff`` and ``decision``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from golden import ditto_accel as gd
from sim import runner
from sim.accel.ditto_dit import BENCH, BW_LOG2

STEPS = 50
QUICK_STEPS = 20
RTL_STEPS = 3
LABEL = 3
SEED = 0
CALIB = 20
BANDWIDTHS = (BW_LOG2, 6, None)   # 16 and 64 bytes a cycle, compute only
RANGES = ((1, 10), (11, 25), (26, 49))
PAPER_AREA_RATIO = 27648 / 39398


def area_ratio(root: Path) -> tuple[float, str]:
    """A4W8 / A8W8 PE area: the synthesis records in ``root`` (``make synth``), else
    synthesised here (Yosys, best of plain and Booth mapping)."""
    try:
        d = json.loads((root / "ditto_pe.json").read_text())
        i = json.loads((root / "itc_pe.json").read_text())
        return d["area_um2"] / i["area_um2"], f"synthesised ({root})"
    except (OSError, KeyError, ValueError):
        pass
    try:
        from synth.flow import synthesize

        d = synthesize("ditto_pe", out_root=root)
        i = synthesize("itc_pe", out_root=root)
        return d["area_um2"] / i["area_um2"], f"synthesised now ({root})"
    except Exception as exc:   # no Yosys: say so, use the paper's
        return PAPER_AREA_RATIO, f"paper 27,648 / 39,398 (synthesis failed: {exc})"


def _golden(model, scales, steps, cfg):
    from sim.accel.ditto_dit import DittoAccelHooks, GoldenBackend
    from workloads.dit import sample

    be = GoldenBackend(cfg, queue_depth=BENCH["QUEUE_DEPTH"])
    hooks = DittoAccelHooks(model, scales, be, cfg)
    x = sample(model, [LABEL], seed=SEED, steps=steps, hooks=hooks)
    return x, hooks, be


def itc_layer(rec, n_itc: float, cfg) -> dict:
    """An A8W8 ITC accelerator of ``n_itc`` PEs on the same layer: four INT8
    products a PE-cycle, every element, the output columns spread over the PEs
    (throughput-equivalent, so a fractional PE count is fine), plus the
    compute units' pipeline (4 cycles, as Ditto's); memory: the activation
    mode's traffic at the same bandwidth."""
    m, k, n = rec["m"], rec["k"], rec["n"]
    compute = int(np.ceil(m * -(-k // 4) * n / n_itc)) + 4
    memory = gd.memory_cycles(m, k, n, "act", cfg)
    return {"compute": compute, "memory": memory, "cycles": max(compute, memory)}


def _summary(hooks, cfg, n_itc):
    """Ditto's Defo-recorded cycles (linear layers; attention: its LAYERs + TADD) against the ITC model
    on the same products (attention on the same zero-padded shapes the host issues)."""
    recs = hooks.layers
    lin = sum(r["cycles"] for r in recs)
    itc_lin = sum(itc_layer(r, n_itc, cfg)["cycles"] for r in recs)
    att = sum(r["cycles"] for r in hooks.attn)
    itc_att = sum(itc_layer(r, n_itc, cfg)["cycles"] for r in hooks.attn)
    modes = {}
    for r in recs:
        if r["step"] >= 2:
            modes[r["mode"]] = modes.get(r["mode"], 0) + 1
    return {"layer_cycles": lin + att, "itc_cycles_iso_area": itc_lin + itc_att,
            "speedup_vs_itc": (itc_lin + itc_att) / (lin + att),
            "linear": {"cycles": lin, "itc_cycles_iso_area": itc_lin, "speedup_vs_itc": itc_lin / lin},
            "attention": {"cycles": att, "itc_cycles_iso_area": itc_att,
                          "speedup_vs_itc": itc_att / att if att else None, "products": len(hooks.attn),
                          "exact": all(r["exact"] for r in hooks.attn)},
            "compute_cycles": sum(r["compute"] for r in recs), "memory_cycles": sum(r["memory"] for r in recs),
            "later_step_modes": modes}


def _mix(hooks):
    out = {}
    for lo, hi in RANGES:
        for name in ("qkv", "proj", "fc1", "fc2", "qk.a", "qk.b", "pv.a", "pv.b"):
            rows = np.array([r[2:] for r in hooks.mix if r[1] == name and lo <= r[0] <= hi], dtype=np.int64)
            if rows.size:
                c = rows.sum(axis=0)
                out[f"{name} steps {lo}-{hi}"] = dict(zip(("zero", "low", "full"), (100 * c / c.sum()).tolist()))
    allc = np.array([r[2:] for r in hooks.mix], dtype=np.int64).sum(axis=0)
    out["all"] = dict(zip(("zero", "low", "full"), (100 * allc / allc.sum()).tolist()))
    return out


def _layers(hooks):
    last = {}
    for r in hooks.layers:
        last[r["name"]] = r
    out = []
    for name, r in last.items():
        out.append({"name": name, "cycles_act": r["cycles_act"], "cycles_diff": r["cycles_diff"],
                    "decision": "diff" if r["decision"] else "act", "mode_later": r["mode"],
                    "consistent": r["decision"] == (min(r["cycles_diff"], 0xFFFF) < min(r["cycles_act"], 0xFFFF))})
    return out


def run(out_dir: Path, quick: bool = False) -> dict:
    import torch

    from sim.accel.ditto_dit import bench_config
    from workloads.dit import sample
    from workloads.hooks import Int8Hooks
    from workloads.traces import calibrate, get_model

    torch.set_num_threads(1)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    steps = QUICK_STEPS if quick else STEPS
    model, _, _ = get_model()
    scales = calibrate(model, samples=CALIB, steps=steps)
    ratio, ratio_src = area_ratio(out_dir.parent / "synth")
    cfg = bench_config()
    n_itc = cfg.cols * ratio
    ref = sample(model, [LABEL], seed=SEED, steps=steps, hooks=Int8Hooks(model, scales))

    x, hooks, be = _golden(model, scales, steps, cfg)
    main = _summary(hooks, cfg, n_itc)
    sweep = {}
    for bw in BANDWIDTHS:
        c = replace(cfg, bw_log2=bw or 0, mem_enable=bw is not None)
        label = f"{1 << bw} B/cycle" if bw is not None else "compute only"
        _, h, b = _golden(model, scales, steps, c) if c != cfg else (x, hooks, be)
        sweep[label] = {**_summary(h, c, n_itc), "model_cycles": b.cycles}

    res = runner.run("ditto_accelerator", BENCH, testcase="dit_slice", seed=1,
                     name=f"bench-ditto-accelerator{'-quick' if quick else ''}",
                     args={"dit": {"steps": steps, "stop_after": RTL_STEPS, "label": LABEL, "seed": SEED,
                                   "calib_samples": CALIB, "bw_log2": BW_LOG2}})
    rtl = res["result"]["dit"]
    gold_slice = [r for r in hooks.layers if r["step"] < RTL_STEPS]
    gold_attn = [r for r in hooks.attn if r["step"] < RTL_STEPS]
    same = [(a["name"], a["step"], a["mode"], a["cycles"], a["decision"], a["run_cycles"]) for a in rtl["layers"]] == \
           [(a["name"], a["step"], a["mode"], a["cycles"], a["decision"], a["run_cycles"]) for a in gold_slice] and \
           [(a["name"], a["step"], a["cycles"], a["run_cycles"]) for a in rtl["attn"]] == \
           [(a["name"], a["step"], a["cycles"], a["run_cycles"]) for a in gold_attn]
    layers = _layers(hooks)
    result = {
        "config": BENCH, "memory_bytes_per_cycle": 1 << BW_LOG2, "steps": steps, "quick": quick,
        "image_label": LABEL, "seed": SEED,
        "bit_exact": bool(hooks.bit_exact and torch.equal(x, ref) and rtl["bit_exact"]),
        "sample_equals_int8_sampler": bool(torch.equal(x, ref)),
        "rtl_slice": {"steps": RTL_STEPS, "layers": len(rtl["layers"]), "attention_products": len(rtl["attn"]),
                      "runs": rtl["runs"],
                      "wall_s": rtl["wall_s"], "layers_equal_golden": bool(same)},
        "rtl_cycles": rtl["cycles"],
        "model_cycles": sum(r["run_cycles"] for r in gold_slice) + sum(r["run_cycles"] for r in gold_attn),
        "model_cycles_full_run": be.cycles,
        **main,
        "area_ratio_a4w8_a8w8": ratio, "area_ratio_source": ratio_src, "itc_pes_iso_area": n_itc,
        "ditto_pes": cfg.cols,
        "bandwidth_sweep": sweep,
        "class_mix_temporal": _mix(hooks),
        "decisions_consistent": all(entry["consistent"] for entry in layers),
        "layers": layers,
    }
    lines = [f"# Ditto accelerator on the digits DiT (DDIM-{steps}, one image)", "",
             f"{cfg.cus} compute units x {cfg.pes} A4W8 PEs ({cfg.cols} output columns a pass), {cfg.lanes}-lane "
             f"encoder; every linear layer (6 blocks x qkv, proj, fc1, fc2) is LOAD A + LAYER + STORE O with its "
             f"own Defo entry, every head's Q·Kᵀ and P·V two difference LAYERs + TADD; memory model "
             f"{1 << BW_LOG2} B/cycle. Whole run on the golden accelerator, the first "
             f"{RTL_STEPS} steps (Defo steps 0, 1, 2 of every layer) on the RTL in Verilator.", "",
             f"- bit_exact: **{result['bit_exact']}** (every product = plain INT8; sample = W8A8 sampler's)",
             f"- RTL slice: rtl_cycles {result['rtl_cycles']:,}, model_cycles {result['model_cycles']:,} "
             f"(equal: {result['rtl_cycles'] == result['model_cycles']}), per-layer cycles/modes/decisions equal "
             f"the golden run: {same}",
             f"- whole run: {be.cycles:,} cycles (CYCLES, loads and stores included); Defo-recorded layer cycles "
             f"{main['layer_cycles']:,}",
             f"- iso-area ITC: A4W8/A8W8 PE area {ratio:.3f} ({ratio_src}) -> {n_itc:.1f} A8W8 PEs; "
             f"itc_cycles_iso_area {main['itc_cycles_iso_area']:,}; **speedup_vs_itc {main['speedup_vs_itc']:.3f}**",
             f"- linear layers: speedup_vs_itc {main['linear']['speedup_vs_itc']:.3f}; attention "
             f"({main['attention']['products']} Q·Kᵀ / P·V products of the INT8-quantised Q, K, P, V, difference "
             f"form, zero-padded to {cfg.cols}; the sampler keeps float SDPA): exact "
             f"{main['attention']['exact']}, speedup_vs_itc {main['attention']['speedup_vs_itc']:.3f}",
             f"- decisions consistent with cycles_diff < cycles_act: {result['decisions_consistent']}", "",
             "| memory | Ditto layer cycles | ITC iso-area | speedup | later-step modes |", "|---|---:|---:|---:|---|"]
    for label, s in sweep.items():
        lines.append(f"| {label} | {s['layer_cycles']:,} | {s['itc_cycles_iso_area']:,} | {s['speedup_vs_itc']:.3f} | "
                     f"{s['later_step_modes']} |")
    lines += ["", "Temporal-difference class mix (real traces of this run, % zero / low / full):", "",
              "| layer, steps | zero | low | full |", "|---|---:|---:|---:|"]
    for k, v in result["class_mix_temporal"].items():
        lines.append(f"| {k} | {v['zero']:.1f} | {v['low']:.1f} | {v['full']:.1f} |")
    lines += ["", "| layer | cycles_act | cycles_diff | decision |", "|---|---:|---:|---|"]
    for entry in layers:
        lines.append(f"| {entry['name']} | {entry['cycles_act']:,} | {entry['cycles_diff']:,} | {entry['decision']} |")
    if quick:
        lines += ["", f"Quick run: DDIM-{steps} instead of DDIM-{STEPS}."]
    text = "\n".join(lines) + "\n"
    (out_dir / "ditto_accelerator.md").write_text(text)
    (out_dir / "ditto_accelerator.json").write_text(json.dumps(result, indent=1, default=float))
    print(text)
    return result
