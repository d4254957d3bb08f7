"""Accelerator roll-ups: the papers' area-overhead comparisons rebuilt from our
own per-unit synthesis results, plus parameter sweeps and plots.

Each accelerator configuration is documented below with the paper's figure it
is compared against. The papers give no buffer sizes (RADiT only says SRAM is
about 85 % of its area), so each ratio is reported twice: against logic alone
and against logic plus documented default buffers priced by
:mod:`synth.sram`. A plot shows how the ratio moves with the buffer size.
A configuration whose units are not registered is reported as missing, not
guessed.

Default buffers (one DiT-XL/2 layer: 256 tokens, hidden 1152, MLP 4608, INT8):
* weights: one 1152 x 1152 projection, 1.27 MiB, rows of 64 bytes (one array row);
* activations: 256 x 4608 INT8 (the widest layer input), 1.13 MiB;
* partial sums / outputs: 256 x 1152 INT32, 1.13 MiB, rows of 64 x 32 bits.
"""

from __future__ import annotations

import json
from pathlib import Path

from hdl.accel.configs import CONFIGS, UNIT_CONFIGS, AcceleratorConfig

from .flow import GE_UM2, synthesize_many, write_report
from .sram import sram_area

TOKENS, HIDDEN, MLP = 256, 1152, 4608

# (name, depth, width) at scale 1.0; widths follow a 64-wide array's rows.
DEFAULT_BUFFERS = [
    ("weight buffer", HIDDEN * HIDDEN // 64, 64 * 8),
    ("activation buffer", TOKENS * MLP // 64, 64 * 8),
    ("psum/output buffer", TOKENS * HIDDEN // 64, 64 * 32),
]
BUFFER_SCALES = [0.125, 0.25, 0.5, 1.0, 2.0, 4.0]

# The FP16 PE beside the INT8 one: an extra synthesis run of systolic_pe.
FP16_PE = "systolic_pe__DTYPEfp16"
EXTRA_JOBS = [("systolic_pe", {"DTYPE": "fp16"}, FP16_PE)]
# Named unit configurations (hdl/accel/configs.py), e.g. the N = 4,096 DATM engine.
EXTRA_JOBS += [(unit, params, name) for name, (unit, params) in UNIT_CONFIGS.items()]

# (label, numerator record, denominator record or constant µm², paper/target ratio, paper text).
# Records are best-mapped (synth/flow.py: the smaller of plain and Booth), so
# no ratio is taken against a baseline priced with a worse multiplier.
PAIR_RATIOS = [
    ("Ditto A4W8 PE / A8W8 PE", "ditto_pe", "itc_pe", 27648 / 39398, "27,648 / 39,398 = 0.70 (iso-area table)"),
    ("INT8 MAC / 45 nm reference (8-bit mul 282 + 32-bit add 137 µm²)", "systolic_mac_ref", 419.0, 1.0,
     "Horowitz ISSCC 2014: 282 + 137 = 419 µm²"),
    ("systolic PE / minimal INT8 MAC", "systolic_pe", "systolic_mac_ref", 1.2, "target: <= 1.2"),
    # Horowitz's 45 nm figures put an FP16 MAC (FP16 mul + FP32 add) at
    # 5,824 / 419 = 13.9x the INT8 one; they are timing-driven designs, while
    # this flow maps for area alone with no clock target, which favours the
    # long single-cycle FP datapath (its logic depth is reported beside it).
    ("FP16 PE / INT8 PE", FP16_PE, "systolic_pe", None,
     "literature: an FP16 MAC costs several times an INT8 MAC"),
    ("FP16 PE / minimal INT8 MAC", FP16_PE, "systolic_mac_ref", 5824.0 / 419.0,
     "Horowitz ISSCC 2014, 45 nm: (1,640 + 4,184) / (282 + 137) = 13.9"),
    ("FP16 PE / 45 nm reference (FP16 mul 1,640 + FP32 add 4,184 µm²)", FP16_PE, 5824.0, 1.0,
     "Horowitz ISSCC 2014: 1,640 + 4,184 = 5,824 µm²"),
]

# Parameter sweeps: (unit, parameter(s) to vary together, values).
SWEEPS = [
    ("ccu_compress", ("LANES",), [4, 8, 16, 32, 64]),
    ("systolic_array", ("ROWS", "COLS"), [4, 8, 16, 32, 64]),
]


def buffer_area(scale: float = 1.0) -> float:
    total = 0.0
    for _name, depth, width in DEFAULT_BUFFERS:
        total += sram_area(max(1, int(depth * scale)), width).area_um2
    return total


def _evaluate(cfg: AcceleratorConfig, recs: dict, scale: float = 1.0) -> dict | None:
    missing = [u for u in cfg.parts if u not in recs]
    if missing:
        return {"name": cfg.name, "missing": missing}
    logic = sum(recs[u]["area_um2"] * n for u, n in cfg.parts.items())
    over = sum(recs[u]["area_um2"] * cfg.parts[u] for u in cfg.overhead)
    buffers = buffer_area(scale) if cfg.buffers else 0.0
    mems = {name: sram_area(depth, width).area_um2 for name, depth, width, _ in cfg.memories}
    mem_over = sum(mems[name] for name, _, _, over_ in cfg.memories if over_)
    extra = {}
    if cfg.memories:
        total = logic + buffers + sum(mems.values())
        extra = {"memories_um2": mems, "share_with_memories": (over + mem_over) / total,
                 "logic_share_with_memories": over / total}
    return {
        "name": cfg.name, "paper": cfg.paper, "paper_ratio": cfg.paper_ratio,
        "parts": {u: {"count": n, "area_um2": recs[u]["area_um2"]} for u, n in cfg.parts.items()},
        "overhead_units": list(cfg.overhead), "overhead_um2": over, "logic_um2": logic, "buffers_um2": buffers,
        "share_of_logic": over / logic, "share_with_buffers": over / (logic + buffers),
        "sram_fraction": buffers / (logic + buffers), **extra,
    }


def rollups(recs: dict) -> dict:
    out = {"configs": [], "pairs": [], "buffer_sweep": {}}
    for cfg in CONFIGS:
        out["configs"].append(_evaluate(cfg, recs))
        if all(u in recs for u in cfg.parts):
            out["buffer_sweep"][cfg.name] = [
                {"scale": s, "buffers_um2": buffer_area(s), **{k: v for k, v in _evaluate(cfg, recs, s).items()
                                                              if k in ("share_with_buffers", "sram_fraction")}}
                for s in BUFFER_SCALES]
    for label, num, den, paper, text in PAIR_RATIOS:
        if num not in recs or (isinstance(den, str) and den not in recs):
            out["pairs"].append({"label": label, "missing": [u for u in (num, den) if isinstance(u, str) and u not in recs]})
            continue
        d = recs[den]["area_um2"] if isinstance(den, str) else den
        pair = {"label": label, "ratio": recs[num]["area_um2"] / d, "paper": paper, "paper_text": text,
                "numerator_um2": recs[num]["area_um2"], "denominator_um2": d,
                "mappings": [recs[u].get("mapping", "plain") for u in (num, den) if isinstance(u, str)]}
        if paper is not None:
            # What the numerator would have to be for the paper's ratio.
            pair["numerator_for_paper_um2"] = paper * d
            pair["numerator_change_for_paper"] = paper * d / recs[num]["area_um2"] - 1
        out["pairs"].append(pair)
    return out


def full_report(out: Path, *, jobs: int | None = None, units: list[str] | None = None) -> str:
    """Synthesise every unit, the sweeps and the roll-ups; write report, JSON and plots."""
    from hdl import registry

    out = Path(out)
    # A unit may opt out of the default run (``synth={"in_all": False}``):
    # the roll-ups price it from its parts; ``make synth UNIT=...`` still runs it.
    names = units or [n for n, u in registry.units().items() if u.synth.get("in_all", True)]
    jobs_list = [(u, None, u) for u in names]
    jobs_list += [job for job in EXTRA_JOBS if job[0] in names]
    for unit, keys, values in SWEEPS:
        if unit not in names:
            continue
        defaults = registry.get(unit).defaults()
        for v in values:
            params = {k: v for k in keys}
            if all(defaults.get(k) == v for k in keys):
                continue  # the default run covers it
            jobs_list.append((unit, params, f"{unit}__{'_'.join(f'{k}{v}' for k in keys)}"))
    # Longest first so that the slowest Yosys runs start early.
    jobs_list.sort(key=lambda j: 0 if j[0] in ("systolic_array", "orbis_datm") else 1)
    records = synthesize_many(jobs_list, jobs=jobs, out_root=out)
    by_name = {r["name"]: r for r in records}
    units_only = [by_name[u] for u in names if u in by_name]
    text = write_report(units_only, out / "report.md")
    roll = rollups(by_name)
    sweeps = _sweep_table(by_name)
    (out / "rollups.json").write_text(json.dumps({"rollups": roll, "sweeps": sweeps}, indent=1, default=float))
    text += _rollup_markdown(roll) + _sweep_markdown(sweeps)
    text += _plots(out, roll, sweeps, by_name)
    (out / "report.md").write_text(text)
    return text


def _sweep_table(recs: dict) -> dict:
    out = {}
    for unit, keys, values in SWEEPS:
        pts = []
        for v in values:
            rec = recs.get(f"{unit}__{'_'.join(f'{k}{v}' for k in keys)}") or (
                recs.get(unit) if recs.get(unit) and all(recs[unit]["params"].get(k) == v for k in keys) else None)
            if rec:
                pts.append({"value": v, "area_um2": rec["area_um2"], "logic_um2": rec["logic_um2"],
                            "sequential_um2": rec["sequential_um2"], "memory_um2": rec.get("memory_um2", 0.0)})
        if pts:
            out[f"{unit}:{'='.join(keys)}"] = pts
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.3g} %"


def _rollup_markdown(roll: dict) -> str:
    lines = ["", "## Accelerator roll-ups against the papers", "",
             "Buffers: one DiT-XL/2 layer's weights, activations and partial sums "
             f"({buffer_area(1.0) / 1e6:.2f} mm² in the SRAM model); see `synth/rollup.py`.", "",
             "| configuration | overhead µm² | total logic µm² | share of logic | share of logic + SRAM | SRAM fraction | paper |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for c in roll["configs"]:
        if "missing" in c:
            lines.append(f"| {c['name']} | not available: unit(s) {', '.join(c['missing'])} not registered | | | | | |")
            continue
        lines.append(f"| {c['name']} | {c['overhead_um2']:,.0f} | {c['logic_um2']:,.0f} | {_pct(c['share_of_logic'])} | "
                     f"{_pct(c['share_with_buffers'])} | {_pct(c['sram_fraction'])} | {c['paper']} |")
    for c in roll["configs"]:
        if c.get("memories_um2"):
            mems = ", ".join(f"{name} {area:,.0f} µm²" for name, area in c["memories_um2"].items())
            units = " + ".join(c.get("overhead_units", ())) or "overhead"
            lines += ["", f"{c['name']}: {mems}; {units} logic = {_pct(c['logic_share_with_memories'])} and "
                          f"with these memories {_pct(c['share_with_memories'])} of logic + buffers + memories."]
    lines += ["", "Ratios between best-mapped units (mapping of numerator / denominator in brackets).", "",
              "| ratio | ours | paper / target | numerator for the paper's ratio |", "|---|---:|---|---:|"]
    for p in roll["pairs"]:
        if "missing" in p:
            lines.append(f"| {p['label']} | n/a (missing {', '.join(p['missing'])}) | | |")
            continue
        maps = "/".join(p.get("mappings", []))
        need = "" if p.get("numerator_for_paper_um2") is None else \
            f"{p['numerator_for_paper_um2']:,.0f} µm² ({100 * p['numerator_change_for_paper']:+.1f} %)"
        lines.append(f"| {p['label']} | {p['ratio']:.3f} ({p['numerator_um2']:,.0f} / {p['denominator_um2']:,.0f} µm²"
                     f"{', ' + maps if maps else ''}) | {p['paper_text']} | {need} |")
    return "\n".join(lines) + "\n"


def _sweep_markdown(sweeps: dict) -> str:
    lines = ["", "## Area against a parameter", ""]
    for key, pts in sweeps.items():
        unit, param = key.split(":")
        lines += [f"`{unit}`, {param}:", "", "| value | total µm² | GE | logic µm² | flip-flop µm² |", "|---:|---:|---:|---:|---:|"]
        for p in pts:
            lines.append(f"| {p['value']} | {p['area_um2']:,.0f} | {p['area_um2'] / GE_UM2:,.0f} | "
                         f"{p['logic_um2']:,.0f} | {p['sequential_um2']:,.0f} |")
        lines.append("")
    return "\n".join(lines)


def _plots(out: Path, roll: dict, sweeps: dict, recs: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    configs = [c for c in roll["configs"] if "missing" not in c and c["name"] in ("RADiT", "Ditto", "ORBIS")]
    if configs:
        # Shares, not absolute areas: the configurations differ by 40x in size,
        # and the question each paper answers is what fraction a part takes.
        units = list(dict.fromkeys(u for c in configs for u in c["parts"]))
        colors = {u: plt.cm.tab10(i % 10) for i, u in enumerate(units)}
        colors["SRAM buffers"] = "lightgrey"
        fig, ax = plt.subplots(figsize=(8.5, 4.5))
        labelled = set()
        for i, c in enumerate(configs):
            total = c["logic_um2"] + c["buffers_um2"]
            pieces = [(u, p["count"] * p["area_um2"]) for u, p in c["parts"].items()]
            pieces.append(("SRAM buffers", c["buffers_um2"]))
            bottom = 0.0
            for unit, area in pieces:
                share = 100 * area / total
                ax.bar(i, share, bottom=bottom, color=colors[unit],
                       label=unit if unit not in labelled else None)
                labelled.add(unit)
                bottom += share
            ax.text(i, 101, f"{total / 1e6:.1f} mm²", ha="center", fontsize=8)
        ax.set_xticks(range(len(configs)), [c["name"] for c in configs])
        ax.set_ylim(0, 110)
        ax.set_ylabel("share of accelerator area (%)")
        ax.set_title("Area breakdown per accelerator (Nangate45 cells + SRAM model)")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        fig.savefig(out / "area_breakdown.png", dpi=120)
        plt.close(fig)
        written.append("area_breakdown.png")
    if roll["buffer_sweep"]:
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, pts in roll["buffer_sweep"].items():
            ax.plot([p["buffers_um2"] / 1e6 for p in pts], [100 * p["share_with_buffers"] for p in pts], "o-", label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("on-chip buffers (mm²)")
        ax.set_ylabel("overhead share of total area (%)")
        ax.set_title("Overhead share against buffer size")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "overhead_vs_buffers.png", dpi=120)
        plt.close(fig)
        written.append("overhead_vs_buffers.png")
    for key, pts in sweeps.items():
        if len(pts) < 2:
            continue
        unit, param = key.split(":")
        fig, ax = plt.subplots(figsize=(6, 4))
        xs = [p["value"] for p in pts]
        ax.plot(xs, [p["area_um2"] for p in pts], "o-", label="total")
        ax.plot(xs, [p["logic_um2"] for p in pts], "s--", label="logic")
        ax.plot(xs, [p["sequential_um2"] for p in pts], "^--", label="flip-flops")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(param)
        ax.set_ylabel("area (µm²)")
        ax.set_title(f"{unit}: area against {param}")
        ax.legend()
        fig.tight_layout()
        fname = f"sweep_{unit}.png"
        fig.savefig(out / fname, dpi=120)
        plt.close(fig)
        written.append(fname)
    if not written:
        return ""
    return "\n## Plots\n\n" + "\n".join(f"![{w}]({w})" for w in written) + "\n"
