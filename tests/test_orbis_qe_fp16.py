"""ORBIS FP16 QE: the golden model against an independent float64 reference
(docs/SPEC.md "Quantization engine"), its corners, scale invariance of codes,
weights and DATM pairs, and the RTL against the golden model."""

import numpy as np
import pytest

from golden.orbis import (datm, dropped_channels, fixed_scales, qe_fp16, quantize_channelwise,
                          quantize_channelwise_fp16, scale_weights)
from sim.orbis.tb_orbis_qe_fp16 import NAN, NEG_INF, NEG_ZERO, POS_INF, corner_matrices, random_fp16

FP16_TB = "sim.orbis.tb_orbis_qe_fp16"


def reference(bits, scale_frac):
    """float64 reading of the spec. 7x/M_c and M_c·2^F/M have at most 14- and
    11-bit significands over 11-bit ones, so a float64 quotient lands exactly on
    a half-integer only where the exact one does: np.round and floor(+1/2) on it
    are the exact roundings."""
    v = bits.view(np.float16).astype(np.float64)
    v = np.where(np.isfinite(v), v, np.copysign(65504.0, v))
    peak = np.max(np.abs(v), axis=0)
    safe = np.where(peak == 0, 1.0, peak)
    q = np.where(peak == 0, 0.0, np.round(7 * v / safe)).astype(np.int64)
    top = peak.max()
    sigma = np.zeros(peak.shape, np.int64) if top == 0 else \
        np.floor(peak * 2.0 ** scale_frac / top + 0.5).astype(np.int64)
    return q, sigma, bool(np.any(~np.isfinite(bits.view(np.float16))))


def _h(x):
    return np.asarray(x, np.float16).view(np.uint16)


@pytest.mark.parametrize("f", [0, 4, 8, 12])
def test_golden_fp16_matches_float64_reference(f):
    rng = np.random.default_rng(f)
    mats = corner_matrices(rng, 16, 12, f)
    for _ in range(20):
        mats.append(random_fp16(rng, (16, 12), max_field=31))
        mats.append(_h(rng.normal(size=(32, 24)) * 2.0 ** rng.uniform(-20, 12, size=24)))
    for x in mats:
        q, sigma, flag = qe_fp16(x, f)
        rq, rs, rflag = reference(x, f)
        assert np.array_equal(q, rq) and np.array_equal(sigma, rs) and flag == rflag
        assert q.dtype == np.int8 and q.min() >= -7 and q.max() <= 7


def test_golden_fp16_corners():
    x = _h([[7.0, 0.0, 14.0, 2.0 ** -24],
            [3.5, -0.0, 1.0, 3 * 2.0 ** -24],
            [-0.5, 0.0, 3.0, -7 * 2.0 ** -24]])
    x[1, 1] = NEG_ZERO
    q, sigma, flag = qe_fp16(x, 8)
    assert q[:, 0].tolist() == [7, 4, 0]         # 3.5 -> 3.5 (tie, to even 4); -0.5 -> -0.5 -> 0
    assert q[:, 1].tolist() == [0, 0, 0]         # all-zero channel of both signed zeros
    assert q[:, 2].tolist() == [7, 0, 2]         # 1 -> 0.5 -> 0, 3 -> 1.5 -> 2
    assert q[:, 3].tolist() == [1, 3, -7]        # subnormals: 7·1/7, 7·3/7
    assert sigma.tolist() == [128, 0, 256, 0] and not flag
    # Scale ties round up: M = 1024, M_c = 6 -> 6·2^8/1024 = 1.5 -> 2.
    assert qe_fp16(_h([[1024.0, 6.0, 10.0]]), 8)[1].tolist() == [256, 2, 3]
    # All-zero matrix: codes and scales 0.
    q, sigma, _ = qe_fp16(np.zeros((3, 2), np.uint16), 8)
    assert not q.any() and not sigma.any()


def test_golden_fp16_nonfinite_reads_as_largest_finite():
    x = np.array([[POS_INF, NAN, 0x3C00], [_h(65504.0), _h(-1.0), NEG_INF]], dtype=np.uint16)
    q, sigma, flag = qe_fp16(x, 8)
    assert flag and q[:, 0].tolist() == [7, 7] and q[:, 1].tolist() == [7, 0] and q[:, 2].tolist() == [0, -7]
    assert sigma.tolist() == [256, 256, 256]
    assert not qe_fp16(x & 0x03FF, 8)[2]          # the same mantissas, exponent field 0


@pytest.mark.parametrize("f", [4, 8, 12])
def test_golden_fp16_no_channel_above_2_to_minus_f_is_dropped(f):
    """(M_c/M)^2 >= 2^-F gives a DAU weight >= 1; only weaker channels can be 0."""
    rng = np.random.default_rng(10 + f)
    for _ in range(40):
        x = _h(rng.normal(size=(16, 64)) * 2.0 ** rng.uniform(-14, 14, size=64))
        _, sigma, _ = qe_fp16(x, f)
        w = scale_weights(sigma, f)
        v = x.view(np.float16).astype(np.float64)
        peak = np.abs(v).max(axis=0)
        strong = (peak / peak.max()) ** 2 >= 2.0 ** -f
        assert np.all(w[strong] >= 1)
        assert w.max() == 1 << f
        assert dropped_channels(v, w) == int(np.sum((peak > 0) & (w == 0)))


def test_golden_fp16_is_invariant_to_a_power_of_two_scale():
    """x·2^k (exact in binary16 while every value stays normal): identical codes,
    scales and DATM pairs."""
    rng = np.random.default_rng(3)
    v = rng.normal(size=(48, 16)) * 2.0 ** rng.uniform(-3, 3, size=16)
    v = np.where(np.abs(v) < 2.0 ** -4, 2.0 ** -4, v)   # keep every value normal at every k below
    base = _h(v)
    q0, s0 = quantize_channelwise_fp16(base, 8)
    p0 = datm(q0, s0, num_dst=8, k=12, seed=1, fixed=True, scale_frac=8).pairs
    for k in (-8, -3, 1, 5, 10):
        x = _h(base.view(np.float16).astype(np.float64) * 2.0 ** k)
        assert np.array_equal(x.view(np.float16).astype(np.float64), base.view(np.float16) * 2.0 ** k)
        q, s = quantize_channelwise_fp16(x, 8)
        assert np.array_equal(q, q0) and np.array_equal(s, s0)
        assert np.array_equal(datm(q, s, num_dst=8, k=12, seed=1, fixed=True, scale_frac=8).pairs, p0)
    # Absolute scales max|x_c|/7 in 8 fraction bits lose every channel at 2^-8.
    small = base.view(np.float16).astype(np.float64) * 2.0 ** -8
    assert not scale_weights(fixed_scales(quantize_channelwise(small)[1], 8), 8).any()


def test_golden_fp16_pairs_equal_those_of_exact_float_weights():
    """Where the normalised weights are exact (M_c/M a power of two, F even), the
    integer DATM pairs equal those of DATM on the dequantised floats q·M_c/7
    (exact weights s_c^2), for ε a power of two so both stop alike."""
    rng = np.random.default_rng(5)
    c = 12
    amp = 7.0 * 2.0 ** -rng.integers(0, 4, size=c)      # M_c = 7·2^-j: s_c = 2^-j exactly
    for trial in range(10):
        x = _h(np.clip(rng.normal(size=(40, c)) / 2.5, -1, 1) * amp)
        x[rng.integers(0, 40, size=c), np.arange(c)] = _h(amp)   # pin every channel's max
        q, sigma, _ = qe_fp16(x, 8)
        peak = np.abs(x.view(np.float16).astype(np.float64)).max(axis=0)
        assert np.array_equal(scale_weights(sigma, 8) * peak.max() ** 2, (peak ** 2) * 256)
        deq = q.astype(np.float64) * (peak / 7.0)
        eps = 2.0 ** -7
        a = datm(q, sigma, num_dst=8, k=10, eps=eps, seed=trial, fixed=True, scale_frac=8)
        b = datm(deq, None, num_dst=8, k=10, eps=eps, seed=trial, quantized=False)
        assert a.iterations == b.iterations
        assert np.array_equal(a.pairs, b.pairs)


def test_rtl_rejects_bad_dtype():
    from hdl.orbis.orbis_qe import OrbisQE

    with pytest.raises(TypeError, match="dtype"):
        OrbisQE(dtype=16)
    with pytest.raises(ValueError, match="dtype"):
        OrbisQE(dtype="bf16")
    qe = OrbisQE(dtype="fp16", scale_frac=6)
    assert qe.dtype == "fp16" and qe.scale_width == 7 and qe.scale_frac == 6


@pytest.mark.cosim
def test_rtl_qe_fp16_random_and_corners(cosim):
    """N = 13, C = 10, L = 4 (a half-empty last chunk with garbage padding lanes)."""
    cosim("orbis_qe", {"NUM_TOKENS": 13, "CHANNELS": 10, "CH_LANES": 4, "DTYPE": "fp16"},
          testbench=FP16_TB, args={"matrices": 6, "idle": 0.2, "backpressure": 0.4})


@pytest.mark.cosim
@pytest.mark.slow
@pytest.mark.parametrize("params", [{}, {"SCALE_FRAC": 12, "CHANNELS": 24, "CH_LANES": 8, "NUM_TOKENS": 32},
                                    {"SCALE_FRAC": 0, "CHANNELS": 5, "CH_LANES": 8, "NUM_TOKENS": 3}])
def test_rtl_qe_fp16_other_sizes(cosim, params):
    cosim("orbis_qe", {**params, "DTYPE": "fp16"}, testbench=FP16_TB,
          args={"matrices": 4, "idle": 0.1, "backpressure": 0.3})


def test_no_channel_dropped_on_the_digits_dit_sdpa_traces():
    """The committed digits DiT, 50 DDIM steps, 2 images: every SDPA channel keeps
    a nonzero DAU weight with the FP16 QE (F = 16), while 8-bit absolute scales
    drop many (the failure this QE removes)."""
    torch = pytest.importorskip("torch")
    from golden import orbis as go
    from reports.evidence import qe_dropped
    from workloads.dit import sample
    from workloads.hooks import Recorder
    from workloads.traces import get_model, labels_for

    torch.set_num_threads(1)
    model, _, _ = get_model()
    rec = Recorder(model.cfg.depth, trace=True, trace_samples=2)
    sample(model, labels_for(2), seed=0, steps=50, hooks=rec)
    sdpa = rec.arrays()["sdpa"]
    d = qe_dropped(go, sdpa, 16)
    assert d["channels"] == sdpa.shape[0] * sdpa.shape[1] * 2 * sdpa.shape[-1]
    assert d["fp16"] == 0
    assert d["old_share"] > 0.1


def test_orbis_hook_matches_on_the_fp16_qe():
    """The workload's 4-bit DATM is the FP16 QE's: the same pairs as the golden
    chain, none dropped, and the same pairs at 2^-8 of the amplitude."""
    pytest.importorskip("torch")
    from workloads.hooks import OrbisHooks

    rng = np.random.default_rng(9)
    x = rng.normal(size=(16, 24)) * 2.0 ** rng.uniform(-6, 2, size=24)
    hk = OrbisHooks(4, "datm", num_dst=4)
    hk.step, hk._block = 0, 0
    q, sigma = quantize_channelwise_fp16(x, 16)
    want = datm(q, sigma, num_dst=4, k=4, eps=0.01, max_iter=16, seed=0, fixed=True, scale_frac=16).pairs
    assert np.array_equal(hk.match(x), want)
    assert np.array_equal(hk.match(x * 2.0 ** -8), want)
    assert hk.dropped[(0, 0)] == [0, 0]
