"""Ditto PE and A8W8 ITC PE: golden shift-add identity, RTL on every
(lane operand, weight, hi flag) combination against the golden model."""

import numpy as np
import pytest

from golden.ditto import classify, pe_step, split


def test_golden_pe_step_rebuilds_full_products():
    """A full difference split into hi (lane 0 or 2, shifted) and lo (lane 1
    or 3) gives d·w for every 9-bit d and INT8 w."""
    d = np.arange(-255, 256)
    d = d[classify(d) == 2]
    hi, lo = split(d)
    for w in (-128, -1, 0, 1, 77, 127):
        ops = np.zeros((len(d), 4), dtype=np.int64)
        ops[:, 2], ops[:, 3] = hi, lo
        got = pe_step(ops, np.c_[np.zeros(len(d), int), np.ones(len(d), int)], np.full((len(d), 4), w))
        assert np.array_equal(got, d * w)


@pytest.mark.cosim
def test_rtl_exhaustive_lane_combinations(cosim):
    """Each lane of the Ditto PE sees every (operand, weight[, hi flag])
    combination (32 × 256 × 2 on lanes 0/2, 32 × 256 on lanes 1/3), most beats
    closing their own row so a wrong product cannot hide, with gaps and
    back-pressure; plus the latency/II check."""
    cosim("ditto_pe", {}, testcase="results_match_golden",
          args={"exhaustive": True, "rows": 0.8, "idle": 0.1, "backpressure": 0.3})
    cosim("ditto_pe", {}, testcase="latency_and_ii")


@pytest.mark.cosim
def test_rtl_itc_random(cosim):
    """A8W8 baseline PE: random beats and rows with gaps and back-pressure, latency/II."""
    cosim("itc_pe", {}, testcase="results_match_golden",
          args={"beats": 8192, "rows": 0.5, "idle": 0.1, "backpressure": 0.3})
    cosim("itc_pe", {}, testcase="latency_and_ii")


@pytest.mark.slow
@pytest.mark.cosim
def test_rtl_itc_exhaustive(cosim):
    """A8W8 baseline PE: every lane sees all 65,536 (activation, weight) pairs."""
    cosim("itc_pe", {}, testcase="results_match_golden",
          args={"exhaustive": True, "rows": 0.8, "idle": 0.1, "backpressure": 0.3})


@pytest.mark.cosim
def test_rtl_long_rows_random(cosim):
    """Multi-beat rows, K-tile continuation (no clear) and mid-row clears."""
    cosim("ditto_pe", {}, testcase="results_match_golden",
          args={"beats": 4096, "rows": 0.1, "idle": 0.3, "backpressure": 0.5})


@pytest.mark.cosim
@pytest.mark.parametrize("unit", ["ditto_pe", "itc_pe"])
def test_rtl_accumulator_wraps_and_reset(cosim, unit):
    """One never-cleared row of the largest products read out every 1,024
    beats past 2^24 and 2^31: the 32-bit sum wraps exactly; then a reset in
    the middle of rows."""
    cosim(unit, {}, testcase=["accumulator_wraps_at_32_bits", "reset_mid_row"])
