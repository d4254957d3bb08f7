"""Synthesis flow and lint: report fields, a known small circuit, area growing
with a parameter, lint catching a real finding."""

import json

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hdl import registry
from synth import flow


@registry.unit("test_adder8")
class Adder8(wiring.Component):
    """Registered 8-bit adder, a known circuit for the flow's sanity check."""

    def __init__(self, *, unused_input=False):
        self._unused = unused_input
        sig = {"a": In(8), "b": In(8), "s": Out(9)}
        if unused_input:
            sig["spare"] = In(4)
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.s.eq(self.a + self.b)
        return m


@pytest.fixture(scope="module")
def adder(tmp_path_factory):
    return flow.synthesize("test_adder8", out_root=tmp_path_factory.mktemp("synth"))


def test_report_fields_present_and_positive(adder):
    for key in ("area_um2", "area_ge", "logic_um2", "sequential_um2", "cells", "flipflops", "logic_depth"):
        assert adder[key] > 0, key
    assert adder["yosys"].startswith("Yosys")
    assert adder["flipflops"] == 9
    assert adder["area_ge"] == pytest.approx(adder["area_um2"] / 0.798, rel=1e-3)


def test_adder_area_in_sane_band(adder):
    # 8 full adders' worth of logic (FA_X1 = 4.256 um^2 each, but ABC builds
    # them from simple gates) plus 9 DFF_X1 (4.522 um^2): between 1x and 3x.
    logic = adder["logic_um2"]
    assert 8 * 4.256 <= logic <= 3 * 8 * 4.256 + 10, logic
    assert adder["sequential_um2"] == pytest.approx(9 * 4.522, rel=1e-6)


def test_area_grows_with_lanes(tmp_path):
    small = flow.synthesize("ccu_compress", {"LANES": 2}, name="c2", out_root=tmp_path)
    large = flow.synthesize("ccu_compress", {"LANES": 8}, name="c8", out_root=tmp_path)
    assert large["area_um2"] > 3 * small["area_um2"]
    assert json.loads((tmp_path / "c8.json").read_text())["params"]["LANES"] == 8
    text = flow.write_report([small, large], tmp_path / "report.md")
    assert "| c2 |" in text and "Yosys" in text


def test_liberty_areas_match_shared_table():
    import re
    from pathlib import Path

    table = Path(__file__).resolve().parents[2] / "shared" / "nangate45-cell-areas.md"
    if not table.exists():
        pytest.skip("../shared/nangate45-cell-areas.md not present")
    want = {}
    for line in table.read_text().splitlines():
        cols = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cols) >= 3 and cols[0].endswith("_X1"):
            for name in cols[0].split(" / "):  # "LOGIC0_X1 / LOGIC1_X1"
                want[name] = float(cols[-1])
    lib = flow.LIBERTY.read_text()
    got = {m.group(1): float(m.group(2)) for m in re.finditer(r"cell \((\w+)\)\s*\{\s*area : ([\d.]+)", lib)}
    assert got, "no cells parsed from the liberty"
    for cell, area in got.items():
        assert want.get(cell) == area, cell


def test_lint_clean_and_catches_unused_input(tmp_path):
    from sim.lint import lint

    unit = registry.get("test_adder8")
    assert lint(unit.emit_verilog(tmp_path / "ok"), "test_adder8") == []
    findings = lint(unit.emit_verilog(tmp_path / "bad", {"UNUSED_INPUT": True}), "test_adder8")
    assert any("spare" in f for f in findings), findings
