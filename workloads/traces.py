"""DDIM activation traces of the digits DiT (``make traces``) and their loader.

``python -m workloads.traces --out build/traces`` loads the committed FP16
checkpoint (or trains the model once when it is missing or ``--retrain`` is
given), then:

1. calibrates the per-layer INT8 scales: max|x| / 127 of every linear layer's
   input over a DDIM run of ``--calib-samples`` images (seed ``--seed + 1``);
2. samples ``--samples`` images (labels 0..9 in turn, seed ``--seed``) with
   DDIM-``--steps`` and traces, for the first ``--trace-samples`` of them,
   every step and block:

   ========== ======= ================================================
   name       dtype   what
   ========== ======= ================================================
   attn_in    float16 attention sub-block input after adaLN modulation
   mlp_in     float16 MLP sub-block input after adaLN modulation
   sdpa       float16 SDPA output, heads concatenated
   qkv_in     int8    INT8 input of the qkv linear (= attn_in quantized)
   proj_in    int8    INT8 input of the attention output projection
   fc1_in     int8    INT8 input of the first MLP linear
   fc2_in     int8    INT8 input of the second MLP linear (after GELU)
   ========== ======= ================================================

   each an ``<name>.npy`` of shape (steps, blocks, samples, tokens, channels);
3. writes ``manifest.json`` (shapes, dtypes, SHA-256 of every file, seeds,
   labels, timesteps, INT8 scales, model hash and the checkpoint's command),
   ``samples.npy``, ``samples.png`` (a grid, one row per class) and the SVC
   agreement of the samples.

:func:`load_traces` reads them back with NumPy only and checks them against
the manifest.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["CHECKPOINT", "load_traces", "Traces", "write_traces", "scales_to_json", "scales_from_json", "main",
           "TRACE_AXES", "FORMAT"]

FORMAT = 1
#: The committed checkpoint (see ``workloads/checkpoints/README.md``).
CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "dit_digits.npz"
TRACE_AXES = ["step", "block", "sample", "token", "channel"]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def scales_to_json(scales: dict) -> dict:
    """{(block, linear): s} -> {linear: [s per block]}."""
    names = sorted({n for _, n in scales})
    depth = 1 + max(b for b, _ in scales)
    return {n: [float(scales[(b, n)]) for b in range(depth)] for n in names}


def scales_from_json(obj: dict) -> dict:
    return {(b, n): float(v) for n, vals in obj.items() for b, v in enumerate(vals)}


class Traces:
    """A trace directory: ``manifest`` (dict) and ``arrays`` (name -> array)."""

    def __init__(self, root: Path, manifest: dict, arrays: dict):
        self.root = root
        self.manifest = manifest
        self.arrays = arrays

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    @property
    def scales(self) -> dict:
        return scales_from_json(self.manifest["int8"]["scales"])


def load_traces(root="build/traces", *, verify: bool = True, mmap: bool = True) -> Traces:
    """Read a trace directory; with ``verify`` check every file's shape, dtype
    and SHA-256 against the manifest (``ValueError`` naming the file if not)."""
    root = Path(root)
    manifest = json.loads((root / "manifest.json").read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{root}/manifest.json: format {manifest.get('format')!r}, expected {FORMAT}")
    arrays = {}
    for name, info in manifest["files"].items():
        path = root / info["file"]
        if verify and _sha256(path) != info["sha256"]:
            raise ValueError(f"{path}: SHA-256 differs from the manifest")
        arr = np.load(path, mmap_mode="r" if mmap else None)
        if list(arr.shape) != info["shape"] or str(arr.dtype) != info["dtype"]:
            raise ValueError(f"{path}: {arr.dtype}{list(arr.shape)} but the manifest says "
                             f"{info['dtype']}{info['shape']}")
        arrays[name] = arr
    return Traces(root, manifest, arrays)


def _grid_png(samples: np.ndarray, labels: np.ndarray, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = sorted(set(int(v) for v in labels))
    per = max(int(np.sum(labels == c)) for c in classes)
    cols = min(per, 10)
    fig, axes = plt.subplots(len(classes), cols, figsize=(cols * 0.6, len(classes) * 0.6 + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for r, c in enumerate(classes):
        idx = np.flatnonzero(labels == c)[:cols]
        for j, i in enumerate(idx):
            axes[r, j].imshow(samples[i, 0], cmap="gray_r", vmin=-1, vmax=1)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def get_model(checkpoint=None, *, retrain: bool = False, train_steps: int = 1600, threads: int = 1, log=print):
    """(model, info, checkpoint path): load ``checkpoint`` (default: the
    committed one) or, if it is missing or ``retrain``, train and save it."""
    from .dit import load_checkpoint

    path = Path(checkpoint) if checkpoint else CHECKPOINT
    if retrain or not path.exists():
        from .train import main as train_main

        if not retrain and checkpoint is None:
            path = Path("build/traces/dit_digits.npz")
        log(f"training the DiT ({train_steps} steps) into {path}")
        train_main(["--out", str(path), "--steps", str(train_steps), "--threads", str(threads)])
    model, info = load_checkpoint(path)
    return model, info, path


def labels_for(n: int, classes: int = 10) -> np.ndarray:
    return np.arange(n, dtype=np.int64) % classes


def calibrate(model, *, samples: int = 20, seed: int = 1, steps: int = 50) -> dict:
    """Per-layer INT8 scales (max|x| / 127) from a plain DDIM run."""
    from .dit import sample
    from .hooks import Recorder

    rec = Recorder(model.cfg.depth)
    sample(model, labels_for(samples, model.cfg.num_classes), seed=seed, steps=steps, hooks=rec)
    return rec.scales_from_maxabs()


def write_traces(model, out, *, samples: int = 100, trace_samples: int = 10, steps: int = 50, seed: int = 0,
                 calib_samples: int = 20, model_info: dict | None = None, checkpoint=None, log=print) -> dict:
    """Calibrate, sample, trace and write ``out``; returns the manifest."""
    from .data import svc_agreement, svc_predict
    from .dit import ddim_timesteps, model_hash, sample
    from .hooks import Recorder

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    scales = calibrate(model, samples=calib_samples, seed=seed + 1, steps=steps)
    labels = labels_for(samples, model.cfg.num_classes)
    rec = Recorder(model.cfg.depth, trace=True, trace_samples=trace_samples, scales=scales)
    x = sample(model, labels, seed=seed, steps=steps, hooks=rec).numpy()
    files = {}
    for name, arr in rec.arrays().items():
        path = out / f"{name}.npy"
        np.save(path, np.ascontiguousarray(arr))
        files[name] = {"file": path.name, "shape": list(arr.shape), "dtype": str(arr.dtype), "axes": TRACE_AXES,
                       "sha256": _sha256(path)}
    np.save(out / "samples.npy", x.astype(np.float32))
    files["samples"] = {"file": "samples.npy", "shape": list(x.shape), "dtype": "float32",
                        "axes": ["sample", "channel", "row", "column"], "sha256": _sha256(out / "samples.npy")}
    agreement = svc_agreement(x, labels)
    predicted = svc_predict(x)
    _grid_png(x, labels, out / "samples.png",
              f"DiT digits, DDIM-{steps}, seed {seed}: SVC agreement {agreement:.1%}")
    cfg = model.cfg
    manifest = {
        "format": FORMAT,
        "model": {"config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__}, "hash": model_hash(model),
                  "checkpoint": str(checkpoint) if checkpoint else None,
                  "command": (model_info or {}).get("meta", {}).get("command"),
                  "final_loss": (model_info or {}).get("meta", {}).get("final_loss")},
        "sampler": {"kind": "DDIM", "eta": 0.0, "steps": steps, "timesteps": ddim_timesteps(cfg.timesteps, steps).tolist(),
                    "seed": seed, "noise": "torch.Generator().manual_seed(seed), randn (samples, 1, 8, 8)",
                    "labels": labels.tolist(), "samples": samples, "traced_samples": trace_samples},
        "int8": {"rule": "q = clamp(round_half_even(x / s), -128, 127), s = max|x| / 127 per layer over the "
                         "calibration run", "calibration": {"seed": seed + 1, "samples": calib_samples},
                 "scales": scales_to_json(scales)},
        "svc": {"agreement": agreement, "predicted": predicted.tolist()},
        "files": files,
        "png": "samples.png",
        "seconds": round(time.time() - t0, 1),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    log(f"wrote {len(files)} arrays, samples.png and manifest.json into {out} "
        f"(SVC agreement {agreement:.1%}, {manifest['seconds']} s)")
    return manifest


def main(argv=None) -> int:
    from ._torch import set_threads

    p = argparse.ArgumentParser(prog="python -m workloads.traces", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="build/traces")
    p.add_argument("--checkpoint", default=None, help="FP16 checkpoint (default: the committed one)")
    p.add_argument("--retrain", action="store_true", help="train even if the checkpoint exists (writes it)")
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--trace-samples", type=int, default=10)
    p.add_argument("--calib-samples", type=int, default=20)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="PyTorch threads (default 1: on busy cores two OpenMP threads that wait "
                        "for each other ran several times slower; use 2 on idle cores to train faster)")
    a = p.parse_args(argv)
    set_threads(a.threads)
    model, info, path = get_model(a.checkpoint, retrain=a.retrain, threads=a.threads)
    write_traces(model, a.out, samples=a.samples, trace_samples=a.trace_samples, steps=a.steps, seed=a.seed,
                 calib_samples=a.calib_samples, model_info=info, checkpoint=path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
