"""ORBIS accelerator (docs/SPEC.md "ORBIS accelerator"): golden model against
golden.orbis, parameters, command format, lint, and co-simulation of a
one-block FC + RC slice through AXI4-Lite and AXI4-Stream."""

import numpy as np
import pytest

from golden import accel as g
from golden import orbis as gorb
from golden import orbis_accel as go

SMALL = {"ROWS": 4, "COLS": 4, "A_DEPTH": 64, "W_DEPTH": 128, "ACC_DEPTH": 64, "QUEUE_DEPTH": 8,
         "STREAM_BYTES": 4, "TOKENS": 16, "CHANNELS": 8, "NUM_DST": 4, "LAYERS": 2, "RC_STEPS": 1,
         "SCALE_FRAC": 8, "TOPK_BUFFER": 0}
CASES = ["slice_fc_rc", "backpressure_and_protocol", "bad_commands", "soft_reset_mid_traffic"]


@pytest.mark.cosim
def test_rtl_slice(cosim):
    """One block, one FC + one RC step; back-pressure, bad commands, soft reset: one build."""
    res = cosim("orbis_accelerator", SMALL, testcase=CASES)
    assert res["tests"] == len(CASES)
