"""The digits DiT workload on a tiny configuration: training, tracing
and the manifest round trip, deterministic sampling, and the accelerator hooks
(each with its technique disabled equals the plain sampler bit for bit; Ditto
enabled equals the plain INT8 path bit for bit)."""

import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from workloads import hooks as H  # noqa: E402
from workloads.dit import DiT, DiTConfig, Hooks, ddim_timesteps, load_checkpoint, model_hash, sample, \
    save_checkpoint  # noqa: E402
from workloads.traces import calibrate, load_traces, write_traces  # noqa: E402
from workloads.train import train  # noqa: E402
from golden import ditto as golden_ditto  # noqa: E402
from golden import radit as golden_radit  # noqa: E402



TINY = DiTConfig(depth=2, hidden=32, heads=2, mlp_ratio=4)
LABELS = [0, 3, 7, 9]
STEPS = 8


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model():
    """A tiny DiT with every weight random (adaLN-Zero's zeros would hide bugs in the gated paths)."""
    torch.manual_seed(1234)
    m = DiT(TINY)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0.0, 0.2)
    return m.eval()


@pytest.fixture(scope="module")
def scales(model):
    return calibrate(model, samples=4, seed=5, steps=STEPS)


def run(model, hooks=None, seed=0, labels=LABELS):
    return sample(model, labels, seed=seed, steps=STEPS, hooks=hooks)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="heads"):
        DiTConfig(hidden=30, heads=4)
    with pytest.raises(ValueError, match="patch"):
        DiTConfig(patch=3)
    with pytest.raises(ValueError, match="depth"):
        DiTConfig(depth=0)


def test_ddim_timesteps():
    ts = ddim_timesteps(1000, 50)
    assert ts[0] == 980 and ts[-1] == 0 and len(ts) == 50 and np.all(np.diff(ts) == -20)
    with pytest.raises(ValueError, match="steps"):
        ddim_timesteps(1000, 0)


def test_patchify_round_trip(model):
    x = torch.arange(2 * 64, dtype=torch.float32).reshape(2, 1, 8, 8)
    tok = model.patchify(x)
    assert tok.shape == (2, 16, 4)
    assert tok[0, 0].tolist() == [0, 1, 8, 9]  # one 2x2 patch per token
    assert torch.equal(model.unpatchify(tok), x)


def test_sampling_is_deterministic_for_a_seed(model):
    a, b, c = run(model, seed=3), run(model, seed=3), run(model, seed=4)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.shape == (len(LABELS), 1, 8, 8) and float(a.abs().max()) <= 1.0


def test_plain_hooks_and_recorder_do_not_change_the_sampler(model, scales):
    plain = run(model)
    assert torch.equal(run(model, Hooks()), plain)
    rec = H.Recorder(TINY.depth, trace=True, trace_samples=2, scales=scales)
    assert torch.equal(run(model, rec), plain)
    arrays = rec.arrays()
    assert arrays["attn_in"].shape == (STEPS, 2, 2, 16, 32) and arrays["attn_in"].dtype == np.float16
    assert arrays["fc2_in"].shape == (STEPS, 2, 2, 16, 128) and arrays["fc2_in"].dtype == np.int8
    # qkv's INT8 input is the quantized attention input (FP32 before the FP16 trace rounding).
    q = np.clip(np.round(arrays["attn_in"].astype(np.float32) / np.float32(scales[(1, "qkv")])), -128, 127)
    assert np.mean(q[:, 1] == arrays["qkv_in"][:, 1]) > 0.99


def test_tiny_training_and_trace_round_trip(tmp_path):
    torch.manual_seed(0)
    m, history = train(TINY, steps=24, batch=16, log_every=8, log=lambda s: None)
    assert len(history) == 3 and all(np.isfinite(v) for _, v in history)
    ckpt = tmp_path / "tiny.npz"
    digest = save_checkpoint(m, ckpt, meta={"command": "test"})
    loaded, info = load_checkpoint(ckpt)
    assert info["meta"]["command"] == "test" and info["config"]["depth"] == 2
    assert model_hash(loaded) == digest
    man = write_traces(loaded, tmp_path / "traces", samples=6, trace_samples=3, steps=4, seed=2,
                       calib_samples=2, model_info=info, checkpoint=ckpt, log=lambda s: None)
    tr = load_traces(tmp_path / "traces")
    assert tr.manifest == json.loads((tmp_path / "traces" / "manifest.json").read_text())
    assert man["model"]["hash"] == digest and man["sampler"]["seed"] == 2
    assert man["sampler"]["timesteps"] == [750, 500, 250, 0]
    assert (tmp_path / "traces" / "samples.png").stat().st_size > 0
    assert 0.0 <= man["svc"]["agreement"] <= 1.0
    for name in ("attn_in", "mlp_in", "sdpa"):
        assert tr[name].shape == (4, 2, 3, 16, 32) and tr[name].dtype == np.float16
    for name, ch in (("qkv_in", 32), ("proj_in", 32), ("fc1_in", 32), ("fc2_in", 128)):
        assert tr[name].shape == (4, 2, 3, 16, ch) and tr[name].dtype == np.int8
    assert set(tr.scales) == {(b, n) for b in range(2) for n in ("qkv", "proj", "fc1", "fc2")}
    # The traced samples are the first images of the same deterministic run.
    again = sample(loaded, man["sampler"]["labels"], seed=2, steps=4).numpy()
    assert np.array_equal(again, tr["samples"])
    # A corrupted file is caught.
    path = tmp_path / "traces" / "sdpa.npy"
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="sdpa.npy"):
        load_traces(tmp_path / "traces")


# --------------------------------------------------------------------------- RADiT

def test_radit_disabled_equals_plain_and_measures_delta(model):
    hk = H.RaditHooks(STEPS, schedule=None)
    assert torch.equal(run(model, hk), run(model))
    rec = hk.records()
    assert rec["delta"].shape == (STEPS, 2 * TINY.depth, len(LABELS))
    assert np.all(rec["delta"][0] == -1) and np.all(rec["delta"][1:] >= 0)
    assert not rec["skip"].any()


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_radit_decisions_are_the_golden_dtsm(model, schedule):
    gradit = golden_radit
    hk = H.RaditHooks(STEPS, schedule=schedule)
    run(model, hk)
    rec = hk.records()
    table = gradit.alpha_table(STEPS, schedule)
    alphas = np.array([table[STEPS - i] for i in range(1, STEPS)], dtype=np.int64)
    n = 2 * TINY.depth
    deltas = rec["delta"][1:].reshape(STEPS - 1, -1)
    _, skip = gradit.dtsm(deltas, alphas)
    assert np.array_equal(skip.reshape(STEPS - 1, n, -1), rec["skip"][1:])


def test_radit_reuses_the_previous_output(model):
    """A threshold above every Δ skips every sub-block after step 0: each reuses step 0's output,
    which is what a model whose sub-blocks are frozen at step 0 computes."""
    hk = H.RaditHooks(STEPS, schedule="fixed", fixed_threshold=1 << 30)
    got = run(model, hk)
    assert hk.records()["skip"][1:].all()

    class Frozen(Hooks):
        def __init__(self):
            self.cache = {}

        def attention(self, block, h, compute):
            return self.cache.setdefault(("a", block), compute(h))

        def mlp(self, block, h, compute):
            return self.cache.setdefault(("m", block), compute(h))

    assert torch.equal(got, run(model, Frozen()))
    assert not torch.equal(got, run(model))


# --------------------------------------------------------------------------- Ditto

def test_int8_path_is_close_to_float(model, scales):
    a, b = run(model), run(model, H.Int8Hooks(model, scales))
    assert not torch.equal(a, b)
    assert float(torch.mean((a - b) ** 2)) < 0.05


@pytest.mark.parametrize("kw", [{}, {"defo": False}, {"enabled": False}])
def test_ditto_is_bit_identical_to_plain_int8(model, scales, kw):
    plain = run(model, H.Int8Hooks(model, scales))
    hk = H.DittoHooks(model, scales, **kw)
    assert torch.equal(run(model, hk), plain)
    st = hk.stats
    assert len(st) == STEPS and len(st[0]) == 4 * TINY.depth
    s0, s1 = st[0][(0, "fc2")], st[1][(0, "fc2")]
    assert np.all(s0["mode"] == 0)
    assert np.all(s1["mode"] == (0 if kw.get("enabled") is False else 1))
    assert np.all(s0["counts_act"].sum(axis=1) == 16 * 128)
    assert np.all(s1["counts_temporal"].sum(axis=1) == 16 * 128)
    assert np.all(s0["cycles_itc"] == 16 * 32 * 2)  # 16 rows x 128/4 beats x ceil(32 / 16 PEs)
    if not kw:
        decided = st[1][(1, "qkv")]
        later = st[STEPS - 1][(1, "qkv")]["mode"]
        want = (np.minimum(decided["cycles_temporal"], 0xFFFF) < np.minimum(st[0][(1, "qkv")]["cycles_act"], 0xFFFF))
        assert np.array_equal(later, want.astype(np.int64))


def test_ditto_statistics_are_those_of_consecutive_int8_inputs(model, scales):
    """Class counts and packed cycles come from the differences of consecutive steps' INT8 inputs."""
    gd = golden_ditto

    class Capture(H.Int8Hooks):
        seen = []

        def accumulate(self, block, name, xq):
            if (block, name) == (1, "fc1"):
                self.seen.append(xq.numpy().astype(np.int64))
            return super().accumulate(block, name, xq)

    run(model, Capture(model, scales))
    hk = H.DittoHooks(model, scales)
    run(model, hk)
    xs = Capture.seen
    for s in (1, 4, STEPS - 1):
        st = hk.stats[s][(1, "fc1")]
        d = xs[s] - xs[s - 1]
        for i in range(len(LABELS)):
            want = np.bincount(np.where(d[i] == 0, 0, np.where((d[i] >= -8) & (d[i] <= 7), 1, 2)).ravel(),
                               minlength=3)
            assert np.array_equal(st["counts_temporal"][i], want)
            assert st["cycles_temporal"][i] == gd.pack_cycles(gd.classify(d[i])).sum() * 8  # 128 outputs / 16 PEs
        assert np.array_equal(st["counts_act"].sum(axis=1), np.full(len(LABELS), 16 * 32))


# --------------------------------------------------------------------------- ORBIS

def test_orbis_rc_step_is_merge_sdpa_copy_back():
    """An RC step's SDPA: q, k, v rows of each src merged into its dst by the mean (sizes 1), attention
    over the kept tokens, and every src's output a copy of its dst's (independent of golden.orbis)."""
    rng = np.random.default_rng(7)
    b, h, n, d = 2, 2, 16, 8
    q, k, v = (torch.from_numpy(rng.standard_normal((b, h, n, d))).float() for _ in range(3))
    pairs = [np.array([[3, 5], [7, 5], [0, 12]]), np.array([[15, 1], [2, 4], [9, 10]])]
    hk = H.OrbisHooks(3, "bsm")
    hk.begin_step(1, 0)
    hk.current[0] = pairs
    got = hk.sdpa(0, q, k, v)
    for i in range(b):
        src, dst = pairs[i][:, 0], pairs[i][:, 1]
        keep = np.setdiff1d(np.arange(n), src)
        merged = []
        for x in (q, k, v):
            x = x[i].double().clone()
            for t in np.unique(dst):
                group = [t] + [s_ for s_, d_ in zip(src, dst) if d_ == t]
                x[:, t] = x[:, group].mean(dim=1)
            merged.append(x[:, keep].float())
        o = torch.nn.functional.scaled_dot_product_attention(*merged)
        want = torch.empty(h, n, d)
        want[:, keep] = o
        want[:, src] = want[:, dst]
        assert torch.allclose(got[i], want, atol=1e-5), i

@pytest.mark.parametrize("method", ["datm", "datm-float", "bsm"])
def test_orbis_disabled_equals_plain(model, method):
    plain = run(model)
    assert torch.equal(run(model, H.OrbisHooks(0, method)), plain)
    # Matching on every step but never reducing (no RC step) is the plain sampler too.
    hk = H.OrbisHooks(4, method, rc_steps=0)
    assert torch.equal(run(model, hk), plain)
    assert len(hk.pairs) == STEPS * TINY.depth


def test_orbis_reduces_on_rc_steps_only(model):
    seen = []

    hk = H.OrbisHooks(4, "datm", rc_steps=3)
    orig = Hooks.sdpa

    def spy_sdpa(self, block, q, k, v):
        seen.append((self.kinds[-1], q.shape[2]))
        return orig(self, block, q, k, v)

    Hooks.sdpa = spy_sdpa
    try:
        got = run(model, hk)
    finally:
        Hooks.sdpa = orig
    assert hk.kinds == ["FC", "RC", "RC", "RC", "FC", "RC", "RC", "RC"]
    assert {n for kind, n in seen if kind == "FC"} == {16}
    assert {n for kind, n in seen if kind == "RC"} == {12}
    for pairs in hk.pairs.values():
        assert len(pairs) == len(LABELS) and all(p.shape == (4, 2) for p in pairs)
    plain = run(model)
    assert not torch.equal(got, plain)
    assert hk.sdpa_fraction(16) == pytest.approx((2 * 256 + 6 * 144) / (8 * 256))


def test_workloads_import_without_torch():
    """The package and the trace loader import without torch; the model says how to install it."""
    code = ("import sys; sys.modules['torch'] = None\n"
            "import workloads, workloads.traces\n"
            "try:\n    import workloads.dit\nexcept ModuleNotFoundError as e:\n    print('ERR', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "ERR" in out and "torch==2.13.0" in out
