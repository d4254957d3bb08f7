"""Ditto compute unit: golden linear/attention steps equal plain INT8 matmuls;
the RTL produces A_t·W exactly over a generated trajectory."""

import numpy as np
import pytest

from golden.ditto import attention_step, linear_step, matmul, trajectory



def test_golden_linear_step_all_modes_exact():
    rng = np.random.default_rng(11)
    acts = trajectory(rng, 6, (16, 48))
    w = rng.integers(-128, 128, size=(48, 24))
    out, counts = linear_step(None, acts[0], w, mode="act")
    assert np.array_equal(out, matmul(acts[0], w)) and counts.sum() == acts[0].size
    for t in range(1, 6):
        out, counts = linear_step(acts[t - 1], acts[t], w, out, "temporal")
        assert np.array_equal(out, matmul(acts[t], w))
        sp, _ = linear_step(None, acts[t], w, mode="spatial")
        assert np.array_equal(sp, matmul(acts[t], w))


def test_golden_attention_two_difference_products():
    """Q_t K_t^T and P_t V_t from the previous product plus Q_t ΔK + ΔQ K_{t+1}."""
    rng = np.random.default_rng(12)
    q, k, pm, v = (trajectory(rng, 5, s) for s in ((8, 16), (8, 16), (8, 8), (8, 16)))
    qk, pv = matmul(q[0], k[0].T), matmul(pm[0], v[0])
    for t in range(1, 5):
        qk, ca, cb = attention_step(q[t - 1], q[t], k[t - 1].T, k[t].T, qk)
        pv, _, _ = attention_step(pm[t - 1], pm[t], v[t - 1], v[t], pv)
        assert np.array_equal(qk, matmul(q[t], k[t].T))
        assert np.array_equal(pv, matmul(pm[t], v[t]))
        assert ca.sum() == q[t].size and cb.sum() == k[t].size


@pytest.mark.cosim
def test_rtl_trajectory_exact(cosim):
    """PES=4, K=64: 6 timesteps (act, then temporal differences) of 16 rows
    with gaps and back-pressure; latency and II with a ready sink."""
    cosim("ditto_compute_unit", {"PES": 4, "MAX_ROW": 64},
          args={"steps": 6, "rows": 16, "idle": 0.2, "backpressure": 0.4})


def test_rtl_rejects_bad_parameters():
    from hdl.ditto.ditto_compute_unit import DittoComputeUnit

    with pytest.raises(ValueError, match="pes"):
        DittoComputeUnit(pes=0)
    with pytest.raises(ValueError, match="max_row"):
        DittoComputeUnit(max_row=1)
