"""DTSM: RTL against golden.radit.dtsm in co-simulation (≥ 10,000 random Δ
sequences over the parameter sets, hand-built sequences, II and latency)."""

import pytest

from hdl.radit.dtsm import DTSM

SMALL = {"BLOCKS": 8, "TIMESTEPS": 30, "MAX_ELEMENTS": 16}  # 7-bit Δ: the maximum is hit often


@pytest.mark.cosim
def test_rtl_update_then_decide(cosim):
    """Default ordering and reference, ALPHA_FRAC = 15: 6,000 random sequences
    with gaps and back-pressure, the hand-built ones, II = 1 and latency 2."""
    r = cosim("dtsm", SMALL, args={"sequences": 6000, "idle": 0.2, "backpressure": 0.3})
    assert r["result"]["sequences"] >= 6000


@pytest.mark.cosim
def test_rtl_decide_before_update_computed_reference(cosim):
    """The other ordering, write-back only after computing, ALPHA_FRAC = 8."""
    r = cosim("dtsm", {**SMALL, "DECIDE_BEFORE_UPDATE": True, "REFERENCE": "computed", "ALPHA_FRAC": 8},
              args={"sequences": 3000, "idle": 0.3, "backpressure": 0.5})
    assert r["result"]["sequences"] >= 3000


@pytest.mark.cosim
def test_rtl_default_parameters(cosim):
    """DiT-XL/2 defaults (56 blocks, T = 250, 21-bit Δ, ALPHA_FRAC = 15)."""
    r = cosim("dtsm", {}, args={"sequences": 1500, "idle": 0.1, "backpressure": 0.3})
    assert r["result"]["sequences"] >= 1500


def test_rtl_rejects_bad_parameters():
    for kw, name in (({"blocks": 0}, "blocks"), ({"timesteps": 0}, "timesteps"),
                     ({"max_elements": 0}, "max_elements"), ({"alpha_frac": 31}, "alpha_frac"),
                     ({"reference": "last"}, "reference")):
        with pytest.raises(ValueError, match=name):
            DTSM(**kw)
    with pytest.raises(TypeError, match="decide_before_update"):
        DTSM(decide_before_update=1)
