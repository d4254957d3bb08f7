"""Weight-stationary systolic array on DiT-XL/2: cycles and utilisation per
layer and per transformer block on a 64x64 array (the cycle model of
``golden.systolic``, which the co-simulation tests hold the RTL to), against
SCALE-Sim's weight-stationary estimate; then one co-simulation of a DiT-shaped
tiled product measuring cycles against the model and the simulators' speed
(Verilator, and Icarus where ``iverilog`` is installed)."""

from __future__ import annotations

import json
from pathlib import Path

from golden.systolic import cycles, dit_xl2_layers, scalesim_ws_cycles
from sim import runner

ROWS = COLS = 64


def layer_table() -> tuple[list[dict], dict]:
    rows = []
    block = {"cycles": 0, "scalesim": 0, "macs": 0}
    for name, m, k, n, count in dit_xl2_layers():
        c = cycles(m, k, n, ROWS, COLS)
        ss = scalesim_ws_cycles(m, k, n, ROWS, COLS)
        rows.append({"layer": name, "M": m, "K": k, "N": n, "per_block": count, "tiles": c.tiles,
                     "cycles": c.total, "weight_load": c.weight_load, "steady": c.steady,
                     "load_stall": c.load_stall, "fill": c.fill, "drain": c.drain,
                     "utilization": c.utilization, "mapping_efficiency": c.mapping_efficiency,
                     "scalesim_cycles": ss, "scalesim_utilization": c.macs / (ROWS * COLS * ss)})
        block["cycles"] += count * c.total
        block["scalesim"] += count * ss
        block["macs"] += count * c.macs
    block["utilization"] = block["macs"] / (ROWS * COLS * block["cycles"])
    block["scalesim_utilization"] = block["macs"] / (ROWS * COLS * block["scalesim"])
    return rows, block


def cosim(quick: bool) -> list[dict]:
    """One DiT-shaped product through the RTL per available simulator."""
    # A 64x64 Verilator build is ~320 MB of C++ with the runner's
    # --public-flat-rw (every PE instance's signals public): too large for a
    # report run, so the RTL runs at 16x16 (8x8 quick) with DiT's M.
    size = 8 if quick else 16
    # M = 256 like DiT-XL/2; K and N two tiles each.
    job = {"m": 256, "k": 2 * size, "n": 2 * size, "values": "random", "check_cycles": True}
    out = []
    for sim in runner.available_simulators():
        res = runner.run("systolic_array", {"ROWS": size, "COLS": size}, testcase="matmul_tiles",
                         sim=sim, seed=1, name=f"bench-systolic-{sim}-{size}", args={"jobs": [job]})
        r = res["result"]["jobs"][0]
        out.append({"simulator": sim, "array": f"{size}x{size}", "M": job["m"], "K": job["k"],
                    "N": job["n"], "cycles": r["cycles"], "model": r["model"], "wall_s": r["wall_s"],
                    "cycles_per_s": r["cycles"] / r["wall_s"]})
    return out


def run(out_dir: Path, quick: bool = False) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    layers, block = layer_table()
    sims = cosim(quick)
    lines = ["# Systolic array on DiT-XL/2 (64x64, weight-stationary, INT8 -> INT32)", "",
             "Cycle model `golden.systolic.cycles` (the co-simulation tests check the RTL against it "
             "cycle for cycle, here too on a smaller array below): the next tile's weights load while the current tile computes, so a "
             "tile costs max(M, 64) cycles; one weight load, fill and drain per layer are exposed. "
             "SCALE-Sim's WS estimate reloads weights without overlap: folds x (2R + C + M - 2).", "",
             "| layer | M | K | N | per block | tiles | cycles | utilisation | mapping eff. "
             "| SCALE-Sim WS cycles | SCALE-Sim util. |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in layers:
        lines.append(f"| {r['layer']} | {r['M']} | {r['K']} | {r['N']} | {r['per_block']} | {r['tiles']} | "
                     f"{r['cycles']:,} | {100 * r['utilization']:.2f} % | {100 * r['mapping_efficiency']:.1f} % | "
                     f"{r['scalesim_cycles']:,} | {100 * r['scalesim_utilization']:.1f} % |")
    lines.append(f"| **transformer block** | | | | | | **{block['cycles']:,}** | "
                 f"**{100 * block['utilization']:.2f} %** | | **{block['scalesim']:,}** | "
                 f"**{100 * block['scalesim_utilization']:.1f} %** |")
    lines += ["", "Attention products have K or N = 72 (head dimension): two 64-wide tiles, the "
              "second 1/8 used, so their mapping efficiency (and utilisation) is 56 %; the "
              "cycle overlap is as good as on the linear layers.", "",
              "## Co-simulation (RTL cycles against the model, simulation speed)", "",
              "| simulator | array | M x K x N | cycles | model | wall s | cycles/s |",
              "|---|---|---|---:|---:|---:|---:|"]
    for s in sims:
        lines.append(f"| {s['simulator']} | {s['array']} | {s['M']}x{s['K']}x{s['N']} | {s['cycles']:,} | "
                     f"{s['model']:,} | {s['wall_s']:.2f} | {s['cycles_per_s']:,.0f} |")
    lines += ["", "Both simulators run the same cocotb testbench in one benchmark run; wall time "
              "covers the job (stream drivers, sink and scoreboard included), not the build."]
    if "icarus" not in runner.available_simulators():
        lines += ["", "Icarus Verilog (`iverilog`) is not installed here: Verilator only."]
    text = "\n".join(lines) + "\n"
    (out_dir / "systolic.md").write_text(text)
    (out_dir / "systolic.json").write_text(json.dumps({"layers": layers, "block": block, "cosim": sims},
                                                      indent=1))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 3.5))
        xs = range(len(layers))
        ax.bar([x - 0.2 for x in xs], [100 * r["utilization"] for r in layers], 0.4, label="this array")
        ax.bar([x + 0.2 for x in xs], [100 * r["scalesim_utilization"] for r in layers], 0.4,
               label="SCALE-Sim WS")
        ax.set_xticks(list(xs), [r["layer"].replace(" (per head)", "") for r in layers], rotation=20,
                      ha="right", fontsize=7)
        ax.set_ylabel("utilisation %")
        ax.set_title("DiT-XL/2 layers on a 64x64 WS array")
        ax.set_ylim(0, 118)
        ax.legend(fontsize=7, loc="upper center", ncol=2)
        fig.tight_layout()
        fig.savefig(out_dir / "systolic.png", dpi=120)
        plt.close(fig)
    except ImportError:
        pass
    print(text)
    return {"layers": layers, "block": block, "cosim": sims}
