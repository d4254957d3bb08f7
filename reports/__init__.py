"""Benchmarks and reports run by ``make bench`` (``ditgen bench``).

Every module in this package that defines ``run(out_dir: Path, quick: bool)``
is a benchmark named after the module; it writes its results into
``out_dir`` (``build/reports/``) and prints a summary. Benchmarks measure;
they assert nothing about speed.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

__all__ = ["benches"]


def benches() -> dict[str, Callable]:
    out = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "run"):
            out[info.name] = module.run
    return dict(sorted(out.items()))
