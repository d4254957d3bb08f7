"""What a cocotb testbench knows about its run: unit parameters, extra
arguments and the seed, all handed over by :func:`sim.runner.run`."""

from __future__ import annotations

import json
import os
import random

import numpy as np

__all__ = ["params", "args", "seed", "rngs", "report"]


def params() -> dict:
    """The unit's full parameter set (upper-case names)."""
    return json.loads(os.environ.get("DITGEN_PARAMS", "{}"))


def args() -> dict:
    """Testbench arguments chosen by the pytest side."""
    return json.loads(os.environ.get("DITGEN_ARGS", "{}"))


def seed() -> int:
    import cocotb

    return int(cocotb.RANDOM_SEED)


def rngs(salt: int = 0) -> tuple[random.Random, np.random.Generator]:
    """A Python and a NumPy generator derived from the run's seed."""
    s = seed() + salt
    return random.Random(s), np.random.default_rng(s)


def report(**values) -> None:
    """Merge ``values`` into the run's ``result.json`` (read back by the runner)."""
    out = os.environ.get("DITGEN_OUT")
    if not out:
        return
    path = os.path.join(out, "result.json")
    current = {}
    if os.path.exists(path):
        with open(path) as f:
            current = json.load(f)
    current.update(values)
    with open(path, "w") as f:
        json.dump(current, f, indent=1, default=float)
