"""What a cocotb testbench knows about its run: unit parameters, extra
arguments and the seed, all handed over by :func:`sim.runner.run`."""

from __future__ import annotations

import json
import os
import random

import numpy as np

__all__ = ["params", "args", "seed", "rngs", "report", "ports", "unit"]


def params() -> dict:
    """The unit's full parameter set (upper-case names)."""
    return json.loads(os.environ.get("DITGEN_PARAMS", "{}"))


def unit() -> str:
    """The unit under test (its registry name)."""
    return os.environ.get("DITGEN_UNIT", "dut")


def args() -> dict:
    """Testbench arguments chosen by the pytest side."""
    return json.loads(os.environ.get("DITGEN_ARGS", "{}"))


_PORTS = None


def ports() -> dict:
    """The DUT's members, ``{name: Stream | Port | Interface}`` (:mod:`sim.ports`),
    read from the layouts the build exported from the component's signature."""
    global _PORTS
    if _PORTS is None:
        from sim import ports as _ports

        path = os.environ.get("DITGEN_PORTS")
        if not path:
            raise RuntimeError("DITGEN_PORTS is not set: run the testbench through sim.runner.run")
        _PORTS = _ports.load(path)
    return _PORTS


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
