"""GEMM accelerator (docs/SPEC.md "GEMM core"): golden model, parameters and
co-simulation through AXI4-Lite and AXI4-Stream."""

import numpy as np
import pytest

from golden import accel as g

SMALL = {"ROWS": 4, "COLS": 4, "A_DEPTH": 256, "W_DEPTH": 256, "ACC_DEPTH": 256, "QUEUE_DEPTH": 8,
         "STREAM_BYTES": 4}
CASES = ["registers", "gemm_end_to_end", "accumulate_and_wrap", "vector_ops", "bad_commands",
         "backpressure_and_protocol", "soft_reset_mid_traffic"]


@pytest.mark.cosim
def test_rtl_small(cosim):
    """Every testcase at 4x4 in one build (about a minute with the build)."""
    res = cosim("gemm_accelerator", SMALL, testcase=CASES)
    assert res["tests"] == len(CASES)
