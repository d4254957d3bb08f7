"""ORBIS DATM engine: the RTL against ``golden.orbis.datm`` (pairs, per-iteration
losses, iteration count) and ``golden.orbis.datm_cycles``."""

import pytest



SMALL = {"NUM_TOKENS": 13, "CHANNELS": 10, "NUM_DST": 3, "CH_LANES": 4, "TOPK_REGISTER_EVERY": 2}
ONE_CHUNK = {"NUM_TOKENS": 16, "CHANNELS": 8, "NUM_DST": 4, "CH_LANES": 8}
DEFAULT = {}  # N = 64, C = 32, D = 16, L = 8
# Streaming top-k: a 4-key buffer, so k' up to 10 takes several scans.
STREAMING = {"NUM_TOKENS": 13, "CHANNELS": 10, "NUM_DST": 3, "CH_LANES": 4, "TOPK_BUFFER": 4}


@pytest.mark.cosim
def test_rtl_datm_small_odd_sizes(cosim):
    """N = 13, C = 10 (a half-used last chunk), D = 3: non-power-of-two everything."""
    cosim("orbis_datm", SMALL, args={"runs": 6, "idle": 0.2, "backpressure": 0.3})


@pytest.mark.cosim
def test_rtl_datm_one_chunk_per_token(cosim):
    """C = L: every token is one chunk, so the group-sum read-modify-write hits the
    same memory row on consecutive cycles (needs the transparent read port)."""
    cosim("orbis_datm", ONE_CHUNK, args={"runs": 6, "idle": 0.1, "backpressure": 0.2})


@pytest.mark.cosim
def test_rtl_datm_streaming_topk(cosim):
    """TOPK_BUFFER = 4 < k': pairs emitted over several scans of the key memory,
    the threshold carried from one scan to the next; back-pressure on pairs
    while the next scan runs."""
    cosim("orbis_datm", STREAMING, args={"runs": 6, "idle": 0.2, "backpressure": 0.4})


@pytest.mark.cosim
@pytest.mark.slow
def test_rtl_datm_large_config(cosim):
    """The named N = 4,096 configuration (hdl/accel/configs.py): one run per
    testcase under back-pressure, the cycle model, reset under traffic."""
    from hdl.accel.configs import unit_config

    unit, params = unit_config("orbis_datm_n4096")
    cosim(unit, params, args={"runs": 0, "idle": 0.05, "backpressure": 0.2, "bench": 1})


@pytest.mark.cosim
@pytest.mark.slow
def test_rtl_datm_n64_c32(cosim):
    """The default engine: N = 64, C = 32, D = 16, L = 8 (its 64-key bitonic network
    makes ~1 MB of Verilog: a multi-minute Verilator build, hence `slow`)."""
    cosim("orbis_datm", DEFAULT, args={"runs": 2, "idle": 0.1, "backpressure": 0.3})


@pytest.mark.cosim
@pytest.mark.slow
@pytest.mark.parametrize("params", [
    {"NUM_TOKENS": 32, "CHANNELS": 16, "NUM_DST": 8, "CH_LANES": 16},
    {"NUM_TOKENS": 24, "CHANNELS": 7, "NUM_DST": 1, "CH_LANES": 2, "TOPK_REGISTER_EVERY": 1},
])
def test_rtl_datm_more_sizes(cosim, params):
    cosim("orbis_datm", params, args={"runs": 8, "idle": 0.2, "backpressure": 0.3})


def test_rtl_rejects_bad_parameters():
    from hdl.orbis.orbis_datm import OrbisDATM

    with pytest.raises(ValueError, match="num_dst"):
        OrbisDATM(num_tokens=8, num_dst=8)
    with pytest.raises(ValueError, match="num_tokens"):
        OrbisDATM(num_tokens=1)
    with pytest.raises(ValueError, match="ch_lanes"):
        OrbisDATM(ch_lanes=0)
