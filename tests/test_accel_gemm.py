"""GEMM accelerator (docs/SPEC.md "GEMM core"): golden model, parameters and
co-simulation through AXI4-Lite and AXI4-Stream."""

import numpy as np
import pytest

from golden import accel as g

SMALL = {"ROWS": 4, "COLS": 4, "A_DEPTH": 256, "W_DEPTH": 256, "ACC_DEPTH": 256, "QUEUE_DEPTH": 8,
         "STREAM_BYTES": 4}


@pytest.mark.cosim
def test_rtl_small_end_to_end(cosim):
    cosim("gemm_accelerator", SMALL, testcase=["gemm_end_to_end"])
