"""RADiT golden models of §III-B: CCU compare, α schedules, Algorithm 2 (DTSM)
checked on cases computed by hand from the paper's text, and Algorithm 1 on a
generated DiT-like trajectory."""

import numpy as np
import pytest

from golden.radit import (THETA_UNSET, ToyDiT, alpha_float, alpha_table, code_distance, compress_fp16,
                          delta_bits, delta_limit, dit_trajectory, dtsm, redundancy_aware_run)

ONE = 1 << 15  # α = 1.0 with ALPHA_FRAC = 15


# -- CCU compare (Fig. 6c) ---------------------------------------------------

def test_code_distance_hand_cases():
    assert code_distance([0b0000], [0b1111]) == 4
    assert code_distance([0b1010, 0b0111], [0b1010, 0b0111]) == 0
    assert code_distance([1, 2, 3], [0, 0, 0]) == 1 + 1 + 2
    assert code_distance(np.full((4, 8), 0b0101), np.full((4, 8), 0b1010)) == 4 * 32
    assert code_distance([0b0000] * 10, [0b1111] * 10, limit=31) == 31
    with pytest.raises(ValueError):
        code_distance([1, 2], [1])


def test_code_distance_matches_bitwise_count():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 16, size=(37, 19))
    b = rng.integers(0, 16, size=(37, 19))
    want = sum(bin(int(x) ^ int(y)).count("1") for x, y in zip(a.ravel(), b.ravel()))
    assert code_distance(a, b) == want


def test_delta_counter_size():
    assert delta_bits(256 * 1152) == 21  # Δ ≤ 4 · 294,912 = 1,179,648 < 2^21
    assert delta_limit(64) == 511


# -- α schedules (Eq. 3 with the sign fixed, Eq. 4) ---------------------------

def test_alpha_rises_from_zero_at_T_to_one_at_zero():
    T = 50
    for schedule in ("linear", "cosine"):
        a = alpha_float(T, schedule)
        assert a[T] == 0.0 and a[0] == pytest.approx(1.0)
        assert np.all(np.diff(a) < 0), "α must grow as t falls from T to 0"
        assert np.all(a >= 0), "Eq. 3 as printed, (t − T)/T, is negative: sign must be fixed"
        assert a[T // 2] == pytest.approx(0.5)
    lin, cos = alpha_float(T, "linear"), alpha_float(T, "cosine")
    assert lin[40] == pytest.approx(10 / 50)
    assert cos[40] == pytest.approx(0.5 * (1 - np.cos(np.pi * 10 / 50)))
    assert np.all(cos[T // 2 + 1:T] < lin[T // 2 + 1:T])  # cosine starts slower


def test_alpha_table_fixed_point():
    assert alpha_table(4, "linear").tolist() == [ONE, 24576, 16384, 8192, 0]
    assert alpha_table(4, "linear", frac_bits=2).tolist() == [4, 3, 2, 1, 0]
    cos = alpha_table(3, "cosine")
    assert cos.tolist() == [int(np.floor(v * ONE + 0.5)) for v in alpha_float(3, "cosine")]
    assert cos.max() == ONE  # fits ALPHA_FRAC + 1 bits
    with pytest.raises(ValueError, match="schedule"):
        alpha_table(4, "exp")
    with pytest.raises(ValueError, match="T"):
        alpha_table(0)


# -- Algorithm 2 on hand-computed cases ---------------------------------------

def _one_block(deltas, alphas, **kw):
    th, sk = dtsm(np.array(deltas, dtype=np.int64)[:, None], np.array(alphas, dtype=np.int64), **kw)
    return th[:, 0].tolist(), sk[:, 0].tolist()


def test_algorithm2_local_minimum_update_then_decide():
    # Δ falls 100 → 80 → 60 and rises to 90: 60 was a local minimum
    # (Δ(Δx_t) = +30 > 0 and Δ(Δx_{t+1}) = −20 < 0), so θ := 60 + α·30 = 75 with α = ½.
    th, sk = _one_block([100, 80, 60, 90, 70, 50], [ONE // 2] * 6)
    assert th == [100, 100, 100, 75, 75, 75]      # initialise with the first Δ, keep, update
    assert sk == [False, True, True, False, True, True]


def test_algorithm2_decide_before_update():
    th, sk = _one_block([100, 80, 60, 90, 70, 50], [ONE // 2] * 6, decide_before_update=True)
    assert th == [THETA_UNSET, 100, 100, 100, 75, 75]
    assert sk == [False, True, True, True, True, True]  # 90 < 100 before θ drops to 75


def test_algorithm2_uses_alpha_of_the_current_timestep():
    # Only α at the update step matters: α = ¼ there gives θ = 60 + 7 (floor of 7.5).
    th, _ = _one_block([100, 80, 60, 90], [ONE, ONE, ONE, ONE // 4])
    assert th[3] == 67
    th, _ = _one_block([100, 80, 60, 90], [0, 0, 0, ONE])
    assert th[3] == 90  # α = 1: θ jumps to the new Δ
    th, _ = _one_block([100, 80, 60, 90], [ONE, ONE, ONE, 0])
    assert th[3] == 60  # α = 0 (t = T): θ is the local minimum itself


def test_algorithm2_fixed_point_floor():
    # α = 10922/2^15, just below 1/3: 60 + floor(10922 · 30 / 32768) = 60 + floor(9.9994) = 69
    th, _ = _one_block([100, 80, 60, 90], [10922] * 4)
    assert th[3] == 69
    thf, _ = dtsm(np.array([[100], [80], [60], [90]]), np.full(4, 10922 / ONE), alpha_frac=None)
    assert thf[3, 0] == pytest.approx(60 + 30 * 10922 / ONE)


def test_algorithm2_no_update_without_a_local_minimum():
    # A rise right after initialisation: dd_prev is not valid yet, θ is kept.
    assert _one_block([50, 60, 70], [ONE] * 3)[0] == [50, 50, 50]
    # A plateau is not a minimum (dd_prev = 0 is not < 0).
    assert _one_block([50, 40, 40, 45], [ONE] * 4)[0] == [50, 50, 50, 50]
    # Falling then rising again: the second minimum updates too.
    th, _ = _one_block([50, 40, 45, 30, 60], [ONE // 2] * 5)
    assert th == [50, 50, 42, 42, 45]  # 40 + ½·5 = 42.5 → 42; 30 + ½·30 = 45


def test_algorithm2_equality_at_threshold_computes():
    th, sk = _one_block([10, 9, 8, 12, 10, 9], [ONE // 2] * 6)
    assert th[3:] == [10, 10, 10]  # 8 + ½·4
    assert sk == [False, True, True, False, False, True]  # Δ = θ is not "< θ"


def test_algorithm2_blocks_are_independent():
    d = np.array([[100, 5], [80, 5], [60, 7], [90, 3]])
    th, sk = dtsm(d, np.full(4, ONE // 2))
    assert th[:, 0].tolist() == [100, 100, 100, 75]
    assert th[:, 1].tolist() == [5, 5, 5, 5]
    assert sk[:, 1].tolist() == [False, False, False, True]


def _algorithm2_literal(deltas, alphas, frac, dbu):
    """Scalar transcription of docs/SPEC.md's four steps, one block at a time."""
    S, N = deltas.shape
    th_out = np.full((S, N), THETA_UNSET, dtype=np.int64)
    sk_out = np.zeros((S, N), dtype=bool)
    for n in range(N):
        theta = prev = dd_prev = None
        for s in range(S):
            d = int(deltas[s, n])
            old = theta
            dd = None
            if theta is None:
                theta = d
            else:
                dd = d - prev
                if dd > 0 and dd_prev is not None and dd_prev < 0:
                    theta = prev + (int(alphas[s]) * dd >> frac)
            used = old if dbu else theta
            sk_out[s, n] = used is not None and d < used
            th_out[s, n] = THETA_UNSET if used is None else used
            prev, dd_prev = d, dd
    return th_out, sk_out


@pytest.mark.parametrize("dbu", [False, True])
def test_dtsm_vectorised_equals_literal_transcription(dbu):
    rng = np.random.default_rng(11)
    for _ in range(20):
        S, N = int(rng.integers(1, 30)), int(rng.integers(1, 6))
        d = rng.integers(0, 40, size=(S, N))
        a = rng.integers(0, 2 * ONE, size=S)  # up to the table's 16-bit maximum
        th, sk = dtsm(d, a, decide_before_update=dbu)
        th2, sk2 = _algorithm2_literal(d, a, 15, dbu)
        np.testing.assert_array_equal(th, th2)
        np.testing.assert_array_equal(sk, sk2)


def test_dtsm_fixed_is_floor_of_float():
    rng = np.random.default_rng(5)
    d = rng.integers(0, 1000, size=(60, 7))
    a = alpha_table(60, "cosine")[60:0:-1]
    thi, _ = dtsm(d, a)
    thf, _ = dtsm(d, a / ONE, alpha_frac=None)
    np.testing.assert_array_equal(thi, np.floor(thf).astype(np.int64))


def test_dtsm_rejects_bad_input():
    with pytest.raises(ValueError):
        dtsm(np.zeros(5, dtype=int), np.zeros(5, dtype=int))
    with pytest.raises(ValueError):
        dtsm(np.zeros((5, 2), dtype=int), np.zeros(4, dtype=int))
    with pytest.raises(TypeError):
        dtsm(np.zeros((5, 2)), np.zeros(5))


# -- Algorithm 1 on a DiT-like trajectory --------------------------------------

@pytest.fixture(scope="module")
def small():
    model = ToyDiT(blocks=8, tokens=16, channels=32, rank=16, seed=0)
    x = model.latent(1)
    full = redundancy_aware_run(x, model, T=24, schedule=None, keep_inputs=True)
    return model, x, full


def test_full_run_computes_everything(small):
    _, _, full = small
    assert not full.skip.any() and full.error == 0.0 and full.saved == 0.0
    assert (full.delta[0] == -1).all() and (full.delta[1:] >= 0).all()


def test_trajectory_is_seeded_and_dit_like(small):
    _, _, full = small
    tr = dit_trajectory(T=24, blocks=8, tokens=16, channels=32, seed=0)
    np.testing.assert_array_equal(tr.view(np.uint16), full.inputs.view(np.uint16))
    assert not np.array_equal(tr, dit_trajectory(T=24, blocks=8, tokens=16, channels=32, seed=5))
    v = tr.astype(np.float32)
    assert np.mean(np.abs(v) < 16) > 0.99
    codes = compress_fp16(tr.view(np.uint16))
    # Consecutive timesteps are far more similar than timesteps far apart.
    near = np.mean([code_distance(codes[i, n], codes[i + 1, n]) for i in range(23) for n in range(8)])
    far = np.mean([code_distance(codes[i, n], codes[23 - i, n]) for i in range(6) for n in range(8)])
    assert near < 0.7 * far


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("dbu", [False, True])
def test_run_decisions_are_algorithm2_of_the_measured_deltas(small, schedule, dbu):
    model, x, full = small
    r = redundancy_aware_run(x, model, T=24, schedule=schedule, decide_before_update=dbu, full=full)
    assert not r.skip[0].any()
    alphas = alpha_table(24, schedule)[23:0:-1]  # t = 23..1, the timesteps with a Δ
    th, sk = dtsm(r.delta[1:], alphas, decide_before_update=dbu)
    np.testing.assert_array_equal(r.skip[1:], sk)
    np.testing.assert_array_equal(r.theta[1:], th)
    assert 0 < r.saved < 0.9 and r.error > 0


def test_run_fixed_threshold_extremes(small):
    model, x, full = small
    never = redundancy_aware_run(x, model, T=24, fixed_threshold=0, full=full)
    assert not never.skip.any() and never.error == 0.0
    always = redundancy_aware_run(x, model, T=24, fixed_threshold=10 ** 9, full=full)
    assert always.skip[1:].all() and always.error > 0.05


@pytest.mark.parametrize("reference", ["previous", "computed"])
def test_run_compare_reference_after_skip(small, reference):
    model, x, full = small
    r = redundancy_aware_run(x, model, T=24, schedule="linear", reference=reference, keep_inputs=True, full=full)
    codes = compress_fp16(r.inputs.view(np.uint16))
    for n in range(8):
        ref = 0
        for row in range(1, 24):
            assert r.delta[row, n] == code_distance(codes[ref, n], codes[row, n])
            if reference == "previous" or not r.skip[row, n]:
                ref = row
    assert r.skip.any()


def test_redundancy_report_writes_its_files(tmp_path, monkeypatch):
    """The `make bench` report on a tiny stack: Markdown, JSON and the Fig. 5-style PNG."""
    import json

    from reports import radit_redundancy

    monkeypatch.setattr(radit_redundancy, "QUICK", {"blocks": 4, "tokens": 16, "channels": 32, "T": 10, "rank": 8})
    res = radit_redundancy.run(tmp_path, quick=True)
    assert set(res["policies"]) == {"linear", "cosine", f"fixed θ={res['fixed_threshold']}"}
    for p in res["policies"].values():
        assert len(p["skip_ratio_per_block"]) == 4 and 0 <= p["saved"] <= 1 and p["error"] >= 0
    assert json.loads((tmp_path / "radit_redundancy.json").read_text())["shape"]["blocks"] == 4
    assert "| linear |" in (tmp_path / "radit_redundancy.md").read_text()
    assert (tmp_path / "radit_redundancy.png").read_bytes()[:4] == b"\x89PNG"
