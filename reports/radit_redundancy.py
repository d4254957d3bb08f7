"""RADiT redundancy detection on a DiT-XL/2-shaped block stack (golden models).

Runs Algorithm 1 with Algorithm 2's dynamic threshold (linear and cosine α,
fixed-point α as the DTSM computes it) and with one fixed threshold over a
seeded :class:`golden.radit.ToyDiT` trajectory, and reports per policy the skip
ratio of every block, the fraction of block computations saved and the error
of the final latent against computing every block, plus a plot of Δ and θ over
the timesteps for a few blocks in the manner of the paper's Fig. 5.

The default shape is DiT-XL/2's: 28 transformer blocks x (attention, MLP) = 56
DNN operation blocks of 256 tokens x 1152 channels, 50 DDIM timesteps;
``--quick`` scales it down to 16 blocks of 64 x 128 over 30 timesteps. The
fixed threshold is the quantile of the all-compute run's Δ equal to the linear
schedule's skip fraction, so that the comparison is at similar savings.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import numpy as np

from golden.radit import ToyDiT, redundancy_aware_run

FULL = {"blocks": 56, "tokens": 256, "channels": 1152, "T": 50, "rank": 16}
QUICK = {"blocks": 16, "tokens": 64, "channels": 128, "T": 30, "rank": 16}
SEED = 0


def _plot(path: Path, runs: dict, full, shape: dict, picks: list[int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    T = shape["T"]
    ts = np.arange(T, 0, -1)[1:]  # timesteps with a Δ
    names = list(runs)
    fig, axes = plt.subplots(len(picks), len(names), figsize=(4.2 * len(names), 2.6 * len(picks)),
                             sharex=True, squeeze=False)
    for col, name in enumerate(names):
        r = runs[name]
        for row, n in enumerate(picks):
            ax = axes[row][col]
            ax.plot(ts, full.delta[1:, n], color="0.6", lw=1.2, label="original Δ (all computed)")
            ax.plot(ts, r.delta[1:, n], color="tab:blue", lw=1.2, label="Δ with reuse")
            th = np.where(r.theta[1:, n] >= 0, r.theta[1:, n], np.nan).astype(float)
            ax.step(ts, th, where="mid", color="tab:red", lw=1.0, ls="--", label="θ")
            sk = r.skip[1:, n]
            ax.scatter(ts[sk], r.delta[1:, n][sk], s=10, color="tab:orange", zorder=3, label="skipped")
            if row == 0:
                ax.set_title(f"{name}: saved {r.saved:.0%}, err {r.error:.2%}", fontsize=9)
            if col == 0:
                ax.set_ylabel(f"block {n}: Δ", fontsize=9)
            if row == len(picks) - 1:
                ax.set_xlabel("timestep t", fontsize=9)
            ax.tick_params(labelsize=7)
    axes[0][0].invert_xaxis()  # shared x: denoising runs from t = T down to 1, left to right
    axes[0][0].legend(fontsize=6, loc="upper left")
    fig.suptitle(f"Δ (bits) and θ over timesteps, {shape['blocks']} blocks of "
                 f"{shape['tokens']}x{shape['channels']} (cf. RADiT Fig. 5)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _one_blas_thread():
    """Small matrices: a multi-threaded BLAS only fights the other processes for
    the cores (15x slower when the cores are shared)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


def run(out_dir: Path, quick: bool = False) -> dict:
    with _one_blas_thread():
        return _run(out_dir, quick)


def _run(out_dir: Path, quick: bool) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shape = QUICK if quick else FULL
    T = shape["T"]
    model = ToyDiT(blocks=shape["blocks"], tokens=shape["tokens"], channels=shape["channels"],
                   rank=shape["rank"], seed=SEED)
    x = model.latent(SEED + 1)
    elements = shape["tokens"] * shape["channels"]
    started = time.time()
    full = redundancy_aware_run(x, model, T=T, schedule=None, max_elements=elements)
    runs = {}
    for schedule in ("linear", "cosine"):
        runs[schedule] = redundancy_aware_run(x, model, T=T, schedule=schedule, max_elements=elements, full=full)
    fixed = int(np.quantile(full.delta[1:], runs["linear"].saved))
    runs[f"fixed θ={fixed}"] = redundancy_aware_run(x, model, T=T, fixed_threshold=fixed, max_elements=elements,
                                                    full=full)
    seconds = time.time() - started

    N = shape["blocks"]
    picks = sorted({0, N // 2 - 1 if N > 2 else 0, N - 1})
    _plot(out_dir / "radit_redundancy.png", runs, full, shape, picks)

    lines = ["# RADiT redundancy detection (golden Algorithms 1 + 2)", "",
             f"Stack: {N} DNN operation blocks ({N // 2} transformer blocks x attention/MLP) of "
             f"{shape['tokens']} tokens x {shape['channels']} channels, {T} DDIM timesteps, seeded ToyDiT "
             f"(seed {SEED}); α fixed point with 15 fractional bits; update-then-decide; compare reference "
             "= previous timestep's codes. The first timestep computes every block.", "",
             f"Fixed threshold: θ = {fixed} for every block (quantile of the all-compute Δ at the linear "
             "schedule's skip fraction).", "",
             "| policy | blocks skipped | fraction of block computations saved | output error ‖x0 − x0_full‖/‖x0_full‖ |",
             "|---|---:|---:|---:|"]
    for name, r in runs.items():
        lines.append(f"| {name} | {int(r.skip.sum())} of {r.skip.size} | {r.saved:.3f} | {r.error:.4f} |")
    lines += ["", "Skip ratio per block (fraction of the timesteps it was skipped):", "",
              "| block | kind | " + " | ".join(runs) + " |", "|---:|---|" + "---:|" * len(runs)]
    for n in range(N):
        kind = "attention" if n % 2 == 0 else "MLP"
        lines.append(f"| {n} | {kind} | " + " | ".join(f"{r.skip[:, n].mean():.2f}" for r in runs.values()) + " |")
    lines += ["", f"Plot: `radit_redundancy.png` (Δ and θ of blocks {', '.join(map(str, picks))}).",
              f"Golden-model run time: {seconds:.0f} s.", ""]
    text = "\n".join(lines)
    (out_dir / "radit_redundancy.md").write_text(text)
    result = {"shape": shape, "fixed_threshold": fixed, "seconds": seconds,
              "policies": {name: {"saved": r.saved, "error": r.error, "skipped": int(r.skip.sum()),
                                  "skip_ratio_per_block": r.skip.mean(axis=0).round(4).tolist()}
                           for name, r in runs.items()}}
    (out_dir / "radit_redundancy.json").write_text(json.dumps(result, indent=1))
    summary = [f"RADiT redundancy ({N} blocks, {shape['tokens']}x{shape['channels']}, T={T}):"]
    summary += [f"  {name:>14}: saved {r.saved:.3f}, output error {r.error:.4f}" for name, r in runs.items()]
    print("\n".join(summary))
    return result
