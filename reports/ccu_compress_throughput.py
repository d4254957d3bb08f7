"""CCU compressor throughput in co-simulation: FP16 elements per cycle with an
always-ready sink and under random gaps and back-pressure, against the ideal
LANES elements per cycle."""

from __future__ import annotations

import json
from pathlib import Path

from sim import runner

SCENARIOS = [
    ("ideal (no gaps, sink always ready)", 0.0, 0.0),
    ("20% source gaps", 0.2, 0.0),
    ("30% sink back-pressure", 0.0, 0.3),
    ("20% gaps + 30% back-pressure", 0.2, 0.3),
]


def run(out_dir: Path, quick: bool = False) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lanes = 16
    rows = []
    for label, idle, bp in SCENARIOS:
        res = runner.run("ccu_compress", {"LANES": lanes}, testcase="throughput", seed=1,
                         name=f"bench-ccu-{idle}-{bp}",
                         args={"idle": idle, "backpressure": bp, "patterns": (256 if quick else 4096) * lanes})
        r = res["result"]
        rows.append({"scenario": label, "idle": idle, "backpressure": bp, **r,
                     "vs_ideal": r["elements_per_cycle"] / lanes})
    lines = ["# CCU compressor throughput (co-simulation, Verilator)", "",
             f"LANES = {lanes}; ideal = {lanes} FP16 elements per cycle.", "",
             "| scenario | elements | cycles | elements/cycle | of ideal |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['scenario']} | {r['elements']} | {r['cycles']} | "
                     f"{r['elements_per_cycle']:.2f} | {r['vs_ideal']:.3f} |")
    text = "\n".join(lines) + "\n"
    (out_dir / "ccu_compress_throughput.md").write_text(text)
    (out_dir / "ccu_compress_throughput.json").write_text(json.dumps(rows, indent=1))
    print(text)
    return {"rows": rows}
