"""ORBIS min tree and top-k: the shared networks (hdl/common/min_tree.py,
hdl/common/sorting.py) and the two units against the golden models."""

import itertools

import numpy as np
import pytest

from golden.orbis import bitonic_latency as golden_bitonic_latency
from golden.orbis import min_tree, topk_smallest
from hdl.common.sorting import bitonic_latency, bitonic_network



@pytest.mark.parametrize("size", [2, 4, 8, 16])
def test_bitonic_network_sorts_every_01_input(size):
    """0-1 principle: a comparator network sorts everything iff it sorts all 0-1 inputs."""
    bits = np.array(list(itertools.product([0, 1], repeat=size)), dtype=np.int8)
    v = bits.copy()
    for stage in bitonic_network(size):
        touched = [i for pair in stage for i in pair]
        assert len(touched) == len(set(touched)) == size, "a stage must pair every position once"
        for lo, hi in stage:
            a, b = v[:, lo].copy(), v[:, hi].copy()
            v[:, lo], v[:, hi] = np.minimum(a, b), np.maximum(a, b)
    assert np.array_equal(v, np.sort(bits, axis=1))
    s = size.bit_length() - 1
    assert len(bitonic_network(size)) == s * (s + 1) // 2
    for r in (1, 2, 3):
        assert bitonic_latency(size, r) == golden_bitonic_latency(size, r)


def test_bitonic_network_rejects_non_power_of_two():
    with pytest.raises(ValueError, match="size"):
        bitonic_network(12)


def test_golden_min_tree_and_topk():
    v, i = min_tree(np.array([[3, 1, 1, 2], [0, 0, 0, 0]]))
    assert v.tolist() == [1, 0] and i.tolist() == [1, 0]
    assert topk_smallest([5, 1, 1, 0, 9], 3).tolist() == [3, 1, 2]
    assert topk_smallest([5, 1, 1, 0, 9], 9, valid=[1, 0, 1, 0, 1]).tolist() == [2, 0, 4]
    assert topk_smallest([5, 1], 0).tolist() == []


@pytest.mark.cosim
def test_rtl_min_tree(cosim):
    """D = 5 (an odd element passes a level), 6-bit distances: many ties."""
    cosim("orbis_min_tree", {"NUM_DST": 5, "DIST_WIDTH": 6}, args={"vectors": 500, "idle": 0.2, "backpressure": 0.4})


@pytest.mark.cosim
def test_rtl_topk(cosim):
    """SIZE = 8, 4-bit losses (ties), a register every 2 comparator stages."""
    cosim("orbis_topk", {"SIZE": 8, "LOSS_WIDTH": 4, "REGISTER_EVERY": 2},
          args={"sets": 200, "idle": 0.3, "backpressure": 0.4})


@pytest.mark.cosim
@pytest.mark.slow
@pytest.mark.parametrize("params", [{"NUM_DST": 16}, {"NUM_DST": 1, "DIST_WIDTH": 4}])
def test_rtl_min_tree_sizes(cosim, params):
    cosim("orbis_min_tree", params, args={"vectors": 1000, "idle": 0.1, "backpressure": 0.3})


@pytest.mark.cosim
@pytest.mark.slow
def test_rtl_topk_default(cosim):
    cosim("orbis_topk", {}, args={"sets": 300, "idle": 0.1, "backpressure": 0.3})


def test_rtl_rejects_bad_parameters():
    from hdl.orbis.orbis_min_tree import OrbisMinTree
    from hdl.orbis.orbis_topk import OrbisTopK

    with pytest.raises(ValueError, match="num_dst"):
        OrbisMinTree(num_dst=0)
    with pytest.raises(ValueError, match="size"):
        OrbisTopK(size=12)
    with pytest.raises(ValueError, match="register_every"):
        OrbisTopK(register_every=0)
