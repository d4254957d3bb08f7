"""The layering of docs/ARCHITECTURE.md: imports run one way, and the
repository is complete on its own."""

import ast
import subprocess

import pytest

from hdl.paths import ROOT

PACKAGES = ("ditgen", "reports", "sim", "synth", "hdl", "golden", "workloads")
# What each package may import (besides itself, the standard library and PyPI).
ALLOWED = {
    "ditgen": set(PACKAGES),
    "reports": {"sim", "synth", "hdl", "golden", "workloads"},
    "sim": {"hdl", "golden", "workloads"},
    "synth": {"hdl", "golden", "workloads"},
    "hdl": set(),
    "golden": set(),
    "workloads": {"golden"},
}


def _imports(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def _modules():
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            yield pkg, path


def test_imports_run_one_way():
    bad = []
    for pkg, path in _modules():
        for line, target in _imports(path):
            if target in PACKAGES and target != pkg and target not in ALLOWED[pkg]:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {pkg} imports {target}")
    assert not bad, "imports against the layering of docs/ARCHITECTURE.md:\n" + "\n".join(bad)


def test_layering_check_catches_a_wrong_arrow(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import os\nfrom sim import runner\nfrom hdl.common import stream\n")
    targets = [t for _, t in _imports(probe)]
    assert "sim" in targets and "hdl" in targets and "sim" not in ALLOWED["hdl"]


def test_no_tracked_file_points_outside_the_repository():
    try:
        # Spelt in pieces so that this file does not match itself.
        out = subprocess.run(["git", "grep", "-n", "-F", "-e", ".." + "/shared", "-e", "shared" + "/SPEC"],
                             cwd=ROOT, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        pytest.skip("git is not installed")
    if out.returncode not in (0, 1):
        pytest.skip("not a git checkout")
    assert not out.stdout, out.stdout


def test_specification_is_in_the_repository():
    spec = (ROOT / "docs" / "SPEC.md").read_text()
    for heading in ("## RADiT", "## Ditto", "## ORBIS", "## Accelerator tops", "## Decisions taken while building"):
        assert heading in spec
