"""`make evidence` end to end (quick mode) on a tiny random DiT: every section
runs, writes its files, and the exactness claims hold (slow: ~1 minute)."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")


@pytest.mark.slow
def test_evidence_quick_on_a_tiny_model(tmp_path, monkeypatch):
    from workloads.dit import DiT, DiTConfig, save_checkpoint

    torch.manual_seed(0)
    m = DiT(DiTConfig(depth=2, hidden=32, heads=2))
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0.0, 0.1)
    save_checkpoint(m, tmp_path / "tiny.npz", meta={"command": "test"})
    monkeypatch.setenv("DITGEN_DIT_CHECKPOINT", str(tmp_path / "tiny.npz"))
    from reports import evidence

    res = evidence.run(tmp_path / "out", quick=True)
    for name in ("evidence.md", "evidence.json", "evidence.png", "evidence_samples.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert res["radit"]["identical_when_disabled"] is True
    assert res["ditto"]["identical"] is True and res["ditto"]["max_abs_diff"] == 0.0
    assert json.loads((tmp_path / "out" / "evidence.json").read_text())["info"]["images"] == 20
    text = (tmp_path / "out" / "evidence.md").read_text()
    for heading in ("## RADiT", "## Ditto", "## ORBIS", "44.48 %", "70.2", "0.953"):
        assert heading in text
    runs = res["orbis"]["runs"]
    assert {r["method"] for r in runs} == {"datm", "datm-float", "bsm"}
    assert all(0 < r["sdpa_saved"] < 1 for r in runs)
    assert np.isfinite(res["radit"]["corr_pearson"])
