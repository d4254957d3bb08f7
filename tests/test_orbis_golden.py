"""ORBIS golden models: DATM's loss descent and advantage over BSM, the dst
update rule, reduce/restore, BSM's structure and the OGM schedule."""

import numpy as np
import pytest

from golden.orbis import (bsm, datm, init_dst, merge_error, ogm_drive, ogm_schedule, pair_loss,
                          quantize_channelwise, reduce, restore)


def clustered(rng, n=128, c=32, k=24, noise=0.3):
    """Uneven clusters (Dirichlet sizes): BSM's fixed odd-index dsts miss small ones."""
    p = rng.dirichlet(np.ones(k) * 0.5)
    centers = rng.normal(size=(k, c)) * 2
    return centers[rng.choice(k, n, p=p)] + rng.normal(size=(n, c)) * noise


@pytest.mark.parametrize("seed", range(6))
def test_datm_never_increases_the_pair_loss(seed):
    rng = np.random.default_rng(seed)
    x = clustered(rng) if seed % 2 else rng.normal(size=(96, 16))
    q, s = quantize_channelwise(x)
    for r in (datm(q, s, 12, 20, eps=0.0, max_iter=30, seed=seed),
              datm(x, None, 12, 20, eps=0.0, max_iter=30, seed=seed, quantized=False)):
        t = np.array(r.totals, dtype=float)
        assert np.all(np.diff(t) <= 1e-9 * max(1.0, t[0])), f"loss rose: {r.totals}"
        assert r.iterations == len(r.losses) == len(r.totals)


def test_datm_beats_bsm_on_clustered_data():
    wins = 0
    for seed in range(5):
        rng = np.random.default_rng(100 + seed)
        x = clustered(rng, n=256, k=24, noise=0.3)
        q, s = quantize_channelwise(x)
        r = 128
        loss_bsm = pair_loss(x, bsm(x, r))
        loss_f = pair_loss(x, datm(x, None, 32, r, 0.01, 16, seed, quantized=False).pairs)
        loss_q = pair_loss(x, datm(q, s, 32, r, 0.01, 16, seed).pairs)
        wins += loss_f < loss_bsm and loss_q < loss_bsm
    assert wins >= 4, f"DATM beat BSM on only {wins} of 5 clustered sets"


def test_datm_update_is_the_member_nearest_the_group_mean():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 6))
    r = datm(x, None, 5, 0, eps=0.0, max_iter=2, seed=1, quantized=False)
    first, second = r.history
    d2 = ((x[:, None, :] - x[first][None]) ** 2).sum(-1)
    slot = d2.argmin(1)
    slot[first] = np.arange(first.size)
    for g in range(first.size):
        members = np.flatnonzero(slot == g)
        mean = x[members].mean(0)
        want = members[((x[members] - mean) ** 2).sum(1).argmin()]
        assert second[g] == want


def test_quantized_datm_with_unit_scales_equals_float_datm_on_codes():
    rng = np.random.default_rng(5)
    q = rng.integers(-8, 8, size=(50, 12))
    a = datm(q, None, 7, 20, eps=0.25, max_iter=10, seed=4)
    b = datm(q.astype(float), None, 7, 20, eps=0.25, max_iter=10, seed=4, quantized=False)
    assert a.iterations == b.iterations
    assert np.array_equal(a.pairs, b.pairs)
    assert np.allclose(a.losses, b.losses)


def test_datm_corners():
    q = np.zeros((10, 4), dtype=int)
    r = datm(q, np.ones(4), 3, 10, eps=0.01, max_iter=9, seed=0)
    assert r.totals == [0, 0] and r.converged            # |0 - 0| <= ε·0
    assert r.pairs.shape == (7, 2)                        # k clamped to N - D
    assert r.pairs[:, 0].tolist() == sorted(set(range(10)) - set(r.dst.tolist()))
    assert datm(q, None, 3, 0).pairs.shape == (0, 2)
    assert datm(q, None, 3, 5, max_iter=1).iterations == 1
    with pytest.raises(ValueError, match="max_iter"):
        datm(q, None, 3, 5, max_iter=0)
    with pytest.raises(ValueError, match="num_dst"):
        datm(q, None, 10, 5)


def test_init_dst_is_distinct_and_seeded():
    for n, d in [(13, 3), (64, 16), (10, 9), (7, 1)]:
        for seed in range(n + 3):
            dst = init_dst(n, d, seed)
            assert np.unique(dst).size == d and dst[0] == seed % n


def test_reduce_restore_round_trip_on_identical_tokens_is_exact():
    x = np.tile(np.array([0.1, -3.7, 1e-7, 5.5]), (16, 1))
    pairs = np.array([[0, 1], [2, 1], [3, 1], [4, 5], [7, 6]])
    sizes = np.array([1, 2, 3, 1, 1, 7, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], float)
    y, ys = reduce(x, pairs, sizes)
    assert y.shape == (11, 4)
    assert np.array_equal(restore(y, pairs), x)
    assert ys[0] == 2 + 1 + 1 + 3                        # token 1 gathered tokens 0, 2, 3


def test_reduce_is_a_size_weighted_mean_and_restore_copies_back():
    x = np.array([[0.0], [4.0], [10.0], [1.0]])
    pairs = np.array([[0, 1], [3, 2]])
    y, ys = reduce(x, pairs, np.array([3.0, 1.0, 1.0, 1.0]))
    assert np.allclose(y[:, 0], [(0 * 3 + 4) / 4, 5.5]) and ys.tolist() == [4, 2]
    assert np.allclose(restore(y, pairs)[:, 0], [1.0, 1.0, 5.5, 5.5])
    assert merge_error(x, np.zeros((0, 2), int)) == 0.0
    with pytest.raises(ValueError):
        reduce(x, np.array([[0, 1], [1, 2]]))             # a dst that is also a src


def test_bsm_pairs_even_srcs_with_odd_dsts():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20, 8))
    p = bsm(x, 6)
    assert p.shape == (6, 2) and np.all(p[:, 0] % 2 == 0) and np.all(p[:, 1] % 2 == 1)
    x[4] = x[7] * 3.0                                      # cosine 1: the best edge
    assert bsm(x, 1).tolist() == [[4, 7]]
    assert bsm(x, 100).shape == (10, 2)                    # at most the srcs
    assert pair_loss(x, bsm(x, 0)) == 0.0


def test_ogm_reuses_fc_pairs_for_three_rc_steps():
    assert ogm_schedule(9) == ["FC", "RC", "RC", "RC", "FC", "RC", "RC", "RC", "FC"]
    rng = np.random.default_rng(0)
    seen = []

    def step(x, t, pairs):
        seen.append(None if pairs is None else pairs.copy())
        if pairs is None:
            return x + rng.normal(size=x.shape) * 0.01
        y, _ = reduce(x, pairs)
        return restore(y, pairs)

    def match(out):
        q, s = quantize_channelwise(out)
        return datm(q, s, 4, 6, seed=0).pairs

    recs = ogm_drive(step, rng.normal(size=(16, 4)), 8, match)
    assert [r["kind"] for r in recs] == ogm_schedule(8)
    assert seen[0] is None and seen[4] is None
    for t in (1, 2, 3):
        assert np.array_equal(seen[t], seen[1])
    # RC steps use the pairs matched on the preceding FC step's output.
    assert np.array_equal(seen[1], match(recs[0]["output"]))
    assert np.array_equal(seen[5], match(recs[4]["output"]))
    assert np.array_equal(recs[5]["pairs"], seen[5])
