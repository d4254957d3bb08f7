"""ORBIS DAU: the RTL against ``golden.orbis.dau_distance``."""

import numpy as np
import pytest

from golden.orbis import dau_distance



def test_golden_dau_distance():
    assert dau_distance([1, -8, 7], [1, 7, -8], [5, 2, 3]) == 2 * 225 + 3 * 225
    assert dau_distance(np.zeros((2, 4)), np.zeros(4), np.ones(4)).tolist() == [0, 0]


@pytest.mark.cosim
def test_rtl_dau_random_and_corners(cosim):
    """L = 3 lanes (non-power-of-two tree), up to 4 chunks per pair."""
    cosim("orbis_dau", {"CH_LANES": 3, "CHANNELS": 12}, args={"pairs": 300, "idle": 0.2, "backpressure": 0.4})


@pytest.mark.cosim
@pytest.mark.slow
def test_rtl_dau_default(cosim):
    cosim("orbis_dau", {}, args={"pairs": 500, "idle": 0.1, "backpressure": 0.3})


def test_rtl_rejects_bad_parameters():
    from hdl.orbis.orbis_dau import OrbisDAU

    for name in ("ch_lanes", "weight_width", "channels"):
        with pytest.raises(ValueError, match=name):
            OrbisDAU(**{name: 0})
    with pytest.raises(ValueError, match="code_width"):
        OrbisDAU(code_width=1)
