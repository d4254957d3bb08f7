"""Every streaming unit at its default parameters (or, where the default does
not build in about a minute, the largest size that does, with the default in
the slow set) and at its smallest legal configuration, each with its whole
testbench (golden comparison, timing, reset under traffic) on short runs.

Defaults covered in the unit's own test file: ccu_compare, ccu_compress,
dtsm, defo_unit, ditto_pe, itc_pe, systolic_pe (the default 64x64 systolic
array and orbis_datm are slow: tests/test_systolic.py, tests/test_orbis_datm.py)."""

import pytest

DEFAULTS = [
    pytest.param("radit_detector", {}, {}, ["blocks_in_flight_under_backpressure", "reset_mid_run"],
                 id="radit_detector-default"),
    pytest.param("ditto_compute_unit", {}, {"steps": 2, "rows": 3, "idle": 0.2, "backpressure": 0.3}, None,
                 id="ditto_compute_unit-default"),
    pytest.param("ditto_encoder", {}, {"stream": "random", "k": 64, "rows": 6, "layers": 6, "idle": 0.2,
                                      "backpressure": 0.3}, None, id="ditto_encoder-default"),
    pytest.param("orbis_dau", {}, {"pairs": 100, "idle": 0.1, "backpressure": 0.3}, None, id="orbis_dau-default"),
    pytest.param("orbis_qe", {}, {"matrices": 1, "idle": 0.1, "backpressure": 0.3}, None, id="orbis_qe-default"),
    pytest.param("orbis_min_tree", {}, {"vectors": 200, "idle": 0.1, "backpressure": 0.3}, None,
                 id="orbis_min_tree-default"),
    pytest.param("orbis_topk", {}, {"sets": 60, "idle": 0.1, "backpressure": 0.3}, None, id="orbis_topk-default"),
    pytest.param("systolic_mac_ref", {}, {"cycles": 2000}, None, id="systolic_mac_ref-default"),
]

SMALLEST = [
    pytest.param("ccu_compare", {"LANES": 1, "MAX_ELEMENTS": 1}, {"blocks": 60, "max_beats": 4, "idle": 0.2,
                                                                  "backpressure": 0.3}, None, id="ccu_compare-min"),
    pytest.param("dtsm", {"BLOCKS": 1, "TIMESTEPS": 1, "MAX_ELEMENTS": 1, "ALPHA_FRAC": 0},
                 {"sequences": 200, "idle": 0.2, "backpressure": 0.3},
                 # the hand-built sequences need a table of at least 8 timesteps
                 ["random_sequences_match_golden", "initiation_interval_one", "reset_mid_run"], id="dtsm-min"),
    pytest.param("ditto_compute_unit", {"PES": 1, "MAX_ROW": 2}, {"steps": 3, "rows": 4, "idle": 0.2,
                                                                  "backpressure": 0.3}, None,
                 id="ditto_compute_unit-min"),
    pytest.param("orbis_dau", {"CH_LANES": 1, "CHANNELS": 1, "CODE_WIDTH": 2, "WEIGHT_WIDTH": 1},
                 {"pairs": 100, "idle": 0.2, "backpressure": 0.3}, None, id="orbis_dau-min"),
    # The QE's corner matrices need INT8 values: smallest sizes at the default data width.
    pytest.param("orbis_qe", {"NUM_TOKENS": 1, "CHANNELS": 1, "CH_LANES": 1, "SCALE_FRAC": 0},
                 {"matrices": 3, "idle": 0.2, "backpressure": 0.3}, None, id="orbis_qe-min"),
    # orbis_min_tree with NUM_DST = 1 is combinational (latency 0: no clk/rst
    # ports), which the clocked harness does not drive; NUM_DST = 2 is its
    # smallest clocked size.
    pytest.param("orbis_min_tree", {"NUM_DST": 2, "DIST_WIDTH": 2}, {"vectors": 100, "idle": 0.2,
                                                                     "backpressure": 0.3}, None,
                 id="orbis_min_tree-min", marks=pytest.mark.slow),
    # SIZE = 4, LOSS_WIDTH = 2: the testbench's padded-count and tie corners need them.
    pytest.param("orbis_topk", {"SIZE": 4, "LOSS_WIDTH": 2}, {"sets": 60, "idle": 0.2, "backpressure": 0.3}, None,
                 id="orbis_topk-min"),
]


@pytest.mark.cosim
@pytest.mark.parametrize("unit, params, args, testcase", DEFAULTS + SMALLEST)
def test_rtl_config(cosim, unit, params, args, testcase):
    cosim(unit, params, args=args, testcase=testcase)
