"""``ditgen``: list, emit, lint, synthesise and benchmark the registered units.

Examples::

    ditgen list
    ditgen emit --all
    ditgen emit ccu_compress LANES=8 SATURATE=0 --out build/verilog
    ditgen synth --all --jobs 2
    ditgen lint --all
    ditgen bench
    ditgen header axi_shell_demo --out build/include

Errors (unknown unit, unknown or invalid parameter) print one line and exit
with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hdl.paths import BUILD



class UsageError(Exception):
    pass


def _parse_assignments(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"parameter {item!r} is not NAME=VALUE")
        name, value = item.split("=", 1)
        out[name.strip()] = value.strip()
    return out


def _targets(args) -> list[tuple[str, dict]]:
    """(unit, params) pairs selected by positional args (UNIT NAME=VALUE...) or --all."""
    from hdl import registry

    words = list(args.unit or [])
    unit = None
    if words and "=" not in words[0]:
        unit = words.pop(0)
    params = _parse_assignments(words)
    if unit is None:
        if params:
            raise UsageError("parameters need a unit name")
        if not args.all:
            raise UsageError("name a unit or pass --all")
        return [(name, {}) for name in registry.units()]
    u = registry.get(unit)
    resolved = u.resolve(params)
    u.build(resolved)._MustUse__silence = True  # validate now: a bad value fails before any work starts
    return [(unit, resolved)]


def cmd_list(args) -> int:
    from hdl import registry

    for name, u in registry.units().items():
        print(f"{name:<22} [{u.group}] {u.summary}")
        for p in u.params.values():
            print(f"    {p.name}={p.default!r}")
    return 0


def cmd_emit(args) -> int:
    from hdl import registry

    out = Path(args.out)
    for name, params in _targets(args):
        files = registry.get(name).emit_verilog(out, params)
        size = sum(f.stat().st_size for f in files)
        print(f"{name}: {', '.join(str(f) for f in files)} ({size / 1024:.0f} KiB)")
    return 0


def cmd_lint(args) -> int:
    from hdl import registry
    from sim.lint import lint

    out = Path(args.out)
    failed = 0
    for name, params in _targets(args):
        files = registry.get(name).emit_verilog(out / name, params)
        findings = lint(files, name)
        status = "clean" if not findings else f"{len(findings)} finding(s)"
        print(f"{name}: {status}")
        for f in findings:
            print(f"    {f}")
        failed += bool(findings)
    return 1 if failed else 0


def cmd_synth(args) -> int:
    from synth import flow

    out = Path(args.out)
    targets = _targets(args)
    if args.all:
        from synth import rollup

        text = rollup.full_report(out, jobs=args.jobs)
        print(text)
        print(f"wrote {out / 'report.md'}, per-unit JSON, rollups.json and plots in {out}")
        return 0
    jobs = [(name, params, name) for name, params in targets]
    records = flow.synthesize_many(jobs, jobs=args.jobs, out_root=out)
    existing = [r for r in _load_records(out) if "__" not in r["name"]]
    names = {r["name"] for r in records}
    merged = [r for r in existing if r["name"] not in names] + records
    text = flow.write_report(merged, out / "report.md")
    print(text)
    print(f"wrote {out / 'report.md'} and {len(records)} JSON record(s) in {out}")
    return 0


def _load_records(out: Path) -> list[dict]:
    import json

    recs = []
    for path in sorted(out.glob("*.json")):
        try:
            recs.append(json.loads(path.read_text()))
        except ValueError:
            continue
    return recs


def cmd_bench(args) -> int:
    import reports as bench

    out = Path(args.out)
    available = bench.benches()
    names = args.name or list(available)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise UsageError(f"unknown benchmark {unknown[0]!r} (benchmarks: {', '.join(available)})")
    for name in names:
        print(f"== {name}")
        available[name](out, quick=args.quick)
    return 0


def cmd_header(args) -> int:
    """Write <unit>.h and <unit>.json from the unit's REGMAP (and COMMANDS)."""
    from hdl import registry
    from hdl.common.regmap import CommandFormat, RegisterMap, c_header, json_description

    (name, params), = _targets(args)
    component = registry.get(name).build(params)
    regmap = getattr(component, "REGMAP", None)
    if not isinstance(regmap, RegisterMap):
        raise UsageError(f"unit {name} has no register map (no REGMAP attribute)")
    commands = getattr(component, "COMMANDS", None)
    if commands is not None and not isinstance(commands, CommandFormat):
        raise UsageError(f"unit {name}: COMMANDS is not a CommandFormat")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    header = out / f"{name}.h"
    header.write_text(c_header(name, regmap, commands))
    doc = out / f"{name}.json"
    doc.write_text(json_description(name, regmap, commands) + "\n")
    print(f"{name}: {header}, {doc}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ditgen", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Parameters are NAME=VALUE (see `ditgen list`).")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list units with their parameters and defaults").set_defaults(func=cmd_list)

    def target_args(p, out):
        p.add_argument("unit", nargs="*", metavar="UNIT [NAME=VALUE ...]", help="unit and parameters")
        p.add_argument("--all", action="store_true", help="every registered unit, default parameters")
        p.add_argument("--out", default=str(BUILD / out), help=f"output directory (default build/{out})")

    p = sub.add_parser("emit", help="emit Verilog")
    target_args(p, "verilog")
    p.set_defaults(func=cmd_emit)
    p = sub.add_parser("lint", help="verilator --lint-only -Wall with the project's waivers")
    target_args(p, "lint")
    p.set_defaults(func=cmd_lint)
    p = sub.add_parser("synth", help="area reports with Yosys")
    target_args(p, "synth")
    p.add_argument("--jobs", type=int, default=None, help="parallel Yosys runs (default: cores)")
    p.set_defaults(func=cmd_synth)
    p = sub.add_parser("header", help="C header and JSON of a unit's register map and commands")
    p.add_argument("unit", nargs="+", metavar="UNIT [NAME=VALUE ...]", help="unit and parameters")
    p.add_argument("--out", default=str(BUILD / "include"), help="output directory (default build/include)")
    p.set_defaults(func=cmd_header, all=False)
    p = sub.add_parser("bench", help="run registered benchmarks and reports")
    p.add_argument("name", nargs="*", help="benchmarks to run (default: all)")
    p.add_argument("--out", default=str(BUILD / "reports"), help="output directory (default build/reports)")
    p.add_argument("--quick", action="store_true", help="smaller problem sizes")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    from hdl import registry

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, registry.UnknownUnit, ValueError, TypeError) as exc:
        if os.environ.get("DITGEN_DEBUG"):
            raise
        print(f"ditgen: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
