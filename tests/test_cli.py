"""The ``ditgen`` command line: listing, emission, errors with exit status 2."""

import subprocess
import sys

import pytest

from ditgen import cli
from hdl import registry


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "ditgen.cli", *args], capture_output=True, text=True)


def test_help():
    out = run_cli("--help")
    assert out.returncode == 0
    for word in ("list", "emit", "synth", "lint", "bench"):
        assert word in out.stdout


def test_list_shows_units_and_defaults(capsys):
    assert cli.main(["list"]) == 0
    text = capsys.readouterr().out
    for name, unit in registry.units().items():
        assert name in text
        for p in unit.params.values():
            assert f"{p.name}={p.default!r}" in text


def test_emit_one_unit_with_parameters(tmp_path):
    out = run_cli("emit", "ccu_compress", "LANES=3", "SATURATE=false", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "ccu_compress.v").read_text()
    assert "module ccu_compress" in text
    assert "input [47:0] i__payload" in text  # 3 lanes x 16 bits


@pytest.mark.parametrize("args, word", [
    (["emit", "no_such_unit"], "no_such_unit"),
    (["emit", "ccu_compress", "BOGUS=1"], "BOGUS"),
    (["emit", "ccu_compress", "LANES=0"], "lanes"),
    (["emit", "ccu_compress", "LANES=many"], "LANES"),
    (["emit", "ccu_compress", "LANES"], "LANES"),
    (["emit"], "--all"),
    (["synth", "no_such_unit"], "no_such_unit"),
    (["bench", "no_such_bench"], "no_such_bench"),
])
def test_errors_are_one_line_with_status_2(args, word):
    out = run_cli(*args)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and word in lines[0], out.stderr


def test_every_unit_registers_golden_and_testbench():
    import importlib

    for name, unit in registry.units().items():
        assert unit.summary, f"{name} has no docstring"
        assert unit.testbench, f"{name} has no testbench"
        importlib.import_module(unit.testbench.rsplit(".", 1)[0])
        if unit.golden:
            module, func = unit.golden.rsplit(".", 1)
            assert hasattr(importlib.import_module(module), func), unit.golden


def test_registry_params_come_from_constructor():
    unit = registry.get("ccu_compress")
    assert unit.defaults() == {"LANES": 16, "SATURATE": True}
    assert unit.resolve({"lanes": "8"})["LANES"] == 8
    with pytest.raises(registry.ParamError):
        unit.resolve({"WIDTH": 3})
