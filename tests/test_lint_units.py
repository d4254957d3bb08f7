"""Every unit at its default parameters is Verilator ``--lint-only -Wall``
clean (the check ``ditgen lint --all`` makes), one test per unit.

The default ORBIS DATM engine (~1 MB of Verilog: about 100 s to emit and
100 s to lint on a loaded 2-core machine) and the default 64x64 systolic
array are linted in the slow set."""

import pytest

from hdl import registry
from sim.lint import lint

SLOW = {"orbis_datm", "systolic_array"}


def _units():
    for name in registry.units():
        marks = [pytest.mark.slow] if name in SLOW else []
        yield pytest.param(name, id=name, marks=marks)


@pytest.mark.parametrize("name", _units())
def test_unit_lint_clean_at_defaults(name, tmp_path):
    files = registry.get(name).emit_verilog(tmp_path)
    assert lint(files, name) == []
