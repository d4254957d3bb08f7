"""Mutation testing of the RTL: how many small breakages do the fast tests catch?

A mutant changes one place of one RTL source under ``hdl/``: an operator
(``+``/``-``, ``&``/``|``, ``<``/``<=``, ``>``/``>=``, ``==``/``!=``), a
constant (a boolean flipped, an integer moved by ±1) or a statement (one
``.eq`` assignment dropped from a ``m.d.<domain> +=``). Only code that
describes hardware is mutated: function bodies, but not constructors,
parameter checks, read-only properties or docstrings.

Each mutant is written into a temporary copy of the repository (the working
tree is never changed), and the fast tests of its unit's group run there with
``pytest -x -q -m "not slow"``, a time limit, and the copy's own build
directory (``DITGEN_BUILD``), which persists across mutants so that designs
whose Verilog a mutant leaves alone are not recompiled. A mutant is *killed*
when a test fails, *killed by elaboration* when the mutated design no longer
elaborates (reported apart, outside the score), *timeout* when its tests
exceed the limit (counted as killed), and a *survivor* otherwise. Survivors
shown equivalent are listed in ``sim/mutate_equivalent.json`` with the reason.

Usage: ``python -m sim.mutate [--seed N] [--count N] [--unit NAME ...]
[--list] [--timeout S]``; ``make mutate`` writes ``build/mutate/report.md``
and ``report.json`` (docs/ARCHITECTURE.md "Mutation testing").
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from hdl.paths import BUILD, ROOT

__all__ = ["Mutation", "candidates", "apply", "sample", "copy_tree", "TESTS", "SCOPE", "run", "main"]

# Units in the default sample and the fast tests that exercise each one, its
# own first (``-x`` stops at the first failure, so the likeliest killer goes
# first). The scope is the units whose fast tests finish in well under a
# minute per mutant on two shared cores; ``--unit`` reaches any file in TESTS.
TESTS = {
    "hdl/common/stream.py": ["tests/test_common.py", "tests/test_formal.py", "tests/test_radit_dtsm.py"],
    "hdl/common/arith.py": ["tests/test_common.py", "tests/test_radit_ccu_compare.py"],
    "hdl/radit/ccu_compress.py": ["tests/test_radit_ccu_compress.py"],
    "hdl/radit/ccu_compare.py": ["tests/test_radit_ccu_compare.py", "tests/test_radit_detector.py"],
    "hdl/radit/dtsm.py": ["tests/test_radit_dtsm.py", "tests/test_radit_detector.py"],
    "hdl/radit/radit_detector.py": ["tests/test_radit_detector.py"],
    "hdl/ditto/ditto_pe.py": ["tests/test_ditto_pe.py"],
    "hdl/common/mac.py": ["tests/test_ditto_pe.py", "tests/test_systolic.py"],
    "hdl/ditto/itc_pe.py": ["tests/test_ditto_pe.py"],
    "hdl/ditto/ditto_encoder.py": ["tests/test_ditto_encoder.py"],
    "hdl/ditto/defo_unit.py": ["tests/test_ditto_defo.py"],
    "hdl/orbis/orbis_min_tree.py": ["tests/test_orbis_select.py"],
    "hdl/orbis/orbis_dau.py": ["tests/test_orbis_dau.py"],
    "hdl/orbis/orbis_qe.py": ["tests/test_orbis_qe.py"],
    # The accelerator tops: reachable with --unit (a top's cosim build takes a
    # minute, too slow for the default sample).
    "hdl/common/run_status.py": ["tests/test_common.py", "tests/test_accel_gemm.py", "tests/test_accel_radit.py"],
    "hdl/accel/gemm_core.py": ["tests/test_accel_gemm.py"],
    "hdl/accel/radit_accelerator.py": ["tests/test_accel_radit.py"],
    "hdl/accel/ditto_accelerator.py": ["tests/test_accel_ditto.py"],
    "hdl/accel/orbis_accelerator.py": ["tests/test_accel_orbis.py"],
}
SCOPE = ("hdl/common/stream.py", "hdl/common/arith.py", "hdl/radit/ccu_compress.py",
         "hdl/radit/ccu_compare.py", "hdl/radit/dtsm.py", "hdl/ditto/ditto_pe.py")
DEFAULT_SEED = 7
EQUIVALENT = Path(__file__).with_name("mutate_equivalent.json")
COPY_IGNORE = ("build", ".git", ".venv", "__pycache__", "*.pyc", ".pytest_cache", "*.egg-info")

_BINOPS = {ast.Add: ("+", "-"), ast.Sub: ("-", "+"), ast.BitAnd: ("&", "|"), ast.BitOr: ("|", "&")}
_CMPOPS = {ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="), ast.GtE: (">=", ">"),
           ast.Eq: ("==", "!="), ast.NotEq: ("!=", "==")}


@dataclass(frozen=True)
class Mutation:
    """One change: bytes ``start:end`` of ``path`` become ``replacement``."""

    path: str         # relative to the repository root
    line: int
    kind: str         # "binop", "compare", "bool", "int", "drop-eq"
    start: int        # byte offsets into the file's UTF-8 text
    end: int
    original: str
    replacement: str

    @property
    def ident(self) -> str:
        return f"{self.path}:{self.line}:{self.kind}:{self.start}:{self.replacement}"

    def describe(self) -> str:
        return f"{self.path}:{self.line} {self.kind}: {self.original!r} -> {self.replacement!r}"


def _line_starts(data: bytes) -> list[int]:
    starts = [0]
    for i, byte in enumerate(data):
        if byte == 0x0A:
            starts.append(i + 1)
    return starts


SKIP_FUNCTIONS = ("__init__",)


def _hardware_functions(tree: ast.Module):
    """Functions that build hardware: everything but constructors, parameter
    checks and read-only properties."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name not in SKIP_FUNCTIONS \
                and not any(isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list):
            yield node


def _is_eq_call(node) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "eq")


def _is_domain_target(node) -> bool:
    # m.d.sync / m.d.comb / m.d[...]: an Attribute or Subscript whose value is ``<x>.d``
    base = node.value if isinstance(node, (ast.Attribute, ast.Subscript)) else None
    return isinstance(base, ast.Attribute) and base.attr == "d"


def candidates(path: Path, root: Path = ROOT) -> list[Mutation]:
    """Every mutation of one source file, in source order."""
    data = path.read_bytes()
    text = data.decode()
    tree = ast.parse(text, filename=str(path))
    starts = _line_starts(data)
    rel = str(path.relative_to(root))

    def off(line, col):
        return starts[line - 1] + col

    found: dict[tuple, Mutation] = {}

    def add(line, kind, a, b, repl):
        orig = data[a:b].decode()
        if orig != repl:
            found[(a, b, repl)] = Mutation(rel, line, kind, a, b, orig, repl)

    def operator_between(left, right, symbol, line, kind, repl):
        a = off(left.end_lineno, left.end_col_offset)
        b = off(right.lineno, right.col_offset)
        segment = data[a:b].decode()
        # The operator is the one token between the operands besides brackets
        # and blanks; ``<`` must not be the start of ``<=`` or ``<<``.
        for i in range(len(segment)):
            if segment.startswith(symbol, i):
                after = segment[i + len(symbol):i + len(symbol) + 1]
                if after in ("=", "<", ">") and symbol in ("<", ">"):
                    continue
                if segment[i - 1:i] in ("<", ">", "=", "!") and symbol in ("=", "<", ">"):
                    continue
                start = a + len(segment[:i].encode())
                add(line, kind, start, start + len(symbol.encode()), repl)
                return

    for fn in _hardware_functions(tree):
        for node in ast.walk(fn):
            if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
                sym, repl = _BINOPS[type(node.op)]
                operator_between(node.left, node.right, sym, node.lineno, "binop", repl)
            elif isinstance(node, ast.Compare):
                operands = [node.left] + node.comparators
                for k, op in enumerate(node.ops):
                    if type(op) in _CMPOPS:
                        sym, repl = _CMPOPS[type(op)]
                        operator_between(operands[k], operands[k + 1], sym, node.lineno, "compare", repl)
            elif isinstance(node, ast.Constant) and type(node.value) in (bool, int):
                a = off(node.lineno, node.col_offset)
                b = off(node.end_lineno, node.end_col_offset)
                if isinstance(node.value, bool):
                    add(node.lineno, "bool", a, b, str(not node.value))
                else:
                    for delta in (1, -1):
                        if node.value + delta >= 0:
                            add(node.lineno, "int", a, b, str(node.value + delta))
            elif isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add) \
                    and _is_domain_target(node.target):
                items = node.value.elts if isinstance(node.value, (ast.List, ast.Tuple)) else [node.value]
                for item in items:
                    if _is_eq_call(item):
                        a = off(item.lineno, item.col_offset)
                        b = off(item.end_lineno, item.end_col_offset)
                        # An empty list is an empty statement list to Amaranth:
                        # the assignment is gone and the source still parses.
                        add(item.lineno, "drop-eq", a, b, "[]")
    return sorted(found.values(), key=lambda mu: (mu.start, mu.end, mu.replacement))


def apply(source: bytes, mutation: Mutation) -> bytes:
    """``source`` with ``mutation`` applied."""
    if source[mutation.start:mutation.end].decode() != mutation.original:
        raise ValueError(f"{mutation.describe()} does not match the source")
    return source[:mutation.start] + mutation.replacement.encode() + source[mutation.end:]


def diff(source: bytes, mutation: Mutation) -> str:
    before = source.decode().splitlines(keepends=True)
    after = apply(source, mutation).decode().splitlines(keepends=True)
    return "".join(difflib.unified_diff(before, after, f"a/{mutation.path}", f"b/{mutation.path}", n=1))


def _select_units(units, root: Path = ROOT) -> list[str]:
    if not units:
        return list(SCOPE)
    chosen = []
    for name in units:
        hits = [p for p in TESTS if p == name or Path(p).stem == name or p.endswith("/" + name)]
        if not hits:
            raise ValueError(f"unknown unit {name!r}; known: {', '.join(Path(p).stem for p in TESTS)}")
        chosen += [h for h in hits if h not in chosen]
    return chosen


def sample(seed: int, count: int, units=None, root: Path = ROOT) -> list[Mutation]:
    """``count`` mutations drawn without replacement, reproducibly from ``seed``."""
    pool = [mu for path in _select_units(units, root) for mu in candidates(root / path, root)]
    rng = random.Random(seed)
    return sorted(rng.sample(pool, min(count, len(pool))), key=lambda mu: (mu.path, mu.start))


def copy_tree(dest: Path, root: Path = ROOT) -> Path:
    """Copy the repository's sources (no build/, .git, .venv) to ``dest``."""
    shutil.copytree(root, dest, ignore=shutil.ignore_patterns(*COPY_IGNORE), symlinks=True)
    return dest


def _probe_modules(rel: str) -> list[str]:
    """Modules whose units must still elaborate after mutating ``rel``: its own,
    and for a shared piece, those of the units sharing its tests."""
    def dotted(p):
        return p[:-3].replace("/", ".")
    mods = [dotted(rel)]
    tests = set(TESTS.get(rel, ()))
    for other, theirs in TESTS.items():
        if other != rel and not other.startswith("hdl/common/") and tests & set(theirs):
            mods.append(dotted(other))
    return mods


def _elaborates(tree: Path, rel: str, timeout: float) -> tuple[bool, str]:
    """Whether the mutated source still imports and every unit of
    :func:`_probe_modules` still elaborates with its default parameters."""
    mods = _probe_modules(rel)
    probe = (
        "import importlib\n"
        "from amaranth.hdl import Fragment\n"
        "from hdl import registry\n"
        f"mods = {mods!r}\n"
        "for name in mods:\n"
        "    importlib.import_module(name)\n"
        "for u in registry.units().values():\n"
        "    if u.component.__module__ in mods:\n"
        "        Fragment.get(u.component(), None)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(tree), DITGEN_BUILD=str(tree / "build"))
    try:
        proc = subprocess.run([sys.executable, "-c", probe], cwd=tree, env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return True, ""
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return proc.returncode == 0, (lines[-1] if lines else "")


def _pytest(tree: Path, tests: list[str], timeout: float, log: Path | None = None) -> tuple[str, float, str]:
    env = dict(os.environ, PYTHONPATH=str(tree), DITGEN_BUILD=str(tree / "build"))
    env.pop("PYTEST_ADDOPTS", None)
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-m", "not slow", "-p", "no:cacheprovider",
           "-p", "no:xdist", *tests]
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - start, f"tests exceeded {timeout:.0f} s"
    if log is not None:
        log.write_text(proc.stdout + proc.stderr)
    out = (proc.stdout + proc.stderr).strip().splitlines()
    failed = [line for line in out if line.startswith(("FAILED", "ERROR"))]
    summary = (failed[:1] or out[-1:] or [""])[0]
    if proc.returncode == 0:
        return "survived", time.monotonic() - start, summary
    if proc.returncode == 5:
        return "no-tests", time.monotonic() - start, summary
    return "killed", time.monotonic() - start, summary


def _equivalents() -> dict:
    if EQUIVALENT.exists():
        return {e["id"]: e["reason"] for e in json.loads(EQUIVALENT.read_text())}
    return {}


def refresh_tree(tree: Path, root: Path = ROOT) -> Path:
    """Make an earlier copy match ``root`` again, keeping its build directory
    (and so its compiled designs)."""
    for child in tree.iterdir():
        if child.name != "build":
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    for child in root.iterdir():
        if any(child.match(p) for p in COPY_IGNORE):
            continue
        if child.is_dir():
            shutil.copytree(child, tree / child.name, ignore=shutil.ignore_patterns(*COPY_IGNORE), symlinks=True)
        else:
            shutil.copy2(child, tree / child.name)
    return tree


def run(mutations: list[Mutation], *, timeout: float = 300, root: Path = ROOT, log=print,
        workdir: Path | None = None, tree: Path | None = None, baseline: bool = True,
        progress=None) -> dict:
    """Run every mutant's tests in one temporary copy of the repository (or in
    ``tree``, an earlier copy refreshed from ``root``, reusing its builds);
    ``progress(results)`` is called after every mutant."""
    results = []
    equivalent = _equivalents()
    with tempfile.TemporaryDirectory(prefix="ditgen-mutate-", dir=workdir) as tmp:
        tmp = Path(tmp).resolve()
        tree = refresh_tree(tree.resolve(), root) if tree is not None else copy_tree(tmp / "repo", root)
        # The unmutated tests of every sampled unit, once: a mutant counts as
        # killed only if the tests it fails pass without it.
        tests = list(dict.fromkeys(t for path in sorted({mu.path for mu in mutations}) for t in TESTS[path]))
        where = (workdir or tmp) / "baseline.log"
        if baseline:
            status, secs, summary = _pytest(tree, tests, timeout * 10, where)
            log(f"baseline {' '.join(tests)}: {status} ({secs:.0f} s) {summary}")
            if status != "survived":
                raise RuntimeError(f"the unmutated tests do not pass ({summary}; {where})")
        for k, mu in enumerate(mutations, 1):
            src_path = tree / mu.path
            original = src_path.read_bytes()
            src_path.write_bytes(apply(original, mu))
            try:
                ok, why = _elaborates(tree, mu.path, timeout)
                if not ok:
                    status, secs, summary = "elaboration", 0.0, why or "does not elaborate"
                else:
                    status, secs, summary = _pytest(tree, TESTS[mu.path], timeout)
            finally:
                src_path.write_bytes(original)
            entry = {**asdict(mu), "id": mu.ident, "status": status, "seconds": round(secs, 1),
                     "summary": summary, "diff": diff(original, mu)}
            if status == "survived" and mu.ident in equivalent:
                entry["equivalent"] = equivalent[mu.ident]
            results.append(entry)
            log(f"[{k}/{len(mutations)}] {status:11} {secs:6.1f} s  {mu.describe()}")
            if progress is not None:
                progress(results)
    return {"mutants": results}


def score(results: list[dict]) -> dict:
    """Kill rate over mutants that elaborate (equivalent survivors left out)."""
    def tally(rows):
        counted = [r for r in rows if r["status"] != "elaboration" and not r.get("equivalent")]
        killed = sum(r["status"] in ("killed", "timeout") for r in counted)
        return {"mutants": len(rows), "elaboration": sum(r["status"] == "elaboration" for r in rows),
                "equivalent": sum(bool(r.get("equivalent")) for r in rows),
                "scored": len(counted), "killed": killed,
                "survived": sum(r["status"] == "survived" and not r.get("equivalent") for r in rows),
                "kill_rate": killed / len(counted) if counted else None}
    units = {}
    for r in results:
        units.setdefault(r["path"], []).append(r)
    return {"total": tally(results), "units": {u: tally(rows) for u, rows in sorted(units.items())}}


def _pct(x):
    return "-" if x is None else f"{100 * x:.1f} %"


def report(data: dict) -> str:
    s = data["score"]
    lines = ["# Mutation testing", "",
             f"Seed {data['seed']}, {s['total']['mutants']} of {data.get('planned', s['total']['mutants'])} "
             f"sampled mutants run, of {', '.join(data['units'])}; "
             f"tests: `pytest -x -q -m \"not slow\"` of each unit's group, {data['timeout']:.0f} s limit.", "",
             f"**Kill rate {_pct(s['total']['kill_rate'])}** ({s['total']['killed']} of {s['total']['scored']} "
             f"scored mutants); {s['total']['elaboration']} killed by elaboration (not scored), "
             f"{s['total']['equivalent']} equivalent (not scored).", "",
             "| unit | mutants | killed | survived | elaboration | equivalent | kill rate |",
             "|---|---|---|---|---|---|---|"]
    for unit, t in s["units"].items():
        lines.append(f"| {unit} | {t['mutants']} | {t['killed']} | {t['survived']} | {t['elaboration']} "
                     f"| {t['equivalent']} | {_pct(t['kill_rate'])} |")
    lines += ["", "## Survivors", ""]
    survivors = [r for r in data["mutants"] if r["status"] == "survived"]
    if not survivors:
        lines.append("None.")
    for r in survivors:
        why = f" — equivalent: {r['equivalent']}" if r.get("equivalent") else ""
        lines += [f"### `{r['id']}`{why}", "", "```diff", r["diff"].rstrip(), "```", ""]
    lines += ["", "## Every mutant", "", "| mutant | status | s | first failure |", "|---|---|---|---|"]
    for r in data["mutants"]:
        summary = r["summary"].replace("|", "\\|")[:120]
        lines.append(f"| `{r['id']}` {r['original']!r}→{r['replacement']!r} | {r['status']} | {r['seconds']} | {summary} |")
    return "\n".join(lines) + "\n"


def _write(out: Path, data: dict, quiet: bool = False) -> None:
    data["score"] = score(data["mutants"])
    (out / "report.json").write_text(json.dumps(data, indent=1) + "\n")
    (out / "report.md").write_text(report(data))
    if quiet:
        return
    t = data["score"]["total"]
    print(f"kill rate {_pct(t['kill_rate'])}: {t['killed']} of {t['scored']} killed, {t['survived']} survived, "
          f"{t['elaboration']} killed by elaboration, {t['equivalent']} equivalent; "
          f"report {out / 'report.md'}")


def _rescore(out: Path) -> int:
    """Apply the equivalence list to a finished run without running it again."""
    data = json.loads((out / "report.json").read_text())
    equivalent = _equivalents()
    for r in data["mutants"]:
        mu = Mutation(r["path"], r["line"], r["kind"], r["start"], r["end"], r["original"], r["replacement"])
        r["id"] = mu.ident
        r.pop("equivalent", None)
        if r["status"] == "survived" and mu.ident in equivalent:
            r["equivalent"] = equivalent[mu.ident]
    _write(out, data)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.mutate", description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED,
                    help=f"sample seed (default {DEFAULT_SEED}, the sample of docs/ARCHITECTURE.md)")
    ap.add_argument("--count", type=int, default=60, help="mutants in the sample (default 60)")
    ap.add_argument("--unit", action="append", help="restrict to a unit (file stem or path); repeatable")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per mutant's tests (default 300)")
    ap.add_argument("--list", action="store_true", help="print the sample and exit")
    ap.add_argument("--rescore", action="store_true",
                    help="re-read report.json, apply sim/mutate_equivalent.json, rewrite the report")
    ap.add_argument("--tree", type=Path, help="reuse this earlier copy (and its builds) instead of a fresh one")
    ap.add_argument("--skip-baseline", action="store_true",
                    help="do not rerun the unmutated tests (only when they passed on these sources)")
    ap.add_argument("--out", type=Path, default=BUILD / "mutate")
    args = ap.parse_args(argv)
    if args.rescore:
        return _rescore(args.out)
    seed = args.seed
    units = _select_units(args.unit)
    mutations = sample(seed, args.count, units)
    print(f"seed {seed}: {len(mutations)} mutants of {', '.join(units)}", flush=True)
    if args.list:
        for mu in mutations:
            print("  " + mu.describe())
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    # Run in a seeded random order and write the report after every mutant,
    # so that an interrupted run still reports a fair sub-sample.
    order = mutations[:]
    random.Random(seed).shuffle(order)
    meta = dict(seed=seed, units=units, timeout=args.timeout, planned=len(order))

    def progress(results):
        _write(args.out, {"mutants": list(results), **meta}, quiet=True)

    data = run(order, timeout=args.timeout, log=lambda s: print(s, flush=True), workdir=args.out,
               tree=args.tree, baseline=not args.skip_baseline, progress=progress)
    data.update(meta)
    _write(args.out, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
