"""ORBIS QE: golden quantization against docs/SPEC.md, RTL against the golden model."""

import numpy as np
import pytest

from golden.orbis import fixed_scales, qe, quantize_channelwise



def test_golden_quantization_spec():
    x = np.array([[7.0, 0.0, -3.5], [-14.0, 0.0, 1.75], [3.5, 0.0, 0.25]])
    q, s = quantize_channelwise(x)
    assert np.allclose(s, [2.0, 1.0, 0.5])            # max|x|/7, 1 for a zero channel
    assert q[:, 0].tolist() == [4, -7, 2]              # 3.5 and 1.75 are ties: half to even
    assert q[:, 1].tolist() == [0, 0, 0]
    assert q[:, 2].tolist() == [-7, 4, 0]              # 0.25/0.5 = 0.5 -> 0


def test_golden_integer_ties_are_exact():
    # M = 14: x / s = x / 2 for x in 0..14, every odd x is a tie.
    x = np.arange(-14, 15).reshape(-1, 1)
    q, s = quantize_channelwise(x)
    want = np.round(x / 2.0)  # exact halves: numpy rounds half to even
    assert np.array_equal(q[:, 0], want[:, 0])
    q2, fixed = qe(x, 8)
    assert np.array_equal(q2, q) and fixed[0] == 512


def test_golden_fixed_scales():
    assert fixed_scales([1.0, 2.0 / 7.0], 8).tolist() == [256, 73]
    x = np.array([[-128], [127]])
    assert qe(x, 8)[1].tolist() == [(128 * 256 + 3) // 7]


@pytest.mark.cosim
def test_rtl_qe_random_and_corners(cosim):
    """N = 13 tokens, C = 12 channels (CB = 3 with a half-empty last chunk)."""
    cosim("orbis_qe", {"NUM_TOKENS": 13, "CHANNELS": 10, "CH_LANES": 4},
          args={"matrices": 4, "idle": 0.2, "backpressure": 0.4})


@pytest.mark.cosim
@pytest.mark.slow
def test_rtl_qe_default_size(cosim):
    cosim("orbis_qe", {}, args={"matrices": 4, "idle": 0.1, "backpressure": 0.3})


def test_rtl_rejects_bad_parameters():
    from hdl.orbis.orbis_qe import OrbisQE

    for name in ("num_tokens", "channels", "ch_lanes"):
        with pytest.raises(ValueError, match=name):
            OrbisQE(**{name: 0})
    with pytest.raises(ValueError, match="data_width"):
        OrbisQE(data_width=1)
