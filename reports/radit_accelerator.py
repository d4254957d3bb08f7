"""RADiT accelerator on the digits DiT: DDIM sampling with every DNN operation
block's GEMMs and every skip decision on the RTL (Verilator), the sampler
continuing from the RTL's outputs and decisions (``sim.accel.radit_dit``).

Per schedule (linear, cosine α) one RTL run with skipping and one shared
no-skip RTL run (``CONTROL.no_skip``: every block computed, the same
commands otherwise; its cycles do not depend on α). Reported:
``skip_fraction``, ``rtl_cycles``, ``rtl_cycles_noskip``, ``speedup``, the
weight and activation bytes not loaded, ``skip_map_equals_golden`` (the RTL
run's decisions against the golden accelerator driving the same sampler
alone), ``svc_agreement`` (fraction of decisions equal to the software
RADiT of ``workloads.hooks.RaditHooks`` on the FP32 sampler) and ``mse`` of
the sample against the no-skip sample. One image (the accelerator sees one
image at a time). A full run is DDIM-50; ``quick`` runs DDIM-``QUICK_STEPS``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sim import runner
from sim.accel.radit_dit import BENCH

STEPS = 50
QUICK_STEPS = 20
LABEL = 3
SEED = 0


def _golden(steps, schedule, scales, model, cfg, no_skip=False):
    from sim.accel.radit_dit import AccelHooks, GoldenBackend
    from workloads.dit import sample

    be = GoldenBackend(cfg, schedule, steps, no_skip=no_skip, queue_depth=BENCH["QUEUE_DEPTH"])
    hooks = AccelHooks(model, scales, be, steps, cfg)
    x = sample(model, [LABEL], seed=SEED, steps=steps, hooks=hooks)
    return x.numpy().ravel(), hooks.records(), be


def _software(steps, schedule, model):
    from workloads.dit import sample
    from workloads.hooks import RaditHooks

    hooks = RaditHooks(steps, schedule)
    sample(model, [LABEL], seed=SEED, steps=steps, hooks=hooks)
    return hooks.records()["skip"][:, :, 0]


def _plot(path, runs, steps):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(runs)
    picks = [0, 5, 11]
    fig, axes = plt.subplots(len(picks), len(names), figsize=(4.5 * len(names), 2.5 * len(picks)),
                             sharex=True, squeeze=False)
    ts = np.arange(steps, 0, -1)[1:]
    for col, name in enumerate(names):
        r = runs[name]
        d, th, sk = (np.array(r[k]) for k in ("delta", "theta", "skip"))
        for row, n in enumerate(picks):
            ax = axes[row][col]
            ax.plot(ts, d[1:, n], color="tab:blue", lw=1.2, label="Δ (RTL)")
            ax.step(ts, np.where(th[1:, n] >= 0, th[1:, n], np.nan), where="mid", color="tab:red", ls="--",
                    lw=1.0, label="θ (RTL)")
            s = sk[1:, n].astype(bool)
            ax.scatter(ts[s], d[1:, n][s], s=10, color="tab:orange", zorder=3, label="skipped")
            if row == 0:
                ax.set_title(f"{name}: skip fraction {sk.mean():.2f}", fontsize=9)
            if col == 0:
                ax.set_ylabel(f"sub-block {n} ({'attn' if n % 2 == 0 else 'MLP'})", fontsize=8)
            ax.tick_params(labelsize=7)
    axes[0][0].invert_xaxis()
    axes[0][0].legend(fontsize=6)
    fig.suptitle(f"digits DiT, DDIM-{steps}: Δ and θ from the RTL run (cf. RADiT Fig. 5)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(out_dir: Path, quick: bool = False) -> dict:
    import torch

    from golden.radit import alpha_table
    from sim.accel.radit_dit import bench_config
    from workloads.traces import calibrate, get_model

    torch.set_num_threads(1)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    steps = QUICK_STEPS if quick else STEPS
    cfg = bench_config()
    jobs = [{"schedule": "linear", "no_skip": False}, {"schedule": "cosine", "no_skip": False},
            {"schedule": "linear", "no_skip": True}]
    res = runner.run("radit_accelerator", BENCH, testcase="dit_sampling", seed=1,
                     name=f"bench-radit-accelerator{'-quick' if quick else ''}",
                     args={"dit": {"steps": steps, "label": LABEL, "seed": SEED, "runs": jobs}})
    rtl = res["result"]["dit"]
    noskip = rtl[2]
    model, _, _ = get_model()
    scales = calibrate(model, samples=20, steps=steps)
    x_full = np.array(noskip["sample"])
    lb = cfg.gemm
    schedules = {}
    import golden.system as gs
    from golden.system.radit_top import RaditTop

    mc = model.cfg
    workload = gs.Workload("digits DiT", tokens=mc.tokens, hidden=mc.hidden, depth=mc.depth, heads=mc.heads,
                           mlp=mc.mlp_ratio * mc.hidden, steps=steps)
    top = RaditTop(cfg, BENCH["QUEUE_DEPTH"])
    for r in rtl[:2]:
        sch = r["schedule"]
        gx, grec, gbe = _golden(steps, sch, scales, model, cfg)
        skip = np.array(r["skip"]).astype(bool)
        soft = _software(steps, sch, model)
        c = r["counters"]
        sysrun = gs.radit_run(workload, gs.RADIT, skip.astype(float), top=top)
        schedules[sch] = {
            "steps": steps, "skip_fraction": float(skip.mean()), "blocks_skipped": int(skip.sum()),
            "rtl_cycles": r["cycles"], "rtl_cycles_noskip": noskip["cycles"],
            "speedup": noskip["cycles"] / r["cycles"],
            "golden_cycles": gbe.cycles,
            # docs/SPEC.md "System model", validation: the system model on this top, fed the RTL's skip map.
            "system_model_cycles": sysrun["radit"].cycles, "system_model_cycles_noskip": sysrun["base"].cycles,
            "system_model_equals_rtl": bool(sysrun["radit"].cycles == r["cycles"]
                                            and sysrun["base"].cycles == noskip["cycles"]),
            "weight_bytes_not_loaded": c["w_rows_skipped"] * lb.cols,
            "activation_bytes_not_loaded": c["a_rows_skipped"] * lb.rows,
            "commands_dropped": c["dropped"],
            "skip_map_equals_golden": bool(np.array_equal(skip, grec["skip"].astype(bool))),
            "sample_equals_golden": bool(np.array_equal(np.array(r["sample"]), gx)),
            "svc_agreement": float((skip == soft).mean()),
            "mse": float(np.mean((np.array(r["sample"]) - x_full) ** 2)),
            "sim_wall_s": r["wall_s"],
        }
    lin = rtl[0]
    result = {"config": BENCH, "steps": steps, "quick": quick, "image_label": LABEL, "seed": SEED,
              "schedules": schedules, "deltas": lin["delta"], "thetas": lin["theta"], "skips": lin["skip"],
              "alphas": {s: alpha_table(steps, s, cfg.alpha_frac).tolist() for s in ("linear", "cosine")},
              "noskip_sim_wall_s": noskip["wall_s"]}
    _plot(out_dir / "radit_accelerator.png", {r["schedule"]: r for r in rtl[:2]}, steps)
    lines = [f"# RADiT accelerator on the digits DiT (DDIM-{steps}, RTL in Verilator)", "",
             f"One image (label {LABEL}, seed {SEED}); 16x16 INT8 array, 16-byte streams; every sub-block "
             "(6 transformer blocks x attention / MLP = 12 DNN operation blocks) is BLOCK_BEGIN + its GEMM "
             "programs (qkv+proj, fc1+fc2) on the RTL; non-linear operations on the host. "
             "No-skip: the same run with CONTROL.no_skip.", "",
             "| schedule | skip fraction | RTL cycles | no-skip cycles | speedup | W bytes not loaded | "
             "A bytes not loaded | skip map = golden | system model = RTL | SVC agreement | MSE vs no-skip |",
             "|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|"]
    for sch, s in schedules.items():
        lines.append(f"| {sch} | {s['skip_fraction']:.3f} | {s['rtl_cycles']:,} | {s['rtl_cycles_noskip']:,} | "
                     f"{s['speedup']:.3f} | {s['weight_bytes_not_loaded']:,} | "
                     f"{s['activation_bytes_not_loaded']:,} | {s['skip_map_equals_golden']} | "
                     f"{s['system_model_equals_rtl']} | "
                     f"{s['svc_agreement']:.3f} | {s['mse']:.2e} |")
    lines += ["", "System model = RTL: `golden.system.radit_run` on this top (`RaditTop`), fed the RTL's "
              "skip map, predicts both runs' cycles (skip and no-skip) exactly.",
              "", "SVC agreement: fraction of (step, sub-block) decisions equal to the software RADiT "
              "(`workloads.hooks.RaditHooks`, FP32 sampler).", "Plot: `radit_accelerator.png`."]
    if quick:
        lines += ["", f"Quick run: DDIM-{steps} instead of DDIM-{STEPS}."]
    text = "\n".join(lines) + "\n"
    (out_dir / "radit_accelerator.md").write_text(text)
    (out_dir / "radit_accelerator.json").write_text(json.dumps(result, indent=1))
    print(text)
    return result
