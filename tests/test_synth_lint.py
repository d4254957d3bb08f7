"""Synthesis flow and lint: report fields, a known small circuit, area growing
with a parameter, lint catching a real finding."""

import json

import pytest
from amaranth.hdl import Module
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


def test_liberty_areas_match_cell_table():
    import re

    from hdl.paths import DOCS

    table = DOCS / "nangate45-cell-areas.md"
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


@registry.unit("test_mem_hier")
class MemHier(wiring.Component):
    """Two identical multiplier submodules and a 48 x 20 memory, for hierarchy and memory pricing."""

    def __init__(self, *, depth=48):
        self._depth = depth
        super().__init__({"a": In(8), "b": In(8), "y": Out(17), "addr": In(range(depth)),
                          "wd": In(20), "we": In(1), "rd": Out(20)})

    def elaborate(self, platform):
        from amaranth.lib import memory

        m = Module()
        m.submodules.l0 = l0 = Adder8()
        m.submodules.l1 = l1 = Adder8()
        m.d.comb += [l0.a.eq(self.a), l0.b.eq(self.b), l1.a.eq(self.b), l1.b.eq(self.a),
                     self.y.eq(l0.s + l1.s)]
        m.submodules.mem = mem = memory.Memory(shape=20, depth=self._depth, init=[])
        w = mem.write_port()
        r = mem.read_port()
        m.d.comb += [w.addr.eq(self.addr), w.data.eq(self.wd), w.en.eq(self.we),
                     r.addr.eq(self.addr), self.rd.eq(r.data)]
        return m


def test_hierarchy_counted_per_instance_and_memory_priced(tmp_path, adder):
    from synth.sram import sram_area

    rec = flow.synthesize("test_mem_hier", out_root=tmp_path)
    assert rec["modules"]["test_mem_hier.l0"]["instances"] == 1
    sub = rec["modules"]["test_mem_hier.l0"]["area_um2"] + rec["modules"]["test_mem_hier.l1"]["area_um2"]
    assert sub == pytest.approx(2 * adder["area_um2"], rel=0.05)
    assert len(rec["memories"]) == 1
    mem = rec["memories"][0]
    assert (mem["depth"], mem["width"], mem["read_ports"], mem["write_ports"]) == (48, 20, 1, 1)
    assert rec["memory_um2"] == pytest.approx(sram_area(48, 20).area_um2)
    # The memory is not flattened: far fewer flops than its 960 bits.
    assert rec["flipflops"] < 100
    assert rec["area_um2"] == pytest.approx(rec["logic_um2"] + rec["sequential_um2"] + rec["memory_um2"], rel=1e-6)


def test_sram_model_monotone_and_cheaper_than_flops():
    from synth.sram import sram_area

    small = sram_area(64, 32)
    big = sram_area(16384, 64)
    assert 0.9 < small.area_um2 / small.bits < 1.5
    assert big.area_um2 / big.bits < small.area_um2 / small.bits
    assert small.area_um2 < small.flop_equivalent_um2
    assert sram_area(64, 32, 2, 1).area_um2 > small.area_um2
    with pytest.raises(ValueError):
        sram_area(0, 8)


def _rec(area):
    return {"area_um2": area}


def test_rollup_shares_and_missing_units():
    from synth import rollup

    recs = {"systolic_array": _rec(1_000_000.0), "ccu_compare": _rec(2_000.0), "dtsm": _rec(1_000.0),
            "ditto_pe": _rec(700.0), "itc_pe": _rec(1_000.0)}
    roll = rollup.rollups(recs)
    radit = next(c for c in roll["configs"] if c["name"] == "RADiT")
    assert radit["share_of_logic"] == pytest.approx(3_000 / 1_003_000)
    assert radit["share_with_buffers"] == pytest.approx(3_000 / (1_003_000 + rollup.buffer_area(1.0)))
    assert radit["share_with_buffers"] < radit["share_of_logic"]
    orbis = next(c for c in roll["configs"] if c["name"] == "ORBIS")
    assert set(orbis["missing"]) == {"orbis_qe", "orbis_datm"}
    pair = next(p for p in roll["pairs"] if p["label"].startswith("Ditto"))
    assert pair["ratio"] == pytest.approx(0.7)
    sweep = roll["buffer_sweep"]["RADiT"]
    shares = [p["share_with_buffers"] for p in sweep]
    assert shares == sorted(shares, reverse=True)  # more SRAM, smaller share
    text = rollup._rollup_markdown(roll)
    assert "0.3 %" in text and "not available" in text
