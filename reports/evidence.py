"""The three papers' claims measured on a real diffusion transformer.

Runs the digits DiT of ``workloads/`` (committed FP16 checkpoint) with DDIM-50
and the accelerator hooks of ``workloads.hooks``, and writes
``evidence.md`` / ``evidence.json`` / ``evidence.png`` / ``evidence_samples.png``
with the papers' figures beside ours:

* RADiT: share of attention / MLP computations skipped for the linear and
  cosine DTSM schedules and two fixed thresholds; sample quality against full
  computation (SVC agreement, pixel MSE); correlation of the CCU's Δ with the
  L2 change of the sub-block inputs; Δ and θ over the steps (Fig. 5);
* Ditto: zero / low / full mix of INT8 temporal differences per layer and step
  range, packed compute-unit cycles against the A8W8 baseline (raw and
  iso-area), Defo's decisions per layer and their accuracy, and the check that
  the outputs equal the plain INT8 path bit for bit;
* ORBIS: pair loss of DATM (4-bit and float) against BSM on the SDPA outputs,
  the agreement of pairs between consecutive steps, the output-guided
  similarity claim, and the compute saved and quality cost at several
  reduction ratios.

``quick`` runs fewer images and ratios (for a smoke run). Environment:
``DITGEN_DIT_CHECKPOINT`` picks another checkpoint, ``DITGEN_THREADS`` the
PyTorch threads (default 1: the golden models are single-threaded NumPy and
the cores are usually shared with simulations).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from hdl.paths import BUILD


# Figures quoted from the papers (ORBIS, RADiT and Ditto papers; see docs/SPEC.md "Papers").
PAPER = {
    "radit_gflops": (119.0, 70.2, 71.4),        # Table II: DiT-XL/2, RADiT linear, cosine
    "radit_fid": (2.27, 2.57, 2.68),
    "ditto_mix": (44.48, 51.52, 3.99),          # §III-B, Fig. 5: zero, low (non-zero <= 4 bit), full
    "ditto_speedup": 1.5,                       # §VI-B: over ITC (iso-area)
    "ditto_pes": (39398, 27648),                # Table III: A4W8 vs A8W8 PEs in the same area
    "ditto_defo_act": 14.4,                     # Fig. 17: % of layers Defo sends back to activations
    "ditto_defo_acc": 92.0,                     # Fig. 17: % of layers whose decision is optimal
    "orbis_sim": (0.953, 0.782),                # §2.2, Fig. 3c: previous output vs input similarity maps
}


def _flops(cfg, tokens=None):
    """Multiply-accumulates of one image's attention (qkv, SDPA, proj) and MLP sub-block."""
    n = cfg.tokens if tokens is None else tokens
    c = cfg.hidden
    attn = n * c * 3 * c + 2 * n * n * c + n * c * c
    mlp = 2 * n * c * c * cfg.mlp_ratio
    return attn, mlp


def _mse(a, b) -> float:
    return float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


def _corr(a, b) -> float:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _spearman(a, b) -> float:
    ra = np.argsort(np.argsort(np.asarray(a).ravel())).astype(np.float64)
    rb = np.argsort(np.argsort(np.asarray(b).ravel())).astype(np.float64)
    return _corr(ra, rb)


# --------------------------------------------------------------------------- RADiT

def radit_section(model, labels, x_ref, steps, seed, svc):
    from workloads.dit import sample
    from workloads.hooks import RaditHooks

    cfg = model.cfg
    t0 = time.time()
    probe = RaditHooks(steps, schedule=None)
    x_probe = sample(model, labels, seed=seed, steps=steps, hooks=probe).numpy()
    base = probe.records()
    identical = bool(np.array_equal(x_probe, x_ref))
    d, l2 = base["delta"][1:], base["l2"][1:]
    per_block = [_corr(d[:, n], l2[:, n]) for n in range(d.shape[1])]
    median = int(np.median(d))
    fixed = {"fixed θ = median Δ": median, "fixed θ = ½ median Δ": median // 2}
    attn_f, mlp_f = _flops(cfg)
    rows, recs, xs = [], {}, {}
    configs = [("linear", "linear", None), ("cosine", "cosine", None)] + \
              [(k, "fixed", v) for k, v in fixed.items()]
    for label, sched, th in configs:
        hk = RaditHooks(steps, schedule=sched, fixed_threshold=th)
        x = sample(model, labels, seed=seed, steps=steps, hooks=hk).numpy()
        rec = hk.records()
        recs[label] = rec
        xs[label] = x
        skip = rec["skip"]  # (steps, 2 * depth, images)
        w = np.array([attn_f, mlp_f] * cfg.depth, dtype=np.float64)[None, :, None]
        rows.append({
            "schedule": label, "theta": th,
            "skipped": float(skip.mean()), "skipped_attn": float(skip[:, 0::2].mean()),
            "skipped_mlp": float(skip[:, 1::2].mean()),
            "flops_saved": float((skip * w).sum() / (np.ones_like(skip) * w).sum()),
            "svc": svc(x), "mse": _mse(x, x_ref),
            "per_block": skip.mean(axis=(0, 2)).tolist(),
        })
    trend = [float(d[:9].mean()), float(d[-10:].mean())]
    return {"identical_when_disabled": identical, "delta_trend": trend, "corr_pearson": _corr(d, l2), "corr_spearman": _spearman(d, l2),
            "corr_per_block": per_block, "median_delta": median, "rows": rows, "base": base, "records": recs, "samples": xs,
            "seconds": round(time.time() - t0, 1)}


# --------------------------------------------------------------------------- Ditto

def ditto_section(model, scales, labels, steps, seed, svc, x_ref):
    import torch

    from workloads.dit import LINEARS, sample
    from workloads.hooks import DittoHooks, Int8Hooks

    t0 = time.time()
    x_int8 = sample(model, labels, seed=seed, steps=steps, hooks=Int8Hooks(model, scales))
    hk = DittoHooks(model, scales)
    x_ditto = sample(model, labels, seed=seed, steps=steps, hooks=hk)
    identical = bool(torch.equal(x_int8, x_ditto))
    max_diff = float((x_int8 - x_ditto).abs().max())
    st = hk.stats
    depth = model.cfg.depth
    ranges = [("1-9", 1, 10), ("10-29", 10, 30), ("30-49", 30, steps)]
    mix = {}
    for name in LINEARS:
        for label, lo, hi in ranges:
            c = sum(st[s][(b, name)]["counts_temporal"].sum(axis=0) for s in range(lo, min(hi, steps))
                    for b in range(depth))
            mix[(name, label)] = (100.0 * c / c.sum()).tolist()
    tot_t = sum(st[s][k]["counts_temporal"].sum(axis=0) for s in range(1, steps) for k in st[s])
    tot_a = sum(st[s][k]["counts_act"].sum(axis=0) for s in range(steps) for k in st[s])
    cyc = {"ditto": 0, "all_diff": 0, "all_act": 0, "itc": 0, "oracle": 0}
    correct = total = 0
    decisions = {}
    for s in range(steps):
        for k, r in st[s].items():
            act, tmp = r["cycles_act"], r["cycles_temporal"]
            used = np.where(r["mode"] == 1, tmp, act)
            cyc["ditto"] += int(used.sum())
            cyc["itc"] += int(r["cycles_itc"].sum())
            cyc["all_act"] += int(act.sum())
            cyc["all_diff"] += int((tmp if s else act).sum())
            cyc["oracle"] += int((np.minimum(act, tmp) if s else act).sum())
            if s >= 2:
                best = (tmp < act).astype(np.int64)
                tie = tmp == act
                correct += int(np.sum((r["mode"] == best) | tie))
                total += r["mode"].size
            if s == steps - 1:
                decisions[k] = float(np.mean(r["mode"] == 1))
    pes_a4, pes_a8 = PAPER["ditto_pes"]
    return {
        "identical": identical, "max_abs_diff": max_diff, "svc_int8": svc(x_int8.numpy()), "svc_fp": svc(x_ref),
        "mse_int8_vs_fp": _mse(x_int8.numpy(), x_ref),
        "mix_overall": (100.0 * tot_t / tot_t.sum()).tolist(), "mix_act": (100.0 * tot_a / tot_a.sum()).tolist(),
        "mix": {f"{n}|{lbl}": v for (n, lbl), v in mix.items()}, "ranges": [r[0] for r in ranges],
        "cycles": cyc, "ratio": cyc["ditto"] / cyc["itc"],
        "speedup_iso_area": cyc["itc"] / cyc["ditto"] * pes_a4 / pes_a8,
        "defo_diff_share": {f"{b}.{n}": v for (b, n), v in decisions.items()},
        "defo_act_layers": 100.0 * float(np.mean([1 - v for v in decisions.values()])),
        "defo_accuracy": 100.0 * correct / max(total, 1),
        "images": len(labels), "seconds": round(time.time() - t0, 1),
    }


# --------------------------------------------------------------------------- ORBIS

def _pairs_agree(p, q) -> float:
    """Share of p's (src, dst) pairs that q contains too."""
    a = {tuple(x) for x in np.asarray(p).tolist()}
    b = {tuple(x) for x in np.asarray(q).tolist()}
    return len(a & b) / max(len(a), 1)


def _simmap(x):
    x = np.asarray(x, np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
    return x @ x.T


def _datm4(go, x, num_dst, r, qe_frac):
    """Pairs of the 4-bit DATM on the FP16 QE's codes and normalised weights."""
    q, sigma = go.quantize_channelwise_fp16(x, qe_frac)
    return go.datm(q, sigma, num_dst=num_dst, k=r, seed=0, fixed=True, scale_frac=qe_frac).pairs


def qe_dropped(go, sdpa, qe_frac) -> dict:
    """Channels (max|x_c| > 0) that get DAU weight 0, over every traced SDPA
    output (steps x blocks x images x tokens x channels): with the FP16 QE's
    normalised weights (``qe_frac`` fraction bits) and with the previous route,
    absolute scales max|x_c|/7 in 8 fraction bits (``datm-8bit``)."""
    S, L, B, _, C = sdpa.shape
    fp16 = np.zeros((S, L), np.int64)
    old = np.zeros((S, L), np.int64)
    for s in range(S):
        for b in range(L):
            for i in range(B):
                x = np.asarray(sdpa[s, b, i], np.float64)
                _, sigma = go.quantize_channelwise_fp16(x, qe_frac)
                fp16[s, b] += go.dropped_channels(x, go.scale_weights(sigma, qe_frac))
                _, sc = go.quantize_channelwise(x)
                old[s, b] += go.dropped_channels(x, go.scale_weights(go.fixed_scales(sc, 8), 8))
    total = S * L * B * C
    return {"qe_frac": qe_frac, "channels": total, "fp16": int(fp16.sum()), "old": int(old.sum()),
            "old_share": float(old.sum() / total),
            "old_worst": {"step": int(np.unravel_index(old.argmax(), old.shape)[0]),
                          "block": int(np.unravel_index(old.argmax(), old.shape)[1]),
                          "share": float(old.max() / (B * C))}}


def orbis_section(model, labels, x_ref, steps, seed, svc, sdpa, attn_in, ratios, num_dst, qe_frac=16):
    from golden import orbis as go

    from workloads.dit import sample
    from workloads.hooks import OrbisHooks

    t0 = time.time()
    S, L, B = sdpa.shape[:3]
    sub_steps = range(0, S, max(1, S // 10))
    methods = ("datm", "datm-8bit", "datm-float", "bsm")
    loss = {m: {r: [] for r in ratios} for m in methods}
    for r in ratios:
        for s in sub_steps:
            for b in range(L):
                for i in range(B):
                    x = np.asarray(sdpa[s, b, i], np.float64)
                    p4 = _datm4(go, x, num_dst, r, qe_frac)
                    q, sc = go.quantize_channelwise(x)
                    p8 = go.datm(q, sc, num_dst=num_dst, k=r, seed=0).pairs
                    pf = go.datm(x, None, num_dst=num_dst, k=r, seed=0, quantized=False).pairs
                    loss["datm"][r].append(go.pair_loss(x, p4))
                    loss["datm-8bit"][r].append(go.pair_loss(x, p8))
                    loss["datm-float"][r].append(go.pair_loss(x, pf))
                    loss["bsm"][r].append(go.pair_loss(x, go.bsm(x, r)))
    loss = {m: {r: float(np.mean(v)) for r, v in d.items()} for m, d in loss.items()}
    dropped = qe_dropped(go, sdpa, qe_frac)
    # Pair agreement between consecutive steps and across an OGM window (FC step s vs s+1..s+3).
    r_mid = ratios[len(ratios) // 2]
    agree = {1: [], 2: [], 3: []}
    pairs = {}
    for s in range(S):
        for b in range(L):
            for i in range(B):
                pairs[(s, b, i)] = _datm4(go, np.asarray(sdpa[s, b, i], np.float64), num_dst, r_mid, qe_frac)
    for s in range(S):
        for lag in agree:
            if s + lag < S:
                agree[lag].extend(_pairs_agree(pairs[(s, b, i)], pairs[(s + lag, b, i)])
                                  for b in range(L) for i in range(B))
    agree = {lag: float(np.mean(v)) for lag, v in agree.items()}
    # ORBIS §2.2: similarity map of the previous step's output vs this step's input, against the true output.
    sim_prev, sim_in = [], []
    for s in range(1, S):
        for b in range(L):
            for i in range(B):
                gt = _simmap(sdpa[s, b, i]).ravel()
                sim_prev.append(float(np.dot(gt, _simmap(sdpa[s - 1, b, i]).ravel()) /
                                      np.linalg.norm(gt) / np.linalg.norm(_simmap(sdpa[s - 1, b, i]))))
                si = _simmap(attn_in[s, b, i]).ravel()
                sim_in.append(float(np.dot(gt, si) / np.linalg.norm(gt) / np.linalg.norm(si)))
    runs, xs = [], {}
    cfg = model.cfg
    attn_f, mlp_f = _flops(cfg)
    for method in ("datm", "datm-float", "bsm"):
        for r in ratios:
            if method != "datm" and r != ratios[-1]:
                continue
            hk = OrbisHooks(r, method, num_dst=num_dst, qe_frac=qe_frac)
            x = sample(model, labels, seed=seed, steps=steps, hooks=hk).numpy()
            xs[(method, r)] = x
            frac = hk.sdpa_fraction(cfg.tokens)
            sdpa_f = 2 * cfg.tokens ** 2 * cfg.hidden
            runs.append({"method": method, "r": r, "ratio": r / cfg.tokens, "sdpa_saved": 1 - frac,
                         "model_saved": (1 - frac) * sdpa_f / (attn_f + mlp_f),
                         "svc": svc(x), "mse": _mse(x, x_ref),
                         "iterations": float(np.mean([v for vs in hk.iterations.values() for v in vs]))
                         if hk.iterations else 0.0,
                         "dropped": int(sum(sum(v) for v in hk.dropped.values()))})
    return {"pair_loss": loss, "dropped": dropped, "agree": agree, "agree_r": r_mid, "sim_prev": float(np.mean(sim_prev)),
            "sim_in": float(np.mean(sim_in)), "runs": runs, "samples": xs, "num_dst": num_dst,
            "loss_steps": len(list(sub_steps)), "seconds": round(time.time() - t0, 1)}


# --------------------------------------------------------------------------- report

def _plots(out_dir, radit, ditto, orbis, steps):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 3, figsize=(15, 8))
    base = radit["base"]
    lin = radit["records"]["linear"]
    blocks = [0, base["delta"].shape[1] // 2, base["delta"].shape[1] - 1]
    for n in blocks:
        line, = ax[0, 0].plot(range(1, steps), base["delta"][1:, n, 0], label=f"Δ n={n} (full)")
        ax[0, 0].plot(range(1, steps), lin["delta"][1:, n, 0], "--", color=line.get_color(), alpha=0.7,
                      label=f"Δ n={n} (linear)")
        th = lin["theta"][1:, n, 0].astype(float)
        ax[0, 0].plot(range(1, steps), np.where(th >= 0, th, np.nan), ":", color=line.get_color(),
                      label=f"θ n={n}")
    ax[0, 0].set(title="RADiT: CCU Δ and DTSM θ (image 0), cf. Fig. 5", xlabel="DDIM step", ylabel="Δ (bits)")
    ax[0, 0].legend(fontsize=6)
    for row in radit["rows"]:
        ax[0, 1].plot(row["per_block"], marker="o", ms=3, label=row["schedule"])
    ax[0, 1].set(title="RADiT: share skipped per sub-block", xlabel="n = 2·block + (0 attn, 1 MLP)",
                 ylabel="skipped")
    ax[0, 1].legend(fontsize=7)
    d, l2 = base["delta"][1:].ravel(), base["l2"][1:].ravel()
    ax[0, 2].scatter(l2, d, s=2, alpha=0.3)
    ax[0, 2].set(title=f"RADiT: Δ vs ‖Δx‖₂ (Pearson {radit['corr_pearson']:.2f})", xlabel="L2 change of input",
                 ylabel="CCU Δ")
    names = ["qkv", "proj", "fc1", "fc2"]
    labels, zero, low, full = [], [], [], []
    for n in names:
        for rng in ditto["ranges"]:
            v = ditto["mix"][f"{n}|{rng}"]
            labels.append(f"{n}\n{rng}")
            zero.append(v[0])
            low.append(v[1])
            full.append(v[2])
    xs = np.arange(len(labels))
    ax[1, 0].bar(xs, zero, label="zero")
    ax[1, 0].bar(xs, low, bottom=zero, label="low (4-bit)")
    ax[1, 0].bar(xs, full, bottom=np.add(zero, low), label="full")
    ax[1, 0].set_xticks(xs, labels, fontsize=6)
    ax[1, 0].set(title="Ditto: temporal-difference classes per layer and steps (%)", ylabel="%")
    ax[1, 0].legend(fontsize=7)
    for m, v in orbis["pair_loss"].items():
        rs = sorted(v)
        ax[1, 1].plot(rs, [v[r] for r in rs], marker="o", label=m)
    ax[1, 1].set(title="ORBIS: mean pair loss on SDPA outputs", xlabel="merged tokens r (of 16)",
                 ylabel="squared L2")
    ax[1, 1].legend(fontsize=7)
    datm_runs = [r for r in orbis["runs"] if r["method"] == "datm"]
    ax[1, 2].plot([r["r"] for r in datm_runs], [r["svc"] for r in datm_runs], marker="o", label="SVC agreement")
    ax[1, 2].plot([r["r"] for r in datm_runs], [r["sdpa_saved"] for r in datm_runs], marker="s", label="SDPA saved")
    ax2 = ax[1, 2].twinx()
    ax2.plot([r["r"] for r in datm_runs], [r["mse"] for r in datm_runs], "k--", marker="x", label="pixel MSE")
    ax2.set_ylabel("pixel MSE vs full")
    ax[1, 2].set(title="ORBIS (4-bit DATM, OGM 1 FC + 3 RC): saved vs quality", xlabel="merged tokens r")
    ax[1, 2].legend(fontsize=7, loc="center left")
    fig.tight_layout()
    fig.savefig(out_dir / "evidence.png", dpi=90)
    plt.close(fig)


def _sample_grid(out_dir, rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(10, rows[0][1].shape[0])
    fig, ax = plt.subplots(len(rows), cols, figsize=(cols * 0.7 + 1.5, len(rows) * 0.75), squeeze=False)
    for r, (name, x) in enumerate(rows):
        for c in range(cols):
            ax[r, c].imshow(x[c, 0], cmap="gray_r", vmin=-1, vmax=1)
            ax[r, c].set_xticks([])
            ax[r, c].set_yticks([])
        ax[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "evidence_samples.png", dpi=90)
    plt.close(fig)


def _markdown(info, radit, ditto, orbis) -> str:
    p = PAPER
    L = ["# Evidence: RADiT, Ditto and ORBIS on a DiT trained here", "",
         f"Model: class-conditional DiT on sklearn's 8x8 digits (16 tokens, hidden {info['hidden']}, "
         f"{info['depth']} blocks), model hash `{info['hash'][:16]}`; DDIM-{info['steps']}, seed {info['seed']}, "
         f"{info['images']} images (labels 0-9 in turn). Full computation: SVC agreement "
         f"{info['svc_full']:.1%}. Quality is measured against the full-computation samples of the same seed "
         "(pixel MSE on the [-1, 1] scale) and by the SVC trained on the real digits. The papers' models "
         "(DiT-XL/2 at 256x256, Stable Diffusion, CogVideoX) are 10^3-10^4 times larger; what transfers is "
         "the direction and the mechanism, not the absolute numbers.", ""]
    L += ["## RADiT (skip-and-reuse, CCU + DTSM)", "",
          f"Disabled (Δ measured, nothing skipped) reproduces the plain sampler bit for bit: "
          f"**{radit['identical_when_disabled']}**.", "",
          "| schedule | sub-blocks skipped | attn | MLP | MACs saved | SVC agreement | pixel MSE vs full |",
          "|---|---:|---:|---:|---:|---:|---:|",
          f"| full computation | 0 % | 0 % | 0 % | 0 % | {info['svc_full']:.1%} | 0 |"]
    for r in radit["rows"]:
        name = r["schedule"] + (f" ({r['theta']})" if r["theta"] is not None else "")
        L.append(f"| {name} | {r['skipped']:.1%} | {r['skipped_attn']:.1%} | {r['skipped_mlp']:.1%} | "
                 f"{r['flops_saved']:.1%} | {r['svc']:.1%} | {r['mse']:.4f} |")
    g = p["radit_gflops"]
    f = p["radit_fid"]
    L.insert(-len(radit["rows"]) - 3,
             f"Shares are over all {info['steps']} steps x {2 * info['depth']} sub-blocks x {info['images']} images "
             "(step 0 has no previous codes and always computes); MACs weight attention (qkv, SDPA, proj) and MLP "
             f"by their multiply-accumulates. Mean Δ is {radit['delta_trend'][0]:.0f} bits over steps 1-9 and "
             f"{radit['delta_trend'][1]:.0f} over the last 10 steps: "
             + ("in this model the inputs change *more* towards t = 0, the opposite of the rising redundancy "
                "RADiT's α schedule assumes (§III-B2).\n" if radit["delta_trend"][1] > radit["delta_trend"][0] else
                "redundancy rises towards t = 0, as RADiT's α schedule assumes (§III-B2).\n"))
    L += ["", f"Paper (Table II, DiT-XL/2 ImageNet 256, 250 steps): GFLOPs {g[0]} → {g[1]} (linear, "
          f"{1 - g[1] / g[0]:.0%} saved) / {g[2]} (cosine, {1 - g[2] / g[0]:.0%} saved); FID {f[0]} → {f[1]} / {f[2]}. "
          "A fixed threshold over-reuses in later blocks (Fig. 4/5a).", "",
          f"CCU Δ against the L2 change of the FP32 sub-block input (steps 1-{info['steps'] - 1}, every "
          f"sub-block and image): Pearson {radit['corr_pearson']:.3f}, Spearman {radit['corr_spearman']:.3f}; "
          f"per sub-block Pearson {np.nanmin(radit['corr_per_block']):.2f} .. {np.nanmax(radit['corr_per_block']):.2f} "
          f"(median {np.nanmedian(radit['corr_per_block']):.2f}). The paper motivates Δ by the input L2 "
          "change (Fig. 4a) without a number.", ""]
    d = ditto
    pa, pb = p["ditto_pes"]
    L += ["## Ditto (INT8 temporal differences, Defo)", "",
          f"W8A8 path (per-layer activation scale fixed over the run, per-channel weights), {d['images']} images: "
          f"Ditto's outputs equal the plain INT8 path's bit for bit: **{d['identical']}** (max |Δ| "
          f"{d['max_abs_diff']}). INT8 vs FP32: SVC {d['svc_int8']:.1%} vs {d['svc_fp']:.1%}, pixel MSE "
          f"{d['mse_int8_vs_fp']:.4f}.", "",
          "| classes of the linear-layer inputs | zero | low (≤ 4 bit) | full |", "|---|---:|---:|---:|",
          f"| paper, temporal differences (§III-B, Fig. 5) | {p['ditto_mix'][0]} % | {p['ditto_mix'][1]} % | "
          f"{p['ditto_mix'][2]} % |",
          f"| ours, temporal differences, steps 1-{info['steps'] - 1} | {d['mix_overall'][0]:.2f} % | "
          f"{d['mix_overall'][1]:.2f} % | {d['mix_overall'][2]:.2f} % |",
          f"| ours, activations (act mode) | {d['mix_act'][0]:.2f} % | {d['mix_act'][1]:.2f} % | "
          f"{d['mix_act'][2]:.2f} % |", "",
          "Per layer and step range (zero / low / full %):", "",
          "| layer | " + " | ".join(f"steps {r}" for r in d["ranges"]) + " |",
          "|---|" + "---:|" * len(d["ranges"])]
    for n in ("qkv", "proj", "fc1", "fc2"):
        L.append(f"| {n} | " + " | ".join("{:.1f} / {:.1f} / {:.1f}".format(*d["mix"][f"{n}|{r}"])
                                          for r in d["ranges"]) + " |")
    c = d["cycles"]
    L += ["", "| compute-unit cycles (16 PEs, whole run) | cycles | vs A8W8 |", "|---|---:|---:|",
          f"| A8W8 baseline (ITC PE, 4 elements / cycle) | {c['itc']:,} | 1.000 |",
          f"| Ditto, activations on every step | {c['all_act']:,} | {c['all_act'] / c['itc']:.3f} |",
          f"| Ditto, differences from step 1 on | {c['all_diff']:,} | {c['all_diff'] / c['itc']:.3f} |",
          f"| Ditto with Defo | {c['ditto']:,} | {c['ditto'] / c['itc']:.3f} |",
          f"| oracle (best mode per layer and step) | {c['oracle']:,} | {c['oracle'] / c['itc']:.3f} |", "",
          f"Iso-area (the paper's {pa:,} A4W8 PEs in the area of {pb:,} A8W8 PEs): speedup "
          f"{d['speedup_iso_area']:.2f}x over A8W8 (paper: {p['ditto_speedup']}x on average, memory stalls included).",
          f"Defo sends {d['defo_act_layers']:.1f} % of layer executions back to activations (paper: "
          f"{p['ditto_defo_act']} %), and its decision is the cheaper mode on {d['defo_accuracy']:.1f} % of the "
          f"later steps' layer executions (paper: {p['ditto_defo_acc']} %).", "",
          "Defo: share of images that run each layer on differences (from step 2 on):", "",
          "| block | qkv | proj | fc1 | fc2 |", "|---|---:|---:|---:|---:|"]
    for b in range(info["depth"]):
        L.append(f"| {b} | " + " | ".join(f"{d['defo_diff_share'][f'{b}.{n}']:.0%}"
                                          for n in ("qkv", "proj", "fc1", "fc2")) + " |")
    o = orbis
    L += ["", "## ORBIS (output-guided token reduction of SDPA, DATM)", "",
          f"Pair loss (mean squared L2 between each merged src and its dst) on the traced SDPA outputs "
          f"({o['loss_steps']} steps x {info['depth']} blocks x {info['trace_samples']} images; "
          f"DATM with {o['num_dst']} dst tokens, ε = 0.01):", "",
          "| merged r (of 16) | BSM | DATM float | DATM 4-bit | 4-bit vs BSM | DATM 4-bit, 8-bit scales | vs BSM |",
          "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(o["pair_loss"]["bsm"]):
        b_, f_, q_, e_ = (o["pair_loss"][m][r] for m in ("bsm", "datm-float", "datm", "datm-8bit"))
        L.append(f"| {r} | {b_:.4f} | {f_:.4f} | {q_:.4f} | {q_ / b_:.2f}x | {e_:.4f} | {e_ / b_:.2f}x |")
    ps, pi = p["orbis_sim"]
    dr = o["dropped"]
    w = dr["old_worst"]
    L += ["", f"DATM 4-bit runs on the FP16 QE: exact 4-bit codes from binary16 and DAU weights relative to "
          f"the largest channel's ({dr['qe_frac']} fraction bits, docs/SPEC.md \"Quantization engine\"). "
          f"Channels with max|x_c| > 0 that get weight 0 and so are ignored by the matching, over all "
          f"{dr['channels']} traced (step, block, image, channel): **{dr['fp16']}** with the FP16 QE; "
          f"{dr['old']} ({dr['old_share']:.1%}) with absolute scales max|x_c|/7 in 8 fraction bits "
          f"(the 'DATM 4-bit, 8-bit scales' column; worst step {w['step']}, block {w['block']}: "
          f"{w['share']:.0%}).", "",
          "Paper: DATM gives smaller pair loss than BSM (Fig. 4); 4-bit quantization costs "
          "negligible accuracy (Table 2).", "",
          f"Output-guided matching (§2.2, Fig. 3c): cosine similarity of the true SDPA-output similarity map "
          f"with the previous step's output map {o['sim_prev']:.3f} and with this step's attention-input map "
          f"{o['sim_in']:.3f} (paper: {ps} vs {pi}).", "",
          f"Pairs (4-bit DATM, r = {o['agree_r']}) that recur: next step {o['agree'][1]:.1%}, two steps later "
          f"{o['agree'][2]:.1%}, three steps later {o['agree'][3]:.1%} (OGM reuses one FC step's pairs for 3 RC steps).",
          "", "| matching | r | tokens reduced | SDPA MACs saved | model MACs saved | SVC agreement | pixel MSE vs full | DATM iterations |",
          "|---|---:|---:|---:|---:|---:|---:|---:|",
          f"| full computation | 0 | 0 % | 0 % | 0 % | {info['svc_full']:.1%} | 0 | |"]
    for r in o["runs"]:
        L.append(f"| {r['method']} | {r['r']} | {r['ratio']:.0%} | {r['sdpa_saved']:.1%} | {r['model_saved']:.1%} | "
                 f"{r['svc']:.1%} | {r['mse']:.4f} | {r['iterations']:.1f} |")
    L += ["", "Paper: about 2x the token reduction ratio of AsymRnR at equal or better quality, up to 4.5x "
          "speedup over an A100 (CogVideoX, HunyuanVideo). Here SDPA is a small share of the model's MACs "
          "(16 tokens), so the model-level saving is small even where SDPA's is large.", "",
          "![plots](evidence.png)", "", "![samples](evidence_samples.png)", ""]
    return "\n".join(L)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items() if k not in ("base", "records", "samples")}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    return obj


def run(out_dir: Path, quick: bool = False) -> dict:
    from workloads._torch import set_threads

    set_threads(int(os.environ.get("DITGEN_THREADS", "1")))
    from workloads.data import svc_agreement
    from workloads.dit import model_hash, sample
    from workloads.hooks import Recorder
    from workloads.traces import calibrate, get_model, labels_for, load_traces

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    steps, seed = 50, 0
    images = 20 if quick else 100
    ditto_images = 4 if quick else 20
    ratios = [4, 8] if quick else [2, 4, 6, 8]
    model, _, _ = get_model(os.environ.get("DITGEN_DIT_CHECKPOINT"))
    digest = model_hash(model)
    labels = labels_for(images)
    svc = lambda x: svc_agreement(x, labels[: len(x)])  # noqa: E731
    x_ref = sample(model, labels, seed=seed, steps=steps).numpy()
    # Traces: reuse `make traces` output when it matches this model and sampler, else record here.
    tdir = BUILD / "traces"
    tr = None
    try:
        tr = load_traces(tdir, verify=False)
        sm = tr.manifest["sampler"]
        if tr.manifest["model"]["hash"] != digest or sm["steps"] != steps or sm["seed"] != seed:
            tr = None
    except (OSError, ValueError, KeyError):
        tr = None
    if tr is not None:
        scales = tr.scales
        sdpa, attn_in = np.asarray(tr["sdpa"]), np.asarray(tr["attn_in"])
    else:
        scales = calibrate(model, samples=20, seed=seed + 1, steps=steps)
        rec = Recorder(model.cfg.depth, trace=True, trace_samples=10)
        sample(model, labels_for(10), seed=seed, steps=steps, hooks=rec)
        arr = rec.arrays()
        sdpa, attn_in = arr["sdpa"], arr["attn_in"]
    if quick:
        sdpa, attn_in = sdpa[:, :, :3], attn_in[:, :, :3]
    sdpa = sdpa.astype(np.float64)
    attn_in = attn_in.astype(np.float64)
    radit = radit_section(model, labels, x_ref, steps, seed, svc)
    ditto = ditto_section(model, scales, labels[:ditto_images], steps, seed, svc, x_ref[:ditto_images])
    orbis = orbis_section(model, labels, x_ref, steps, seed, svc, sdpa, attn_in, ratios, num_dst=8)
    info = {"hidden": model.cfg.hidden, "depth": model.cfg.depth, "hash": digest, "steps": steps, "seed": seed,
            "images": images, "svc_full": svc(x_ref), "trace_samples": sdpa.shape[2],
            "traces": "build/traces" if tr is not None else "recorded in-process", "quick": quick}
    text = _markdown(info, radit, ditto, orbis)
    (out_dir / "evidence.md").write_text(text)
    _plots(out_dir, radit, ditto, orbis, steps)
    grid = [("full", x_ref)] + [(f"RADiT {k}", v) for k, v in radit["samples"].items()]
    grid += [(f"ORBIS {m} r={r}", v) for (m, r), v in orbis["samples"].items() if m == "datm"]
    _sample_grid(out_dir, grid)
    result = {"info": info, "radit": radit, "ditto": ditto, "orbis": orbis, "seconds": round(time.time() - t0, 1)}
    (out_dir / "evidence.json").write_text(json.dumps(_jsonable(result), indent=1))
    print(text)
    print(f"(evidence: {result['seconds']} s)")
    return _jsonable(result)
