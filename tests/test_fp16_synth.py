"""Area flow for the FP16 work: the smaller of the plain and Booth multiplier
mappings is kept per unit, and the roll-up's ratios (FP16 PE beside the INT8
PE and MAC, the A4W8/A8W8 target) are taken between best-mapped records."""

import pytest

from synth import flow, rollup


def test_choose_mapping_keeps_the_smaller():
    assert flow.choose_mapping({"plain": 922.0, "booth": 810.0}) == "booth"
    assert flow.choose_mapping({"plain": 800.0, "booth": 810.0}) == "plain"
    assert flow.choose_mapping({"plain": 800.0, "booth": 800.0}) == "plain"
    assert flow.choose_mapping({"plain": 800.0, "booth": None}) == "plain"


def test_mac_is_synthesised_both_ways_and_the_smaller_kept(tmp_path):
    best = flow.synthesize("systolic_mac_ref", out_root=tmp_path, name="best")
    plain = flow.synthesize("systolic_mac_ref", out_root=tmp_path, name="plain", mapping="plain")
    booth = flow.synthesize("systolic_mac_ref", out_root=tmp_path, name="booth", mapping="booth")
    assert best["multipliers"] >= 1
    assert best["mapping_areas"] == {"plain": plain["area_um2"], "booth": booth["area_um2"]}
    assert plain["area_um2"] != booth["area_um2"]  # the two mappings really differ
    assert best["area_um2"] == min(plain["area_um2"], booth["area_um2"])
    assert best["mapping"] == ("booth" if booth["area_um2"] < plain["area_um2"] else "plain")
    assert (tmp_path / "best" / "booth" / "stat.json").exists()
    # A unit without a multiplier is mapped once.
    conv = flow.synthesize("fp32_to_fp16", out_root=tmp_path)
    assert conv["multipliers"] == 0 and conv["mapping_areas"]["booth"] is None and conv["mapping"] == "plain"
    text = flow.write_report([best, conv], tmp_path / "report.md")
    assert "| booth |" in text or "| plain |" in text
    with pytest.raises(ValueError, match="mapping"):
        flow.synthesize("systolic_mac_ref", out_root=tmp_path, mapping="wallace")


def test_rollup_fp16_and_a4w8_ratios():
    recs = {"ditto_pe": {"area_um2": 2341.0, "mapping": "booth"}, "itc_pe": {"area_um2": 2665.0, "mapping": "booth"},
            "systolic_pe": {"area_um2": 1000.0}, "systolic_mac_ref": {"area_um2": 810.0},
            rollup.FP16_PE: {"area_um2": 5000.0}}
    pairs = {p["label"]: p for p in rollup.rollups(recs)["pairs"]}
    ditto = pairs["Ditto A4W8 PE / A8W8 PE"]
    assert ditto["ratio"] == pytest.approx(2341 / 2665)
    assert ditto["numerator_for_paper_um2"] == pytest.approx(2665 * 27648 / 39398)
    assert ditto["numerator_change_for_paper"] < 0 and ditto["mappings"] == ["booth", "booth"]
    assert pairs["FP16 PE / INT8 PE"]["ratio"] == pytest.approx(5.0)
    assert pairs["FP16 PE / minimal INT8 MAC"]["ratio"] == pytest.approx(5000 / 810)
    text = rollup._rollup_markdown(rollup.rollups(recs))
    assert "FP16 PE / INT8 PE" in text and "1,870 µm² (-20.1 %)" in text
