"""PyTorch import with a clear error when it is missing."""

from __future__ import annotations

import importlib

MISSING = ("workloads needs PyTorch (torch==2.13.0, CPU build) and scikit-learn; "
           "install the development extras: `.venv/bin/pip install -e '.[dev]'` (or `make setup`)")


def require_torch():
    """The ``torch`` module, or ``ModuleNotFoundError`` saying how to install it."""
    try:
        return importlib.import_module("torch")
    except ModuleNotFoundError as exc:  # pragma: no cover - depends on the environment
        raise ModuleNotFoundError(MISSING) from exc


def set_threads(n: int = 2) -> None:
    """Limit PyTorch to ``n`` CPU threads (few threads: oversubscribed OpenMP threads wait for each other)."""
    torch = require_torch()
    torch.set_num_threads(int(n))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once in this process
        pass
