"""System model beside the papers' headline figures, and the three techniques
combined on the digits DiT (``ditgen bench system``).

Writes ``system.json``, ``system.md`` and ``system.png``. Three parts:

1. **Statistics**, measured here, never copied from the papers:
   RADiT's skip ratio per sub-block and Ditto's zero / low / full mix come
   from the digits DiT of ``workloads/`` run with the hooks of
   ``workloads.hooks`` (part 3's runs; ``golden.radit.redundancy_aware_run``
   on a DiT-XL/2-shaped ``ToyDiT`` is a second RADiT source); the spatial mix
   for Ditto+ from the same run; ORBIS's reduction ratio is the ratio at
   which 4-bit DATM's pair loss equals BSM's at 50 % (``golden.orbis.datm``
   and ``bsm`` on the token sets of ``reports.orbis_datm``).
2. **Headline table**: ``golden.system`` runs each paper's accelerator on its
   paper's workloads with those statistics: speedup, energy saving and DRAM
   overhead beside the paper's figures, plus sensitivity rows (the paper's
   own statistic through our model, another DRAM).
3. **Combined accelerator** (none of the papers has it): RADiT block
   skipping, Ditto difference processing and ORBIS token reduction together
   in the digits DiT sampler, with quality against full computation and the
   compounded speedup from the units' cycle models, beside each technique
   alone.

``quick`` shrinks part 3 (images, DDIM steps) and part 1's golden runs so
the whole report takes well under a minute.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np

from golden import system as gs
from golden.ditto import class_counts, differences, itc_cycles
from golden.orbis import bsm, datm, datm_cycles, pair_loss, quantize_channelwise
from golden.radit import ToyDiT, redundancy_aware_run
from golden.system.model import CU_PES

# The papers' headline figures (fractions; speedups as ratios), with sections.
PAPER = {
    "radit": {
        "speedup": 1.8, "speedup_video": 1.7, "latency_reduction": (0.40, 0.431, 0.365),
        "energy_saving": 0.41, "energy_saving_video": 0.455, "dram_overhead": 0.015,
        "skip_flops": 1 - 70.2 / 119.0,
        "section": "abstract (up to 1.8x image, 1.7x video; 41 % / 45.5 % less energy); §IV-B3 (latency -40 % "
                   "image, -43.1 % video, -36.5 % text-to-video; 1.5 % more DRAM accesses); Table II "
                   "(119 -> 70.2 GFLOPs, linear α)"},
    "ditto": {
        "speedup": 1.5, "energy_saving": 0.1774, "dram_overhead": 0.56, "plus_over_ditto": 1.06,
        "plus_energy_saving": 0.2292,
        "section": "§VI-B, Fig. 13 (1.5x over ITC, Ditto+ 1.06x over Ditto; 17.74 % / 22.92 % less energy); "
                   "Fig. 14 (1.56x the memory accesses of ITC)"},
    "orbis": {
        "speedup": 4.5, "speedup_over_base": (3.5 / 2.9, 4.5 / 2.7), "energy_saving": 0.793,
        # ALL over BASE from Fig. 7's ranges, whichever model each end belongs to.
        "energy_saving_over_base": (1 - (1 - 0.712) / (1 - 0.653), 1 - (1 - 0.793) / (1 - 0.617)),
        "dram_overhead": None, "reduction_ratio_vs_asymrnr": 2.0,
        "section": "abstract, §4.2 Fig. 7 (ORBIS_ALL 3.5-4.5x and ORBIS_BASE 2.7-2.9x over an A100; energy "
                   "-71.2..-79.3 % and -61.7..-65.3 %); §3.1 (pairs: negligible memory); abstract (about 2x "
                   "AsymRnR's reduction ratio)"},
}

QUICK = {"images": 3, "steps": 16, "calib": 3, "toy": {"blocks": 16, "tokens": 64, "channels": 128, "T": 30},
         "orbis_sets": 1, "orbis_r": 8}
FULL = {"images": 20, "steps": 50, "calib": 20, "toy": {"blocks": 56, "tokens": 128, "channels": 256, "T": 50},
        "orbis_sets": 3, "orbis_r": 8}


def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


# --------------------------------------------------------------------------- statistics

def toy_skip(shape: dict) -> dict:
    """RADiT skip ratio per DNN operation block on a seeded DiT-like stack
    (``golden.radit.redundancy_aware_run``, linear α), as reports/radit_redundancy."""
    model = ToyDiT(blocks=shape["blocks"], tokens=shape["tokens"], channels=shape["channels"], rank=16, seed=0)
    run = redundancy_aware_run(model.latent(1), model, T=shape["T"], schedule="linear",
                               max_elements=shape["tokens"] * shape["channels"])
    return {"per_block": run.skip[1:].mean(axis=0).tolist(), "saved": run.saved, "error": run.error,
            "source": f"golden.radit.redundancy_aware_run, ToyDiT {shape['blocks']} blocks of "
                      f"{shape['tokens']}x{shape['channels']}, T = {shape['T']}, linear α"}


def orbis_stats(sets: int) -> dict:
    """Reduction ratio at which 4-bit DATM's mean pair loss equals BSM's at
    50 % (BSM: ToMe's matching, the family AsymRnR refines), and DATM's mean
    iteration count, on the token sets of reports/orbis_datm."""
    from reports.orbis_datm import clustered, realistic

    grid = np.arange(0.25, 0.76, 0.0625)
    ratios, iters = [], []
    for s in range(sets):
        for x in (realistic(np.random.default_rng(20 + s)), clustered(np.random.default_rng(10 + s))):
            n = x.shape[0]
            target = pair_loss(x, bsm(x, n // 2))
            q, sc = quantize_channelwise(x)
            losses = []
            for rho in grid:
                g = datm(q, sc, n // 4, int(rho * n), 0.01, 16, s)
                losses.append(pair_loss(x, g.pairs))
                iters.append(g.iterations)
            losses = np.maximum.accumulate(np.asarray(losses))
            ratios.append(float(np.interp(target, losses, grid)) if target >= losses[0] else float(grid[0]))
    rho = float(np.mean(ratios))
    return {"ratio": rho, "vs_bsm": rho / 0.5, "iterations": int(round(float(np.mean(iters)))),
            "per_set": ratios,
            "source": f"golden.orbis.datm (4-bit) and bsm on {2 * sets} token sets of 256x64 "
                      "(reports.orbis_datm realistic + clustered): DATM's ratio at BSM's pair loss at 50 %"}


# --------------------------------------------------------------------------- combined on the digits DiT

def _combined_hooks():
    """Hook classes, imported late (torch)."""
    from workloads.dit import Hooks
    from workloads.hooks import DittoHooks

    class SpatialCounting(DittoHooks):
        """Ditto hook that also counts the classes of spatial differences
        (Ditto+: each token row minus the previous row) of every linear input."""

        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.spatial = np.zeros(3, dtype=np.int64)

        def accumulate(self, block, name, xq):
            cur = xq.numpy().astype(np.int64)
            for i in range(cur.shape[0]):
                self.spatial += class_counts(differences(cur[i], mode="spatial"))
            return super().accumulate(block, name, xq)

    class Combined(Hooks):
        """RADiT around each sub-block, Ditto in every linear, ORBIS in SDPA.

        Where they interfere: a sub-block RADiT skips is not computed, so
        Ditto keeps the inputs and outputs of the last computed step as its
        reference (the next computed step differences against them), and
        ORBIS gets no fresh SDPA output on a skipped FC step and keeps its
        old pairs. The golden RADiT hook runs the sub-block before deciding
        (to measure); this class undoes what that run did to the other two.
        """

        def __init__(self, radit, ditto, orbis):
            self.radit, self.ditto, self.orbis = radit, ditto, orbis

        def begin_step(self, index, t):
            for h in (self.radit, self.ditto, self.orbis):
                h.begin_step(index, t)

        def observe(self, block, name, x):
            self.orbis.observe(block, name, x)

        def linear(self, block, name, x, layer):
            return self.ditto.linear(block, name, x, layer)

        def sdpa(self, block, q, k, v):
            return self.orbis.sdpa(block, q, k, v)

        def attention(self, block, h, compute):
            return self._sub(2 * block, block, ("qkv", "proj"), h, compute, self.radit.attention)

        def mlp(self, block, h, compute):
            return self._sub(2 * block + 1, block, ("fc1", "fc2"), h, compute, self.radit.mlp)

        def _sub(self, n, block, names, h, compute, run):
            keys = [(block, nm) for nm in names]
            before = {k: self.ditto.prev.get(k) for k in keys}
            pairs = list(self.orbis.current.get(block, [])) if names[0] == "qkv" else None
            out = run(block, h, compute)
            skip = np.asarray(self.radit.log[-1][n]["skip"], dtype=bool)
            for k in keys:
                self.ditto.stats[-1][k]["skipped"] = skip
            if skip.any():
                b = skip.shape[0]
                for k in keys:
                    cur, acc = self.ditto.prev[k]
                    pc, pa = before[k]
                    cur = cur.copy()
                    acc = acc.reshape(b, -1, acc.shape[-1]).copy()
                    cur[skip] = pc[skip]
                    acc[skip] = pa.reshape(b, -1, pa.shape[-1])[skip]
                    self.ditto.prev[k] = (cur, acc.reshape(-1, acc.shape[-1]))
                if pairs and block in self.orbis.current:
                    for i in np.flatnonzero(skip):
                        self.orbis.current[block][i] = pairs[i]
            return out

    return SpatialCounting, Combined


def _attn_cycles(cfg, seq: int) -> int:
    """Q K^T and P V of every head for one image, on 16-PE units of four
    8x8 lanes (``golden.ditto.itc_cycles`` per row): SDPA is not hooked into
    Ditto's difference path, so every design runs it on activations."""
    d = cfg.hidden // cfg.heads
    per_head = itc_cycles(seq, d) * -(-seq // CU_PES) + itc_cycles(seq, seq) * -(-d // CU_PES)
    return cfg.heads * per_head


def _linear_itc(cfg) -> dict:
    shapes = cfg.linear_shapes()
    return {name: itc_cycles(cfg.tokens, k) * -(-n // CU_PES) for name, (k, n) in shapes.items()}


def digits_cycles(cfg, steps: int, *, skip=None, ditto_stats=None, kinds=None, r: int = 0,
                  images: int = 1) -> dict:
    """Compute cycles of one run per image on one compute unit (16 PEs), from
    the runs' records: RADiT ``skip`` (steps, sub-blocks, images) removes a
    sub-block's work and adds the CCU's compress-and-compare cycles
    (tokens x hidden / 16 lanes, every sub-block and step); ``ditto_stats``
    (DittoHooks.stats) replaces each linear's A8W8 cycles by the packed cycles
    of the mode it ran in (0 where the sub-block was skipped); ``kinds`` and
    ``r`` shorten SDPA to N - r tokens on ORBIS's RC steps."""
    from workloads.dit import LINEARS

    lin = _linear_itc(cfg)
    ccu = -(-(cfg.tokens * cfg.hidden) // 16)
    out = np.zeros(images, dtype=np.float64)
    for s in range(steps):
        seq = cfg.tokens - (r if kinds is not None and kinds[s] == "RC" else 0)
        attn = _attn_cycles(cfg, seq)
        for b in range(cfg.depth):
            for sub, names in ((0, LINEARS[:2]), (1, LINEARS[2:])):
                n = 2 * b + sub
                done = np.ones(images, dtype=bool) if skip is None else ~skip[s, n]
                work = np.zeros(images)
                for name in names:
                    if ditto_stats is None:
                        work += lin[name]
                    else:
                        st = ditto_stats[s][(b, name)]
                        used = np.where(st["mode"] == 1, st["cycles_temporal"], st["cycles_act"])
                        work += used
                if sub == 0:
                    work += attn
                out += np.where(done, work, 0)
                if skip is not None:
                    out += ccu
    return {"per_image": out.tolist(), "mean": float(out.mean())}


def digits_section(quick: bool) -> dict:
    from workloads._torch import set_threads

    set_threads(int(os.environ.get("DITGEN_THREADS", "1")))
    from workloads.data import svc_agreement
    from workloads.dit import sample
    from workloads.hooks import Int8Hooks, OrbisHooks, RaditHooks
    from workloads.traces import calibrate, get_model, labels_for

    shape = QUICK if quick else FULL
    t0 = time.time()
    model, _, _ = get_model(os.environ.get("DITGEN_DIT_CHECKPOINT"))
    cfg = model.cfg
    steps, images = shape["steps"], shape["images"]
    labels = labels_for(images)
    r = min(shape["orbis_r"], cfg.tokens - 8)
    svc = lambda x: svc_agreement(x, labels)  # noqa: E731
    mse = lambda a, b: float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))  # noqa: E731
    x_ref = sample(model, labels, seed=0, steps=steps).numpy()
    scales = calibrate(model, samples=shape["calib"], seed=1, steps=steps)
    SpatialCounting, Combined = _combined_hooks()
    x_int8 = sample(model, labels, seed=0, steps=steps, hooks=Int8Hooks(model, scales)).numpy()
    rad = RaditHooks(steps, "linear")
    x_rad = sample(model, labels, seed=0, steps=steps, hooks=rad).numpy()
    dit = SpatialCounting(model, scales)
    x_dit = sample(model, labels, seed=0, steps=steps, hooks=dit).numpy()
    orb = OrbisHooks(r, "datm", num_dst=8)
    x_orb = sample(model, labels, seed=0, steps=steps, hooks=orb).numpy()
    comb = Combined(RaditHooks(steps, "linear"), SpatialCounting(model, scales), OrbisHooks(r, "datm", num_dst=8))
    x_comb = sample(model, labels, seed=0, steps=steps, hooks=comb).numpy()

    skip_rad = rad.records()["skip"]
    skip_comb = comb.radit.records()["skip"]
    base = digits_cycles(cfg, steps, images=images)["mean"]
    iso = gs.configs.DITTO_LANES / gs.configs.ITC_LANES   # Ditto's PEs per ITC PE at iso-area
    cyc = {
        "A8W8 baseline": base,
        "RADiT alone": digits_cycles(cfg, steps, skip=skip_rad, images=images)["mean"],
        "Ditto alone": digits_cycles(cfg, steps, ditto_stats=dit.stats, images=images)["mean"] / iso,
        "ORBIS alone": digits_cycles(cfg, steps, kinds=orb.kinds, r=r, images=images)["mean"],
        "combined": digits_cycles(cfg, steps, skip=skip_comb, ditto_stats=comb.ditto.stats, kinds=comb.orbis.kinds,
                                  r=r, images=images)["mean"] / iso,
    }
    speed = {k: base / v for k, v in cyc.items()}
    product = speed["RADiT alone"] * speed["Ditto alone"] * speed["ORBIS alone"]

    def mix(hooks):
        tot = sum(st[k]["counts_temporal"].sum(axis=0) for st in hooks.stats[1:] for k in st)
        return (tot / tot.sum()).tolist()

    quality = {name: {"svc": svc(x), "mse": mse(x, x_ref)} for name, x in
               (("full (FP32)", x_ref), ("INT8", x_int8), ("RADiT alone", x_rad), ("Ditto alone", x_dit),
                ("ORBIS alone", x_orb), ("combined", x_comb))}
    datm_fc = datm_cycles(cfg.tokens, cfg.hidden, 8, 16, 4, r)
    res = {
        "model": {"tokens": cfg.tokens, "hidden": cfg.hidden, "depth": cfg.depth, "heads": cfg.heads},
        "steps": steps, "images": images, "orbis_r": r, "quality": quality, "cycles": cyc, "speedup": speed,
        "product_of_alone": product, "interference": speed["combined"] / product,
        "ditto_exact": bool(np.array_equal(x_int8, x_dit)),
        "radit_skip": {"alone": float(skip_rad[1:].mean()), "combined": float(skip_comb[1:].mean()),
                       "per_sub_block": skip_rad[1:].mean(axis=(0, 2)).tolist()},
        "ditto_mix": {"alone": mix(dit), "combined": mix(comb.ditto),
                      "spatial": (dit.spatial / dit.spatial.sum()).tolist()},
        "datm_cycles_fc_block": datm_fc, "block_cycles": base / steps / cfg.depth,
        "seconds": round(time.time() - t0, 1),
    }
    return res


# --------------------------------------------------------------------------- headline table

def _ratio_row(base: gs.Cost, new: gs.Cost, extra_dram: float | None, clock_hz: float, net: bool = False) -> dict:
    return {"speedup": base.cycles / new.cycles, "energy_saving": 1 - new.energy_pj / base.energy_pj,
            "dram_overhead": (new.dram_bytes / base.dram_bytes - 1) if net else extra_dram / base.dram_bytes,
            "dram_net_change": new.dram_bytes / base.dram_bytes - 1,
            "base_seconds": base.seconds(clock_hz), "base_energy_j": base.energy_pj * 1e-12,
            "energy_by_kind": {k: v / base.energy_pj for k, v in new.energy.items()}}


def radit_headline(skip_per_block, source: str, paper_skip: float) -> dict:
    out = {"workloads": {}}
    for key, w in (("image", gs.DIT_XL2), ("video", gs.LATTE_XL2)):
        S, N = w.steps, 2 * w.depth
        run = gs.radit_run(w, gs.RADIT, gs.expand_skip(skip_per_block, S, N))
        row = _ratio_row(run["base"], run["radit"], run["ccu"].dram["codes"], gs.RADIT.clock_hz)
        row["skip_ratio"] = run["skip_ratio"]
        row["compute_bound_share"] = run["base"].compute / run["base"].cycles
        out["workloads"][key] = {"workload": w.name, **row}
        # The paper's own statistic through our model: a uniform skip ratio
        # equal to Table II's FLOP saving.
        p = gs.radit_run(w, gs.RADIT, gs.expand_skip([paper_skip], S, N))
        out["workloads"][key]["with_paper_skip"] = _ratio_row(p["base"], p["radit"], p["ccu"].dram["codes"],
                                                               gs.RADIT.clock_hz)
    img = out["workloads"]["image"]
    out.update({"speedup": img["speedup"], "energy_saving": img["energy_saving"],
                "dram_overhead": img["dram_overhead"], "speedup_video": out["workloads"]["video"]["speedup"],
                "energy_saving_video": out["workloads"]["video"]["energy_saving"],
                "baseline": "the same 64x64 FP16 array computing every block", "reason": {},
                "sources": {"skip": source, "hardware": gs.RADIT.sources, "dram": gs.RADIT.dram.source},
                "paper": {k: v for k, v in PAPER["radit"].items()}})
    return out


def ditto_headline(temporal_mix, spatial_mix, source: str) -> dict:
    cache = {}

    def stats(mix, tag):
        def f(layer):
            key = (tag, layer.k)
            if key not in cache:
                cache[key] = gs.mix_row_stats(layer.k, mix, source=source)
            return cache[key]
        return f

    out = {"workloads": {}}
    for key, w in (("DiT-XL/2", gs.DIT_XL2), ("Latte-XL/2", gs.LATTE_XL2_DDIM20)):
        run = gs.ditto_run(w, gs.DITTO, gs.ITC, stats(temporal_mix, "t"), spatial=stats(spatial_mix, "s"))
        row = _ratio_row(run["base"], run["ditto"], None, gs.ITC.clock_hz, net=True)
        row["plus_over_ditto"] = run["ditto"].cycles / run["ditto_plus"].cycles
        row["plus_energy_saving"] = 1 - run["ditto_plus"].energy_pj / run["base"].energy_pj
        row["defo_diff_share"] = run["defo_diff_share"]
        row["compute_bound_share"] = run["base"].compute / run["base"].cycles
        # Sensitivity: a quarter of the assumed DRAM bandwidth (one HBM2 stack class).
        slow = gs.Dram("HBM2 256 GB/s", 256e9, 32, 3.9, "sensitivity")
        d2, i2 = dataclasses.replace(gs.DITTO, dram=slow), dataclasses.replace(gs.ITC, dram=slow)
        r2 = gs.ditto_run(w, d2, i2, stats(temporal_mix, "t"))
        row["at_256GBps"] = _ratio_row(r2["base"], r2["ditto"], None, gs.ITC.clock_hz, net=True)
        # The paper's own mix through our model.
        r3 = gs.ditto_run(w, gs.DITTO, gs.ITC, stats((0.4448, 0.5152, 0.0399), "paper"))
        row["with_paper_mix"] = _ratio_row(r3["base"], r3["ditto"], None, gs.ITC.clock_hz, net=True)
        out["workloads"][key] = {"workload": w.name, **row}
    dit = out["workloads"]["DiT-XL/2"]
    out.update({"speedup": dit["speedup"], "energy_saving": dit["energy_saving"],
                "dram_overhead": dit["dram_overhead"], "plus_over_ditto": dit["plus_over_ditto"],
                "plus_energy_saving": dit["plus_energy_saving"],
                "baseline": "ITC: 27,648 A8W8 lanes, same SRAM, clock and DRAM (iso-area, Table III)",
                "reason": {}, "sources": {"mix": source, "temporal_mix": list(temporal_mix),
                                          "spatial_mix": list(spatial_mix), "hardware": gs.DITTO.sources,
                                          "dram": gs.DITTO.dram.source},
                "paper": dict(PAPER["ditto"])})
    return out


def orbis_headline(stats: dict) -> dict:
    out = {"workloads": {}}
    for key, w in (("CogVideoX", gs.COGVIDEOX_5B), ("HunyuanVideo", gs.HUNYUAN_VIDEO)):
        run = gs.orbis_run(w, gs.ORBIS, stats["ratio"], iterations=stats["iterations"])
        row = _ratio_row(run["base"], run["orbis"], run["orbis"].dram.get("pairs", 0), gs.ORBIS.clock_hz)
        row.update({"datm_exposed_cycles_per_fc_step": run["datm_exposed_per_fc_step"],
                    "datm_share_of_fc_step": run["datm_cycles_per_fc_step"] / run["array_cycles_per_step"]})
        out["workloads"][key] = {"workload": w.name, **row}
    best = max(out["workloads"].values(), key=lambda r: r["speedup"])
    out.update({"speedup": best["speedup"], "energy_saving": best["energy_saving"],
                "dram_overhead": best["dram_overhead"], "reduction_ratio": stats["ratio"],
                "reduction_ratio_vs_bsm": stats["vs_bsm"],
                "speedup_vs_a100": None, "energy_saving_vs_a100": None,
                "baseline": "ORBIS_BASE: the same 38 DXEs running the vanilla model",
                "reason": {"speedup_vs_a100": "no A100 model: the paper's 4.5x is over an A100; ours is "
                                              "ORBIS_ALL over ORBIS_BASE (paper: 1.21-1.67x from Fig. 7a)",
                           "energy_saving_vs_a100": "no A100 model (paper ALL over BASE: 17-46 % from Fig. 7b)",
                           "reduction_ratio_vs_asymrnr": "AsymRnR not modelled; BSM (ToMe's matching) stands in"},
                "sources": {"ratio": stats["source"], "hardware": gs.ORBIS.sources, "dram": gs.ORBIS.dram.source},
                "paper": dict(PAPER["orbis"])})
    return out


# --------------------------------------------------------------------------- report

def _pct(v):
    if v is None:
        return "–"
    return f"{100 * v:.1f} %" if abs(v) >= 0.01 or v == 0 else f"{100 * v:.2g} %"


def _x(v):
    return "–" if v is None else f"{v:.2f}x"


def _rng(v, f):
    return f"{f(v[0])} - {f(v[1])}" if isinstance(v, (tuple, list)) else f(v)


def markdown(res: dict) -> str:
    rad, dit, orb, dig = res["radit"], res["ditto"], res["orbis"], res.get("combined")
    pr, pd, po = rad["paper"], dit["paper"], orb["paper"]
    L = ["# System model: the papers' headline figures beside ours", "",
         "Cycles from the units' golden cycle models (`golden.systolic.cycles`, `golden.ditto.pack_cycles`, "
         "`golden.orbis.datm_cycles`), DRAM bytes per layer in whole bursts, energy per action from "
         "`golden.system.energy` (Horowitz ISSCC 2014 at 45 nm scaled by node, E ∝ node at fixed V; DRAM per "
         "paper or assumed, see below). Every statistic is measured here; its source is named in each row. "
         "No leakage, no host, no non-linear functions (they run beside the GEMMs).", "",
         "| paper | claim | paper | ours | baseline (ours) | statistic behind ours |", "|---|---|---:|---:|---|---|"]
    wi, wv = rad["workloads"]["image"], rad["workloads"]["video"]
    src_r = rad["sources"]["skip"]
    L += [f"| RADiT | speedup, image (DiT-XL/2, 250 steps) | {_x(pr['speedup'])} | {_x(rad['speedup'])} | "
          f"{rad['baseline']} | skip {_pct(wi['skip_ratio'])}: {src_r} |",
          f"| RADiT | speedup, video (Latte-XL/2) | {_x(pr['speedup_video'])} | {_x(rad['speedup_video'])} | "
          f"same | same |",
          f"| RADiT | energy saving, image | {_pct(pr['energy_saving'])} | {_pct(rad['energy_saving'])} | same | same |",
          f"| RADiT | energy saving, video | {_pct(pr['energy_saving_video'])} | "
          f"{_pct(rad['energy_saving_video'])} | same | same |",
          f"| RADiT | extra DRAM traffic for the comparisons | {_pct(pr['dram_overhead'])} | "
          f"{_pct(rad['dram_overhead'])} | bytes of the baseline | 4-bit codes written and read per sub-block |",
          f"| Ditto | speedup over ITC (DiT-XL/2) | {_x(pd['speedup'])} | {_x(dit['speedup'])} | {dit['baseline']} | "
          f"mix {', '.join(f'{100 * v:.1f}' for v in dit['sources']['temporal_mix'])} % (zero, low, full): "
          f"{dit['sources']['mix']} |",
          f"| Ditto | energy saving over ITC | {_pct(pd['energy_saving'])} | {_pct(dit['energy_saving'])} | same | same |",
          f"| Ditto | DRAM accesses over ITC | +{_pct(pd['dram_overhead'])} | +{_pct(dit['dram_overhead'])} | same | "
          "previous inputs (8-bit) and outputs (INT32) |",
          f"| Ditto+ | speedup over Ditto | {_x(pd['plus_over_ditto'])} | {_x(dit['plus_over_ditto'])} | Ditto | "
          f"spatial mix {', '.join(f'{100 * v:.1f}' for v in dit['sources']['spatial_mix'])} % |",
          f"| Ditto+ | energy saving over ITC | {_pct(pd['plus_energy_saving'])} | "
          f"{_pct(dit['plus_energy_saving'])} | ITC | same |",
          f"| ORBIS | speedup over an A100 | {_x(po['speedup'])} | – | {orb['reason']['speedup_vs_a100']} | |",
          f"| ORBIS | speedup ORBIS_ALL over ORBIS_BASE | {_rng(po['speedup_over_base'], _x)} | "
          f"{_x(orb['speedup'])} | {orb['baseline']} | ratio {_pct(orb['reduction_ratio'])}: "
          f"{orb['sources']['ratio']} |",
          f"| ORBIS | energy saving over an A100 | {_pct(po['energy_saving'])} | – | no A100 model | |",
          f"| ORBIS | energy saving ALL over BASE | {_rng(po['energy_saving_over_base'], _pct)} | "
          f"{_pct(orb['energy_saving'])} | same | same |",
          f"| ORBIS | reduction ratio over AsymRnR | {_x(po['reduction_ratio_vs_asymrnr'])} | "
          f"{_x(orb['reduction_ratio_vs_bsm'])} (over BSM) | BSM at 50 % | same |",
          f"| ORBIS | pair traffic | negligible | {_pct(orb['dram_overhead'])} | bytes of ORBIS_BASE | "
          "4 B per pair, written on FC, read on RC steps |", ""]
    L += ["## Per workload", "", "| paper | workload | speedup | energy saving | DRAM change | baseline run time | "
          "compute-bound share | note |", "|---|---|---:|---:|---:|---:|---:|---|"]
    for k, w in rad["workloads"].items():
        L.append(f"| RADiT | {w['workload']} | {_x(w['speedup'])} | {_pct(w['energy_saving'])} | "
                 f"{_pct(w['dram_net_change'])} | {w['base_seconds']:.2f} s | {_pct(w['compute_bound_share'])} | "
                 f"skip {_pct(w['skip_ratio'])} |")
        p = w["with_paper_skip"]
        L.append(f"| RADiT | {w['workload']}, paper's skip ({_pct(pr['skip_flops'])}, Table II) | "
                 f"{_x(p['speedup'])} | {_pct(p['energy_saving'])} | {_pct(p['dram_net_change'])} | | | "
                 "the paper's statistic through our model |")
    for k, w in dit["workloads"].items():
        L.append(f"| Ditto | {w['workload']} | {_x(w['speedup'])} | {_pct(w['energy_saving'])} | "
                 f"{_pct(w['dram_net_change'])} | {w['base_seconds']:.3f} s | {_pct(w['compute_bound_share'])} | "
                 f"Defo keeps differences on {_pct(w['defo_diff_share'])} of layers |")
        for tag, label in (("with_paper_mix", "paper's mix (44.48/51.52/3.99 %)"),
                           ("at_256GBps", "DRAM 256 GB/s instead of 1,555")):
            p = w[tag]
            L.append(f"| Ditto | {w['workload']}, {label} | {_x(p['speedup'])} | {_pct(p['energy_saving'])} | "
                     f"{_pct(p['dram_net_change'])} | | | sensitivity |")
    for k, w in orb["workloads"].items():
        L.append(f"| ORBIS | {w['workload']} | {_x(w['speedup'])} | {_pct(w['energy_saving'])} | "
                 f"{_pct(w['dram_net_change'])} | {w['base_seconds']:.1f} s | – | DATM is "
                 f"{_pct(w['datm_share_of_fc_step'])} of an FC step's array time, "
                 f"{w['datm_exposed_cycles_per_fc_step']} cycles exposed |")
    L += ["", "Configurations (golden.system.configs): RADiT 64x64 FP16 array, 28 nm, 500 MHz, LPDDR3 "
          "(12.8 GB/s, 20.3 pJ/bit assumed); Ditto 39,398 A4W8 lanes (616 units of 16 four-lane PEs) against "
          "ITC's 27,648 A8W8 (432 units), 45 nm, 1 GHz, 192 MB SRAM, DRAM assumed 1,555 GB/s at 3.9 pJ/bit; "
          "ORBIS 38 DXEs of a 64x64 FP16 array, 28 nm, 1 GHz, 40 MB, 1,935 GB/s at 3.9 pJ/bit. A Ditto "
          "activation execution runs at full width (docs/SPEC.md \"Ditto accelerator\").", ""]
    if dig:
        q = dig["quality"]
        L += ["## Combined: RADiT + Ditto + ORBIS on the digits DiT", "",
              f"Digits DiT ({dig['model']['tokens']} tokens, hidden {dig['model']['hidden']}, {dig['model']['depth']} "
              f"blocks), DDIM-{dig['steps']}, {dig['images']} images; RADiT linear α, Ditto with Defo on the W8A8 "
              f"path, ORBIS 4-bit DATM with r = {dig['orbis_r']} of {dig['model']['tokens']} tokens (1 FC + 3 RC). "
              "Cycles: compute only, per image on 16-PE units (the tiny layers never wait for DRAM); Ditto-based "
              "designs get the iso-area 39,398 / 27,648 more lanes; SDPA runs on activations in every design.", "",
              "| design | speedup over A8W8 | SVC agreement | pixel MSE vs full |", "|---|---:|---:|---:|"]
        for name in ("A8W8 baseline", "RADiT alone", "Ditto alone", "ORBIS alone", "combined"):
            qk = {"A8W8 baseline": "INT8"}.get(name, name)
            L.append(f"| {name} | {_x(dig['speedup'][name])} | {100 * q[qk]['svc']:.1f} % | {q[qk]['mse']:.4f} |")
        L += [f"| full (FP32) | – | {100 * q['full (FP32)']['svc']:.1f} % | 0 |", "",
              f"Product of the three alone: {_x(dig['product_of_alone'])}; combined / product = "
              f"{dig['interference']:.3f}. Ditto alone equals the INT8 path bit for bit: {dig['ditto_exact']}.", "",
              "Where they interfere: a skipped sub-block has no fresh difference, so the next computed step "
              "differences against an older input (RADiT skipped "
              f"{_pct(dig['radit_skip']['alone'])} alone, {_pct(dig['radit_skip']['combined'])} combined); "
              "ORBIS's reduced SDPA changes the projection's inputs and so the differences (temporal mix "
              f"zero/low/full {', '.join(f'{100 * v:.1f}' for v in dig['ditto_mix']['alone'])} % alone, "
              f"{', '.join(f'{100 * v:.1f}' for v in dig['ditto_mix']['combined'])} % combined); RADiT's Δ is "
              "measured on inputs that Ditto's INT8 path and ORBIS's merging already changed. "
              f"DATM on an FC block takes {dig['datm_cycles_fc_block']} cycles against "
              f"{dig['block_cycles']:.0f} of array work per block: hidden.", ""]
    L += ["![ours against the papers](system.png)", ""]
    return "\n".join(L)


def _plot(path: Path, res: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [("RADiT image", res["radit"]["speedup"], res["radit"]["paper"]["speedup"]),
            ("RADiT video", res["radit"]["speedup_video"], res["radit"]["paper"]["speedup_video"]),
            ("Ditto", res["ditto"]["speedup"], res["ditto"]["paper"]["speedup"]),
            ("ORBIS over BASE\n(paper: Fig. 7 mid)", res["orbis"]["speedup"],
             float(np.mean(res["orbis"]["paper"]["speedup_over_base"])))]
    erows = [("RADiT image", res["radit"]["energy_saving"], res["radit"]["paper"]["energy_saving"]),
             ("RADiT video", res["radit"]["energy_saving_video"], res["radit"]["paper"]["energy_saving_video"]),
             ("Ditto", res["ditto"]["energy_saving"], res["ditto"]["paper"]["energy_saving"]),
             ("ORBIS over BASE\n(paper: Fig. 7 mid)", res["orbis"]["energy_saving"],
              float(np.mean(res["orbis"]["paper"]["energy_saving_over_base"])))]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.4))
    for a, data, label in ((ax[0], rows, "speedup (x)"), (ax[1], erows, "energy saving")):
        xs = np.arange(len(data))
        a.bar(xs - 0.2, [d[2] for d in data], 0.4, label="paper", color="0.6")
        a.bar(xs + 0.2, [d[1] for d in data], 0.4, label="ours (system model)", color="tab:blue")
        a.set_xticks(xs, [d[0] for d in data], fontsize=8)
        a.set_ylabel(label)
        a.legend(fontsize=7)
    ax[1].yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(out_dir: Path, quick: bool = False, *, combined: bool = True) -> dict:
    with _one_blas_thread():
        return _run(out_dir, quick, combined)


def _run(out_dir: Path, quick: bool, combined: bool) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    shape = QUICK if quick else FULL
    dig = digits_section(quick) if combined else None
    toy = toy_skip(shape["toy"])
    if dig is not None:
        skip = dig["radit_skip"]["per_sub_block"]
        skip_src = (f"RaditHooks (linear α) on the digits DiT, {dig['images']} images, DDIM-{dig['steps']}; "
                    f"per sub-block ratio mapped by relative depth")
        tmix, smix = dig["ditto_mix"]["alone"], dig["ditto_mix"]["spatial"]
        mix_src = f"DittoHooks on the digits DiT, {dig['images']} images, DDIM-{dig['steps']}, steps 2..T"
    else:
        skip, skip_src = toy["per_block"], toy["source"]
        from golden.ditto import trajectory
        acts = trajectory(np.random.default_rng(2024), 6, (32, 256))
        tot = sum(class_counts(differences(acts[t], acts[t - 1])) for t in range(1, 6))
        sp = sum(class_counts(differences(acts[t], mode="spatial")) for t in range(6))
        tmix, smix = (tot / tot.sum()).tolist(), (sp / sp.sum()).tolist()
        mix_src = "golden.ditto.trajectory (default generator, tuned to the paper's mix)"
    ostats = orbis_stats(shape["orbis_sets"])
    res = {"radit": radit_headline(skip, skip_src, PAPER["radit"]["skip_flops"]),
           "ditto": ditto_headline(tmix, smix, mix_src),
           "orbis": orbis_headline(ostats),
           "statistics": {"radit_toy": {k: v for k, v in toy.items()}, "orbis": ostats},
           "combined": dig, "quick": quick}
    res["radit"]["toy_stack"] = {"skip": toy["saved"], "speedup": radit_headline(
        toy["per_block"], toy["source"], PAPER["radit"]["skip_flops"])["speedup"], "source": toy["source"]}
    res["seconds"] = round(time.time() - t0, 1)
    text = markdown(res)
    (out_dir / "system.md").write_text(text)
    (out_dir / "system.json").write_text(json.dumps(res, indent=1, default=_jsonable))
    try:
        _plot(out_dir / "system.png", res)
    except ImportError:
        pass
    print(text)
    print(f"(system: {res['seconds']} s)")
    return json.loads(json.dumps(res, default=_jsonable))


def _jsonable(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj)}")
