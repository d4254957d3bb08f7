"""Ditto Encoding Unit: golden classifier/splitter/packer, RTL against them."""

import itertools


import numpy as np
import pytest

from golden.ditto import FULL, LOW, ZERO, classify, differences, encode, pack, pack_cycles, split

PAIRS_CUR, PAIRS_PREV = (a.reshape(-1) for a in np.meshgrid(np.arange(-128, 128), np.arange(-128, 128)))

ENC = {"IN_LANES": 8, "MAX_ROW": 64, "QUEUE_DEPTH": 32, "MAX_OFFSET": 16}


def test_golden_classify_split_all_pairs():
    """All 65,536 (cur, prev) INT8 pairs: class bounds, 16·hi + lo = d, field ranges."""
    d = differences(PAIRS_CUR, PAIRS_PREV, "temporal")
    assert d.min() == -255 and d.max() == 255 and d.size == 65536
    c = classify(d)
    want = np.array([ZERO if v == 0 else LOW if -8 <= v <= 7 else FULL for v in d.tolist()])
    assert np.array_equal(c, want)
    hi, lo = split(d)
    assert np.array_equal(16 * hi + lo, d)
    full = c == FULL
    assert hi[full].min() == -16 and hi[full].max() == 15
    assert lo.min() == 0 and lo.max() == 15
    # a low difference is its own 5-bit lane operand; split agrees with the paper's
    # hi/lo comparators: low <=> the high part (d >> 3) is all sign bits.
    assert np.array_equal(c == LOW, (d != 0) & np.isin(d >> 3, (-1, 0)))
    n_low = sum(256 - abs(v) for v in range(-8, 8) if v)  # pairs with cur - prev = v
    assert np.bincount(c, minlength=3).tolist() == [256, n_low, 65536 - 256 - n_low]


def _pack_reference(cls):
    """The SPEC rule spelt out literally, element by element, lanes as sets."""
    cycles, free = [], None
    for idx, c in enumerate(cls):
        if c == ZERO:
            continue
        while True:
            if free is None:
                free, cur = set(range(4)), [-1] * 4
                cycles.append(cur)
            if c == LOW and free:
                lane = min(free)
                free.discard(lane)
                cur[lane] = idx
                break
            pairs = [e for e in (0, 2) if e in free and e + 1 in free]
            if c == FULL and pairs:
                free -= {pairs[0], pairs[0] + 1}
                cur[pairs[0]] = cur[pairs[0] + 1] = idx
                break
            free = None  # close the cycle at the first element that does not fit
    return cycles or [[-1] * 4]


def test_golden_pack_matches_literal_rule():
    rng = np.random.default_rng(7)
    rows = [rng.choice(3, size=int(n), p=p) for n, p in itertools.product(
        (1, 2, 5, 17, 64), ((0.45, 0.5, 0.05), (0.1, 0.45, 0.45), (0, 0, 1), (0, 1, 0), (1, 0, 0)))
        for _ in range(20)]
    rows += [np.array(r) for r in itertools.product(range(3), repeat=6)]  # every 6-element row
    for cls in rows:
        lanes, cycles = pack(cls)
        assert lanes.tolist() == _pack_reference(cls.tolist()), cls
        assert cycles == pack_cycles(cls) == len(lanes)
    batch = np.array([r for r in rows if len(r) == 6])
    assert np.array_equal(pack_cycles(batch), [pack(r)[1] for r in batch])


def test_golden_pack_examples():
    lanes, cycles = pack([1, 2, 1, 1, 0, 2, 2, 1])
    assert cycles == 3
    assert lanes.tolist() == [[0, 2, 1, 1], [3, -1, 5, 5], [6, 6, 7, -1]]
    assert pack([0, 0, 0])[1] == 1 and pack([1, 1, 1, 1])[1] == 1 and pack([2, 2, 2])[1] == 2


def test_golden_encode_rebuilds_every_difference():
    rng = np.random.default_rng(3)
    d = rng.integers(-255, 256, size=4096) * (rng.random(4096) < 0.6)
    d[:16] = [0, 7, -8, 8, -9, 255, -255, 15, -16, 16, 1, -1, 127, -128, 0, 0]
    rebuilt = np.zeros_like(d)
    for beat in encode(d):
        for lane in range(4):
            if beat["valid"][lane]:
                shift = 4 if lane in (0, 2) and beat["hi"][lane // 2] else 0
                assert -16 <= beat["operand"][lane] <= 15
                rebuilt[beat["index"][lane]] += beat["operand"][lane] << shift
            else:
                assert beat["operand"][lane] == 0 and beat["index"][lane] == 0
    assert np.array_equal(rebuilt, d)


# The sweep of every pair; test_rtl_random_all_modes_and_timing drives the same
# build through every mode and class in the fast set.
@pytest.mark.slow
@pytest.mark.cosim
def test_rtl_exhaustive_pairs_temporal(cosim):
    """All 65,536 (cur, prev) pairs in temporal mode, rows of 64, 16-row layers,
    with random input gaps and output/stats back-pressure."""
    cosim("ditto_encoder", ENC, testcase="lanes_match_golden",
          args={"stream": "exhaustive", "k": 64, "rows": 16, "idle": 0.1, "backpressure": 0.3})


@pytest.mark.cosim
def test_rtl_random_all_modes_and_timing(cosim):
    """Seeded layers in act/temporal/spatial mode (offsets 1..MAX_OFFSET beats,
    all-zero rows, corner values, short layers) with gaps and back-pressure;
    cycle-exact output-bound run; II = 1 on sparse input."""
    cosim("ditto_encoder", ENC, args={"stream": "random", "k": 64, "rows": 12, "layers": 12,
                                       "idle": 0.2, "backpressure": 0.4})


def test_rtl_rejects_bad_parameters():
    from hdl.ditto.ditto_encoder import DittoEncoder

    for kw, name in (({"in_lanes": 0}, "in_lanes"), ({"queue_depth": 24}, "queue_depth"),
                     ({"queue_depth": 16}, "queue_depth"), ({"max_offset": 3}, "max_offset"),
                     ({"max_row": 4}, "max_row")):
        with pytest.raises(ValueError, match=name):
            DittoEncoder(**kw)


@pytest.mark.slow
@pytest.mark.cosim
def test_rtl_narrow_input_small_queue(cosim):
    """IN_LANES=4 with the smallest legal power-of-two queue (16), every mode."""
    cosim("ditto_encoder", {"IN_LANES": 4, "MAX_ROW": 64, "QUEUE_DEPTH": 16, "MAX_OFFSET": 32},
          args={"stream": "random", "k": 64, "rows": 8, "layers": 9, "idle": 0.2, "backpressure": 0.4})
