"""CCU compare: RTL against golden.radit.code_distance/compress_fp16 in co-simulation."""

import pytest

from hdl.radit.ccu_compare import CCUCompare, delta_width


@pytest.mark.cosim
def test_rtl_small_counter_saturates_under_backpressure(cosim):
    """LANES=4 with a 9-bit Δ counter (MAX_ELEMENTS=64): random, all-equal,
    all-different blocks and Δ at limit−1, limit, limit+1 and beyond, with 20%
    gaps on both inputs and 40% back-pressure on both outputs; then II = 1."""
    cosim("ccu_compare", {"LANES": 4, "MAX_ELEMENTS": 64},
          args={"blocks": 300, "max_beats": 40, "idle": 0.2, "backpressure": 0.4})


@pytest.mark.cosim
def test_rtl_default_parameters(cosim):
    """Default LANES=16 and DiT-XL/2-sized 21-bit counter, heavy back-pressure, and II = 1."""
    cosim("ccu_compare", {}, args={"blocks": 120, "max_beats": 16, "idle": 0.3, "backpressure": 0.6})


def test_delta_width_follows_max_elements():
    assert delta_width(256 * 1152) == 21
    assert CCUCompare().delta_width == 21
    assert CCUCompare(max_elements=64).delta_limit == 511


def test_rtl_rejects_bad_parameters():
    with pytest.raises(ValueError, match="lanes"):
        CCUCompare(lanes=0)
    with pytest.raises(ValueError, match="max_elements"):
        CCUCompare(max_elements=0)
    with pytest.raises(ValueError, match="max_elements"):
        CCUCompare(lanes=16, max_elements=8)  # a block is at least one beat
    with pytest.raises(TypeError, match="saturate"):
        CCUCompare(saturate="yes")
