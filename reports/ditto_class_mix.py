"""Ditto temporal-difference statistics: the zero / low / full class mix of
real traces (the digits DiT's linear-layer inputs over DDIM sampling) beside
the paper's figures (§III-B: 44.48 % zero, 51.52 % low, 3.99 % full), and the
Encoding Unit's packed compute cycles against the A8W8 ITC baseline PE (four
INT8 multipliers, no skipping) on generated trajectories.

The generated trajectories (``golden.ditto.trajectory``) are synthetic: the
default generator's parameters were tuned to land near the paper's mix, so
its agreement with the paper is by construction and is not compared with it;
they serve the cycle comparison and the sensitivity to drift. The paper
comparison is made on the real traces only.

Cycles come from ``golden.ditto.pack_cycles``, the cycle model the encoder
RTL is checked against (tests/test_ditto_encoder.py). Per PE both designs have
four multipliers; the iso-area view scales by the PE area ratio (from
``build/synth/{ditto_pe,itc_pe}.json`` when ``make synth`` has run, else the
paper's 27,648 / 39,398 = 0.70).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from golden.ditto import class_counts, classify, differences, itc_cycles, pack_cycles, run_network, trajectory

PAPER = {"zero": 44.48, "low": 51.52, "full": 3.99}
PAPER_AREA_RATIO = 27648 / 39398

SCENARIOS = [
    # label, trajectory keyword arguments
    ("default generator (tuned to the paper's mix)", {}),
    ("slow drift (0.4 LSB steps, 2% jumps)", {"step_lsb": 0.4, "jump_prob": 0.02}),
    ("fast drift (1.5 LSB steps, 8% jumps)", {"step_lsb": 1.5, "jump_prob": 0.08}),
]


def _area_ratio(root: Path) -> tuple[float, str]:
    try:
        d = json.loads((root / "ditto_pe.json").read_text())
        i = json.loads((root / "itc_pe.json").read_text())
        return d["area_um2"] / i["area_um2"], "synthesised (build/synth)"
    except (OSError, KeyError, ValueError):
        return PAPER_AREA_RATIO, "paper (27,648 / 39,398)"


def scenario(rng, steps, rows, k, kw) -> dict:
    acts = trajectory(rng, steps, (rows, k), **kw)
    counts = np.zeros(3, dtype=np.int64)
    diff_cycles = act_cycles = 0
    for t in range(1, steps):
        d = differences(acts[t], acts[t - 1], "temporal")
        counts += class_counts(d)
        diff_cycles += int(np.sum(pack_cycles(classify(d))))
        act_cycles += int(np.sum(pack_cycles(classify(acts[t]))))
    itc = itc_cycles(rows, k) * (steps - 1)
    act_counts = class_counts(acts[1:])
    pct = 100 * counts / counts.sum()
    return {"zero": pct[0], "low": pct[1], "full": pct[2],
            "act_zero": 100 * act_counts[0] / act_counts.sum(), "act_full": 100 * act_counts[2] / act_counts.sum(),
            "diff_cycles": diff_cycles, "act_cycles": act_cycles, "itc_cycles": itc,
            "diff_vs_itc": diff_cycles / itc, "act_vs_itc": act_cycles / itc,
            "lanes_used": (counts[1] + 2 * counts[2]) / (4 * diff_cycles)}


def real_traces(quick: bool) -> dict | None:
    """Temporal-difference mix of the digits DiT's linear inputs (steps 1..T-1), or None without torch."""
    try:
        import torch

        from workloads.dit import sample
        from workloads.hooks import DittoHooks
        from workloads.traces import calibrate, get_model, labels_for
    except ImportError:
        return None
    torch.set_num_threads(1)
    steps, samples = (20, 2) if quick else (50, 8)
    model, _, _ = get_model()
    scales = calibrate(model, samples=2 if quick else 20, steps=steps)
    hooks = DittoHooks(model, scales)
    sample(model, labels_for(samples, model.cfg.num_classes), seed=0, steps=steps, hooks=hooks)
    counts = sum(st[k]["counts_temporal"].sum(axis=0) for st in hooks.stats[1:] for k in st)
    pct = 100 * counts / counts.sum()
    return {"zero": float(pct[0]), "low": float(pct[1]), "full": float(pct[2]), "steps": steps, "images": samples}


def run(out_dir: Path, quick: bool = False) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    steps, rows, k = (6, 32, 128) if quick else (20, 128, 512)
    rng = np.random.default_rng(2024)
    rows_out = [{"scenario": label, **scenario(rng, steps, rows, k, kw)} for label, kw in SCENARIOS]
    ratio, ratio_src = _area_ratio(out_dir.parent / "synth")

    # Whole run with Defo on a small chain of linear layers.
    x = trajectory(rng, steps, (rows // 2, 64))
    ws = [rng.integers(-128, 128, size=s) for s in ((64, 128), (128, 128), (128, 64))]
    net = run_network(x, ws, shifts=[10, 11, 11])
    exact = all(np.array_equal(o, r) for ot, rt in zip(net["outputs"], net["reference"]) for o, r in zip(ot, rt))
    net_cycles = sum(map(sum, net["cycles"]))
    net_itc = sum(map(sum, net["itc_cycles"]))

    real = real_traces(quick)
    lines = ["# Ditto temporal differences: class mix and packed cycles", "",
             "## Against the paper: real traces", "",
             "| source | zero % | low % | full % |", "|---|---:|---:|---:|",
             f"| paper (Fig. 5, §III-B) | {PAPER['zero']:.2f} | {PAPER['low']:.2f} | {PAPER['full']:.2f} |"]
    if real:
        lines.append(f"| digits DiT, DDIM-{real['steps']}, {real['images']} images (linear-layer inputs) | "
                     f"{real['zero']:.2f} | {real['low']:.2f} | {real['full']:.2f} |")
    else:
        lines.append("| digits DiT | (torch not installed: no real traces) | | |")
    lines += ["", "## Generated trajectories (synthetic: the default generator is tuned to the paper's mix, "
              "so its match is by construction and is not a comparison)", "",
              f"{steps} timesteps of {rows} rows × K = {k} INT8 activations "
              "(golden.ditto.trajectory); differences of steps 2..T. Cycles per PE (4 multipliers) "
              "from the SPEC packing rule (golden.ditto.pack_cycles, the encoder RTL's cycle model); "
              "A8W8 ITC baseline: K/4 cycles per row.", "",
              "| generator | zero % | low % | full % | Ditto cycles / ITC | act-mode cycles / ITC | lanes busy |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows_out:
        lines.append(f"| {r['scenario']} | {r['zero']:.2f} | {r['low']:.2f} | {r['full']:.2f} | "
                     f"{r['diff_vs_itc']:.3f} | {r['act_vs_itc']:.3f} | {100 * r['lanes_used']:.1f} % |")
    base = rows_out[0]
    lines += ["", f"PE area ratio A4W8 / A8W8: {ratio:.3f} ({ratio_src}). Iso-area, Ditto has "
              f"{1 / ratio:.2f}× the PEs, so its compute time relative to ITC is "
              f"{base['diff_vs_itc'] * ratio:.3f} on the default trajectory "
              f"(speed-up {1 / (base['diff_vs_itc'] * ratio):.2f}×; compute only, no memory stalls).", "",
              f"Whole run with Defo (3 linear layers, {steps} steps): {net_cycles} packed cycles vs "
              f"{net_itc} ITC cycles ({net_cycles / net_itc:.3f}); layer modes after step 2: "
              f"{net['modes'][-1]}; outputs equal plain INT8 matmuls: {exact}."]
    text = "\n".join(lines) + "\n"
    (out_dir / "ditto_class_mix.md").write_text(text)
    result = {"real_traces": real, "scenarios": rows_out, "scenarios_are_synthetic": True, "paper": PAPER,
              "area_ratio": ratio, "area_ratio_source": ratio_src,
              "network": {"cycles": net_cycles, "itc_cycles": net_itc, "exact": exact,
                          "modes": net["modes"][-1]}}
    (out_dir / "ditto_class_mix.json").write_text(json.dumps(result, indent=1, default=float))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        labels = ["paper"] + (["digits DiT (real)"] if real else []) + \
            [f"synthetic {n + 1}" for n in range(len(rows_out))]
        mix = np.array([[PAPER["zero"], PAPER["low"], PAPER["full"]]] + ([[real["zero"], real["low"], real["full"]]]
                                                                         if real else [])
                       + [[r["zero"], r["low"], r["full"]] for r in rows_out])
        fig, ax = plt.subplots(figsize=(6, 3))
        left = np.zeros(len(labels))
        for c, name in enumerate(("zero", "low", "full")):
            ax.barh(labels, mix[:, c], left=left, label=name)
            left += mix[:, c]
        ax.set_xlabel("% of temporal differences")
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / "ditto_class_mix.png", dpi=120)
        plt.close(fig)
    except ImportError:
        pass
    print(text)
    return result
