"""Weight-stationary systolic array: golden model (matmul, tiler, cycle model),
the PE and the reference MAC against register models, and the array against
the golden model bit-exactly and cycle-exactly in co-simulation."""

import math
import re

import numpy as np
import pytest

from golden import systolic as g


# --------------------------------------------------------------------------
# Golden model


def test_matmul_wraps_like_python_integers():
    rng = np.random.default_rng(1)
    for bits in (8, 16, 32):
        a = rng.integers(-128, 128, size=(7, 300))
        w = rng.integers(-128, 128, size=(300, 5))
        ref = [[sum(int(a[i, k]) * int(w[k, j]) for k in range(300)) for j in range(5)] for i in range(7)]
        ref = [[(v + (1 << (bits - 1))) % (1 << bits) - (1 << (bits - 1)) for v in row] for row in ref]
        assert g.matmul(a, w, bits).tolist() == ref


def test_matmul_worst_case_int32_and_wrap():
    k = 64
    a = np.full((2, k), -128)
    w = np.full((k, 3), -128)
    assert (g.matmul(a, w) == k * 16384).all()  # 2^20: no wrap in INT32
    assert (g.matmul(a, w, acc_bits=21) == -(1 << 20)).all()  # 2^20 wraps to -2^20 in 21 bits
    big = np.full((1, 1 << 17), -128)
    wb = np.full((1 << 17, 1), -128)
    assert g.matmul(big, wb)[0, 0] == -(1 << 31)  # 2^31 wraps to INT32_MIN


def test_matmul_rejects_bad_input():
    with pytest.raises(TypeError):
        g.matmul(np.ones((2, 2)), np.ones((2, 2), dtype=int))
    with pytest.raises(ValueError):
        g.matmul(np.ones((2, 3), dtype=int), np.ones((2, 2), dtype=int))


@pytest.mark.parametrize("m, k, n, rows, cols", [(5, 7, 9, 4, 4), (1, 1, 1, 1, 1), (33, 64, 64, 16, 16),
                                                  (3, 20, 7, 8, 3), (10, 3, 2, 4, 4)])
def test_tiler_assembles_the_product(m, k, n, rows, cols):
    rng = np.random.default_rng(m * k * n)
    a = rng.integers(-128, 128, size=(m, k))
    w = rng.integers(-128, 128, size=(k, n))
    parts = g.tiles(a, w, rows, cols)
    assert len(parts) == math.ceil(k / rows) * math.ceil(n / cols)
    for t in parts:
        assert t.weights.shape == (rows, cols) and t.activations.shape == (m, rows)
        assert t.expected.shape == (m, cols)
    # N tiles outer, K tiles inner: the K tiles of one output block are adjacent.
    assert [(t.n0, t.k0) for t in parts] == sorted((t.n0, t.k0) for t in parts)
    assert np.array_equal(g.assemble(parts, m, n), g.matmul(a, w))


def test_cycle_model_parts_and_tile_period():
    c = g.cycles(256, 64, 64, 64, 64)
    assert (c.tiles, c.weight_load, c.steady, c.load_stall, c.fill, c.drain) == (1, 64, 256, 0, 64, 64)
    assert c.total == 64 + 256 + 128
    many = g.cycles(256, 640, 640, 64, 64)
    assert many.total - c.total == 99 * 256  # each extra tile costs exactly M cycles
    short = g.cycles(10, 128, 64, 64, 64)  # M < ROWS: the weight load sets the tile period
    assert short.tile_period == 64 and short.total == 64 + 2 * 10 + 54 + 128
    assert g.cycles(3, 5, 7, 1, 1).total == 1 + 35 * 3 + 34 * 0 + 2
    with pytest.raises(ValueError, match="rows"):
        g.cycles(1, 1, 1, 0, 1)


def test_dit_xl2_linear_layers_reach_99_percent_and_scalesim_does_not():
    """The issue's throughput target on the DiT-XL/2 layers with M = 256."""
    layers = [x for x in g.dit_xl2_layers() if x[2] % 64 == 0 and x[3] % 64 == 0]
    assert {name for name, *_ in layers} >= {"qkv projection", "MLP fc1", "MLP fc2",
                                             "attention output projection"}
    for name, m, k, n, _count in layers:
        assert m == 256
        c = g.cycles(m, k, n, 64, 64)
        assert c.utilization >= 0.99, (name, c.utilization)
        scalesim = m * k * n / (64 * 64 * g.scalesim_ws_cycles(m, k, n, 64, 64))
        assert 0.56 < scalesim < 0.58, (name, scalesim)  # the issue quotes 57 %


# --------------------------------------------------------------------------
# RTL parameters and emission


def test_rtl_rejects_bad_parameters():
    from hdl.systolic.array import SystolicArray
    from hdl.systolic.pe import MACRef, SystolicPE

    for kw, word in [({"rows": 0}, "rows"), ({"cols": -1}, "cols"), ({"in_bits": 1}, "in_bits"),
                     ({"acc_bits": 15}, "acc_bits")]:
        with pytest.raises(ValueError, match=word):
            SystolicArray(**kw)
    with pytest.raises(TypeError, match="w_bits"):
        SystolicArray(w_bits=2.5)
    with pytest.raises(ValueError, match="acc_bits"):
        SystolicPE(acc_bits=8)
    with pytest.raises(ValueError, match="in_bits"):
        MACRef(in_bits=0)


def test_emits_the_pe_once(tmp_path):
    from hdl import registry

    files = registry.get("systolic_array").emit_verilog(tmp_path, {"ROWS": 16, "COLS": 16})
    text = {f.name: f.read_text() for f in files}
    modules = [mod for t in text.values() for mod in re.findall(r"^module (\w+)", t, re.M)]
    assert sorted(modules) == ["systolic_array", "systolic_array_grid", "systolic_array_pe"]
    assert sum(t.count("systolic_array_pe pe (") for t in text.values()) == 4  # generate branches
    assert "for (r = 0; r < 16;" in text["systolic_array_grid.v"]
    assert sum(len(t) for t in text.values()) < 200_000


# --------------------------------------------------------------------------
# Co-simulation

def _cycle_jobs(rows, cols):
    """Always-ready jobs whose cycle counts must equal the model."""
    return [
        {"m": 4 * rows + 3, "k": rows, "n": cols, "values": "random", "check_cycles": True},
        {"m": 2 * rows + 1, "k": 2 * rows + max(1, rows // 2), "n": 2 * cols + 1, "values": "random",
         "check_cycles": True},
        {"m": max(1, rows // 2), "k": 3 * rows, "n": cols, "values": "random", "check_cycles": True},
        {"m": rows + 2, "k": rows, "n": cols, "values": "min_min", "check_cycles": True},
        {"m": rows + 2, "k": 2 * rows, "n": cols, "values": "min_max", "check_cycles": True},
        {"m": 1, "k": 2 * rows, "n": 2 * cols, "values": "random", "check_cycles": True},
    ]


def _stress_jobs(rows, cols):
    """Random gaps on both inputs and back-pressure on the output."""
    return [
        {"m": 3 * rows + 5, "k": 2 * rows + 1, "n": 2 * cols, "values": "random",
         "idle": 0.2, "backpressure": 0.3},
        {"m": 2, "k": 3 * rows, "n": cols + 1, "values": "random", "idle": 0.3, "backpressure": 0.5},
        {"m": 2 * rows, "k": rows, "n": cols, "values": "min_min", "idle": 0.0, "backpressure": 0.6},
    ]


# Each size is one Verilator build (~10 s of C++ on an idle machine, much
# more on a busy one): three in the default set, the rest in the slow set.
SIZES = [
    pytest.param({"ROWS": 1, "COLS": 1}, id="1x1"),
    # Odd widths at the minimum accumulator (IN + W bits): min x min sums of
    # two rows (2 * 512 = 1024) wrap in 11 bits.
    pytest.param({"ROWS": 2, "COLS": 3, "IN_BITS": 6, "W_BITS": 5, "ACC_BITS": 11}, id="2x3-6b5b11b"),
    pytest.param({"ROWS": 4, "COLS": 4}, id="4x4", marks=pytest.mark.slow),
    pytest.param({"ROWS": 8, "COLS": 8}, id="8x8"),
    pytest.param({"ROWS": 16, "COLS": 16}, id="16x16", marks=pytest.mark.slow),
]


@pytest.mark.cosim
@pytest.mark.parametrize("params", SIZES)
def test_rtl_array_exact_and_cycle_exact(cosim, params):
    rows, cols = params["ROWS"], params["COLS"]
    res = cosim("systolic_array", params, testcase=["matmul_tiles", "stall_holds_everything", "reset_mid_tile"],
                args={"jobs": _cycle_jobs(rows, cols) + _stress_jobs(rows, cols)})
    assert res["tests"] == 3


@pytest.mark.cosim
def test_rtl_pe_register_model(cosim):
    cosim("systolic_pe", {}, args={"cycles": 4000})


@pytest.mark.slow
@pytest.mark.cosim
def test_rtl_mac_ref(cosim):
    cosim("systolic_mac_ref", {}, args={"cycles": 3000})


@pytest.mark.slow
@pytest.mark.cosim
def test_rtl_array_64x64(cosim):
    """The default 64x64 array: DiT-like tiles (M = 256, two K and two N tiles)
    cycle-exact, then gaps and back-pressure.

    The unit asks the runner to make only its top level public in Verilator
    (``sim={"public": "top"}``): with cocotb's default --public-flat-rw the
    4,096 PE instances made ~320 MB of C++; now the build and the three jobs
    take about 3 minutes on 2 cores. ``SIM=icarus`` also works (~10 min)."""
    jobs = [{"m": 256, "k": 128, "n": 128, "values": "random", "check_cycles": True},
            {"m": 64, "k": 64, "n": 64, "values": "min_min", "check_cycles": True},
            {"m": 100, "k": 70, "n": 65, "values": "random", "idle": 0.2, "backpressure": 0.3}]
    cosim("systolic_array", {}, testcase="matmul_tiles", args={"jobs": jobs})


@pytest.mark.slow
def test_64x64_emits_fast_small_and_lint_clean(tmp_path):
    import time

    from hdl import registry
    from sim.lint import lint

    start = time.process_time()
    files = registry.get("systolic_array").emit_verilog(tmp_path)
    cpu = time.process_time() - start
    size = sum(f.stat().st_size for f in files)
    assert size < 10_000_000, size
    assert lint(files, "systolic_array") == []
    print(f"64x64 emission: {cpu:.1f} s CPU in this process, {size / 1e6:.2f} MB")
