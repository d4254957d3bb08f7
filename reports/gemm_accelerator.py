"""GEMM accelerator on DiT linear layers, co-simulated at 16x16: RTL GEMM
cycles (the GEMM_CYCLES counter read over AXI4-Lite) against the golden cycle
model, utilisation, and Verilator's simulated cycles per second.

Layers: the four linear layers of the digits DiT (``workloads.dit``: 16 tokens
per image, a batch of 16 images, so M = 256 rows) and the DiT-XL/2 attention
output projection (M, K, N) = (256, 1152, 1152) (``golden.systolic.dit_xl2_layers``).
The host program per layer: LOAD A once, then for each N chunk LOAD W, GEMM,
VECTOR to the stream. The scratchpads of the bench top hold a whole digits
layer; DiT-XL/2's weights (1.3 MB) do not fit, so its N is split into chunks
of 128 columns (9 GEMM commands). Utilisation = M*K*N / (ROWS*COLS * sum of
the GEMM commands' cycles): the loads between chunks are not counted (a
top that double-buffers the weight scratchpad would hide them).
"""

from __future__ import annotations

import json
from pathlib import Path

from golden.systolic import dit_xl2_layers
from sim import runner

# The bench top: 16x16 array, 16-byte streams; depths sized for M = 256.
BENCH = {"ROWS": 16, "COLS": 16, "A_DEPTH": 32768, "W_DEPTH": 16384, "ACC_DEPTH": 8192, "QUEUE_DEPTH": 16,
         "STREAM_BYTES": 16}
IMAGES = 16
XL_CHUNK = 128


def layers(quick: bool) -> list[dict]:
    from workloads.dit import LINEARS, DiTConfig

    cfg = DiTConfig()
    m = cfg.tokens * IMAGES
    shapes = cfg.linear_shapes()
    out = [{"name": f"digits {name}", "m": m, "k": shapes[name][0], "n": shapes[name][1]} for name in LINEARS]
    name, m, k, n, _ = next(x for x in dit_xl2_layers() if x[0] == "attention output projection")
    xl = {"name": f"DiT-XL/2 {name}", "m": m, "k": k, "n": n, "n_chunk": XL_CHUNK}
    if quick:
        xl["chunks"] = 1  # one of the nine chunks: same per-chunk schedule
    return out + [xl]


def run(out_dir: Path, quick: bool = False) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = layers(quick)
    res = runner.run("gemm_accelerator", BENCH, testcase="layers", seed=1,
                     name=f"bench-gemm-accelerator{'-quick' if quick else ''}", args={"layers": jobs})
    rows = res["result"]["layers"]
    cycles = sum(r["gemm_run_cycles"] for r in rows)
    wall = sum(r["gemm_run_wall_s"] for r in rows)
    cpu = sum(r["gemm_run_cpu_s"] for r in rows)
    speed = cycles / wall if wall else 0.0
    cpu_speed = cycles / cpu if cpu else 0.0
    result = {
        "config": BENCH, "images": IMAGES, "quick": quick,
        "layers": [{k: r[k] for k in ("name", "m", "k", "n", "rtl_cycles", "model_cycles", "utilisation",
                                     "n_chunk", "chunks", "n_run")} for r in rows],
        "sim_cycles_per_s": speed, "sim_cycles_per_cpu_s": cpu_speed, "sim_cycles": cycles, "sim_wall_s": wall,
        "sim_cpu_s": cpu,
    }
    lines = ["# GEMM accelerator on DiT linear layers (16x16 array, co-simulated in Verilator)", "",
             f"Digits DiT: {IMAGES} images x 16 tokens = M = 256 rows. Cycles are the GEMM command's "
             "(GEMM_CYCLES over AXI4-Lite); model = `golden.accel.command_cycles`. "
             f"DiT-XL/2 runs as {XL_CHUNK}-column N chunks (weights do not fit the {BENCH['W_DEPTH']}-row "
             "weight scratchpad), utilisation over the sum of its GEMM commands; loads between chunks excluded.",
             "", "| layer | M | K | N | GEMM commands | RTL cycles | model cycles | utilisation |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        n_note = f"{r['n']}" if r["n_run"] == r["n"] else f"{r['n']} ({r['n_run']} run)"
        lines.append(f"| {r['name']} | {r['m']} | {r['k']} | {n_note} | {r['chunks']} | {r['rtl_cycles']:,} | "
                     f"{r['model_cycles']:,} | {100 * r['utilisation']:.2f} % |")
    lines += ["", f"Simulation speed (GEMM runs: the testbench awaits `irq`, no Python per cycle): "
              f"{cycles:,} cycles in {wall:.2f} s wall = **{speed:,.0f} cycles/s**; "
              f"{cpu:.2f} s of simulator CPU = {cpu_speed:,.0f} cycles per CPU second (wall clock "
              "depends on the load of the shared machine)."]
    if quick:
        lines += ["", "Quick run: one of DiT-XL/2's nine N chunks."]
    text = "\n".join(lines) + "\n"
    (out_dir / "gemm_accelerator.md").write_text(text)
    (out_dir / "gemm_accelerator.json").write_text(json.dumps(result, indent=1))
    print(text)
    return result
