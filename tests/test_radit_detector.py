"""RADiT redundancy detector (ccu_compare → dtsm): the RTL in the loop of
Algorithm 1 on a generated DiT-like trajectory reproduces the golden run."""

import pytest

from hdl.radit.radit_detector import RaditDetector

# 8 DNN operation blocks of 16 tokens x 32 channels, 8 lanes: 64 beats a block.
SMALL = {"LANES": 8, "MAX_ELEMENTS": 16 * 32, "BLOCKS": 8, "TIMESTEPS": 32}
TRAJ = {"T": 24, "tokens": 16, "channels": 32, "rank": 16, "seed": 0}


@pytest.mark.cosim
def test_rtl_reproduces_golden_skip_map_linear(cosim):
    """T = 24, N = 8, linear α, update-then-decide, reference = previous codes;
    20% gaps and 30% back-pressure; then the open-loop full-rate check."""
    r = cosim("radit_detector", SMALL, args={**TRAJ, "schedule": "linear", "idle": 0.2, "backpressure": 0.3})
    assert r["tests"] == 4


@pytest.mark.cosim
def test_rtl_reproduces_golden_skip_map_cosine_other_options(cosim):
    """Cosine α, decide-before-update, reference = last computed codes."""
    cosim("radit_detector", {**SMALL, "DECIDE_BEFORE_UPDATE": True, "REFERENCE": "computed"},
          testcase="closed_loop_matches_golden_run",
          args={**TRAJ, "seed": 3, "schedule": "cosine", "idle": 0.3, "backpressure": 0.4})


def test_rtl_rejects_bad_parameters():
    for kw, name in (({"lanes": 0}, "lanes"), ({"blocks": 0}, "blocks"), ({"reference": "x"}, "reference"),
                     ({"max_elements": -1}, "max_elements"), ({"timesteps": 0}, "timesteps")):
        with pytest.raises(ValueError, match=name):
            RaditDetector(**kw)
