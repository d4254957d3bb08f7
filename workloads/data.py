"""sklearn's bundled 8x8 digits (no download) and the SVC that judges samples.

Images are scaled from sklearn's 0..16 grey levels to [-1, 1]. The SVC
(RBF kernel, gamma = 0.001, C = 10, trained on all 1,797 real digits) labels
generated samples; *agreement* is the share whose SVC label equals the class
the sample was generated for.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["digits", "to_pixels", "svc", "svc_agreement", "svc_predict"]


@lru_cache(maxsize=1)
def digits() -> tuple[np.ndarray, np.ndarray]:
    """(images (1797, 1, 8, 8) float32 in [-1, 1], labels (1797,) int64)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0) * 2.0 - 1.0
    return x[:, None], d.target.astype(np.int64)


def to_pixels(x) -> np.ndarray:
    """[-1, 1] images (any leading shape, 8x8 last) to sklearn's 0..16 scale, (n, 64)."""
    x = np.asarray(x, dtype=np.float64)
    return ((np.clip(x, -1, 1) + 1.0) * 8.0).reshape(-1, 64)


@lru_cache(maxsize=1)
def svc():
    from sklearn.svm import SVC

    x, y = digits()
    return SVC(gamma=0.001, C=10.0).fit(to_pixels(x), y)


def svc_predict(samples) -> np.ndarray:
    return svc().predict(to_pixels(samples)).astype(np.int64)


def svc_agreement(samples, labels) -> float:
    """Share of ``samples`` that the SVC labels as ``labels``."""
    return float(np.mean(svc_predict(samples) == np.asarray(labels)))
