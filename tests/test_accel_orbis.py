"""ORBIS accelerator (docs/SPEC.md "ORBIS accelerator"): golden model against
golden.orbis, parameters, command format, lint, and co-simulation of a
one-block FC + RC slice through AXI4-Lite and AXI4-Stream."""

import numpy as np
import pytest

from golden import accel as g
from golden import orbis as gorb
from golden import orbis_accel as go

SMALL = {"ROWS": 4, "COLS": 4, "A_DEPTH": 64, "W_DEPTH": 128, "ACC_DEPTH": 64, "QUEUE_DEPTH": 8,
         "STREAM_BYTES": 4, "TOKENS": 16, "CHANNELS": 8, "NUM_DST": 4, "LAYERS": 2, "RC_STEPS": 1,
         "SCALE_FRAC": 8, "TOPK_BUFFER": 0}
CASES = ["slice_fc_rc", "backpressure_and_protocol", "bad_commands", "soft_reset_mid_traffic"]


@pytest.mark.cosim
def test_rtl_slice(cosim):
    """One block, one FC + one RC step; back-pressure, bad commands, soft reset: one build."""
    res = cosim("orbis_accelerator", SMALL, testcase=CASES)
    assert res["tests"] == len(CASES)


@pytest.mark.cosim
@pytest.mark.slow
def test_rtl_slice_two_beats_per_row(cosim):
    """The same slice with rows of two stream beats (8x8 array, 4-byte beats, C = 16: two N tiles)."""
    params = dict(SMALL, ROWS=8, COLS=8, CHANNELS=16, A_DEPTH=128, W_DEPTH=256, ACC_DEPTH=128)
    res = cosim("orbis_accelerator", params, testcase=CASES)
    assert res["tests"] == len(CASES)


def _cfg():
    return go.Config(gemm=g.Config(rows=4, cols=4, a_depth=64, w_depth=128, acc_depth=64, stream_bytes=4),
                     tokens=16, channels=8, num_dst=4, layers=2, rc_steps=1)


def _pairs(rng, n=16, d=4, k=6):
    x = rng.integers(-8, 8, size=(n, 8))
    return gorb.datm(x, np.ones(8) * 0.5, num_dst=d, k=k, seed=int(rng.integers(0, n))).pairs


def test_integer_reduce_is_golden_reduce_rounded_half_up():
    """The reduce unit's rule, floor((2Σx + n) / 2n), is golden.orbis.reduce's
    size-weighted mean rounded half up; restore is golden.orbis.restore."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        pairs = _pairs(rng)
        x = rng.integers(-128, 128, size=(16, 4))
        y = go.merge_rows(x, pairs)
        want, sizes = gorb.reduce(x, pairs)
        assert np.array_equal(y, np.floor(want + 0.5).astype(np.int64))
        assert y.min() >= -128 and y.max() <= 127
        assert np.array_equal(go.restore_rows(y, pairs, 16), gorb.restore(y, pairs))
    # Ties round up: a pair (-1, 0) merges to 0, (-2, -1) to -1.
    assert go.merge_rows(np.array([[-1], [0]]), np.array([[1, 0]])).tolist() == [[0]]
    assert go.merge_rows(np.array([[-2], [-1]]), np.array([[0, 1]])).tolist() == [[-1]]


def test_match_is_datm_on_the_qe_output_of_the_captured_features():
    cfg = _cfg()
    rng = np.random.default_rng(4)
    mach = go.Machine(cfg)
    acc = rng.integers(-2000, 2000, size=(16, 8))
    mach.core.mem["ACC"][:32] = g.layout_a(acc, 4).reshape(2, 16, 4).reshape(32, 4)   # N tiles of 16 rows
    vec = g.Vector(16, 8, 0, mult=1, shift=4, to_stream=True)
    res = mach.run([go.Step(first=True), go.Capture(vec), go.Match(1, 5, max_iter=6, eps=100, seed=2)])
    sdpa = g.vector_op(acc, vec)
    assert np.array_equal(mach.features(), sdpa)
    q, s = gorb.qe(sdpa, 8)
    want = gorb.datm(q, s, num_dst=4, k=5, eps=100 / 65536, max_iter=6, seed=2, fixed=True)
    assert np.array_equal(res.matches[0][1].pairs, want.pairs) and mach.valid[1]
    # The engine runs behind the array: the run lasts until the pairs are valid.
    assert res.counters["datm_busy"] == go.match_cycles(cfg, want.iterations, len(want.pairs))
    assert res.total_cycles == sum(res.cycles) + res.counters["exposed"] + 1


def test_ogm_steps_follow_golden_schedule():
    cfg = go.Config(gemm=_cfg().gemm, tokens=16, channels=8, num_dst=4, layers=2, rc_steps=3)
    mach = go.Machine(cfg)
    kinds = []
    for t in range(9):
        res = mach.run([go.Step(first=t == 0), go.Match(0, 2)])
        kinds.append("RC" if res.counters["dropped"] else "FC")
    assert kinds == gorb.ogm_schedule(9, 3)


def test_rtl_rejects_bad_parameters():
    from hdl.accel.orbis_accelerator import OrbisAccelerator

    for kw, name, exc in [({"tokens": 1}, "tokens", ValueError), ({"num_dst": 64}, "num_dst", ValueError),
                          ({"channels": 24}, "channels", ValueError), ({"layers": 33}, "layers", ValueError),
                          ({"rc_steps": 1.0}, "rc_steps", TypeError), ({"scale_frac": 0}, "scale_frac", ValueError),
                          ({"rows": 6}, "rows", ValueError)]:
        with pytest.raises(exc, match=name):
            OrbisAccelerator(**kw)
    top = OrbisAccelerator(rows=4, cols=4, stream_bytes=4, tokens=np.int64(16), channels=8, num_dst=4)
    assert top.max_pairs == 12 and top.feature_depth == 32 and type(top.tokens) is int and top.dtype == "int8"


def test_command_format_and_header():
    from hdl.accel.gemm_commands import COMMANDS as GEMM
    from hdl.accel.orbis_accelerator import OrbisAccelerator
    from hdl.common.regmap import c_header

    top = OrbisAccelerator(rows=4, cols=4, stream_bytes=4, tokens=16, channels=8, num_dst=4)
    header = c_header("orbis_accelerator", top.REGMAP, top.COMMANDS)
    for name in ("ORBIS_CMD_OP_MATCH 8u", "ORBIS_CMD_OP_STEP 9u", "ORBIS_ACCELERATOR_PAIR_SEL_OFFSET",
                 "ORBIS_ACCELERATOR_DATM_BUSY_OFFSET", "ORBIS_CMD_OP_GEMM 3u"):
        assert name in header, name
    # GEMM commands pass to the core word for word; the ORBIS bits sit where the core has none.
    assert top.COMMANDS.pack(opcode="VECTOR", m=3, n=8, shift=5, to_stream=1) == \
        GEMM.pack(opcode="VECTOR", m=3, n=8, shift=5, to_stream=1)
    w = top.COMMANDS.pack(opcode="MATCH", layer=5, m=7, n=9, mult=655, addr0=3)
    assert w[0] == 8 | (5 << 24) and w[1] == 7 | (9 << 16) and w[2] == 3
    assert top.COMMANDS.pack(opcode="LOAD", reduce=1, restore=1, capture=1)[0] == 1 | 7 << 13


def test_lint_clean(tmp_path):
    from hdl import registry
    from sim.lint import lint

    files = registry.get("orbis_accelerator").emit_verilog(tmp_path, SMALL)
    assert lint(files, "orbis_accelerator") == []


def test_digits_dit_through_the_golden_accelerator():
    """The bench's sampler hooks on the golden backend: r = 0 matches nothing and
    reduces nothing; with r = 4 every FC step matches every block (pairs =
    golden.orbis.datm on the QE output of the captured SDPA output), RC steps
    reuse them, the attention part costs fewer cycles at r = 8 and the sample
    stays close."""
    pytest.importorskip("torch")
    from sim.accel.orbis_dit import GoldenBackend, OrbisAccelHooks, bench_config
    from workloads.dit import sample
    from workloads.traces import calibrate, get_model

    model, _, _ = get_model()
    scales = calibrate(model, samples=2, steps=4)
    cfg = bench_config()
    runs = {}
    for r in (0, 4, 8):
        be = GoldenBackend(cfg)
        hooks = OrbisAccelHooks(model, scales, be, cfg, r)
        x = sample(model, [3], seed=0, steps=8, hooks=hooks)
        be.end_step()
        runs[r] = (x.numpy(), hooks, be)
    _, h0, b0 = runs[0]
    assert b0.counters["matches"] == 0 and h0.kinds == gorb.ogm_schedule(8, 3)
    x4, h4, b4 = runs[4]
    assert b4.counters["matches"] == 2 * model.cfg.depth
    for step, layer, feats, out in b4.matches:
        q, s = gorb.qe(feats, cfg.scale_frac)
        assert np.array_equal(gorb.datm(q, s, num_dst=cfg.num_dst, k=4, eps=655 / 65536, fixed=True).pairs,
                              out.pairs)
    assert all(np.array_equal(h4.pairs[(1, b)], h4.pairs[(0, b)]) for b in range(model.cfg.depth))
    assert b4.counters["exposed"] == 0
    assert runs[8][2].tag_cycles["attention"] < b0.tag_cycles["attention"]
    assert 0 < np.mean((x4 - runs[0][0]) ** 2) < 0.05
