"""ORBIS FP16 QE: the golden model against an independent exact reference
(docs/SPEC.md "Quantization engine"), scale invariance of codes, weights and
DATM pairs, and the RTL against the golden model."""

from fractions import Fraction

import numpy as np
import pytest

from golden.orbis import datm, dropped_channels, qe_cycles, qe_fp16, quantize_channelwise_fp16, scale_weights

FP16_TB = "sim.orbis.tb_orbis_qe_fp16"


@pytest.mark.cosim
def test_rtl_qe_fp16_random_and_corners(cosim):
    """N = 13, C = 10, L = 4 (a half-empty last chunk with garbage padding lanes)."""
    cosim("orbis_qe", {"NUM_TOKENS": 13, "CHANNELS": 10, "CH_LANES": 4, "DTYPE": "fp16"},
          testbench=FP16_TB, args={"matrices": 3, "idle": 0.2, "backpressure": 0.4})
