"""pytest configuration shared by all tests."""

import os

import pytest

from sim import runner


def pytest_configure(config):
    runner.setup_toolchain()


def pytest_report_header(config):
    seed = os.environ.get("SEED", "").strip()
    if seed.lower() == "random":
        return ("SEED=random: every co-simulation draws a fresh seed; a failure prints it and the "
                "command that replays it")
    if seed:
        return f"SEED={seed}: every co-simulation uses this seed"
    return "co-simulation seeds derive from the test names (deterministic); SEED=random for fresh ones"


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on")


@pytest.fixture(scope="session")
def simulator():
    """The simulator co-simulation tests use (``SIM``, default Verilator).

    Without it co-simulation is skipped, except under ``CI=true``: there a
    missing simulator fails the run, so CI cannot go green on golden tests alone.
    """
    sim = runner.simulator()
    if sim not in runner.available_simulators():
        message = f"simulator {sim} is not installed"
        if _ci():
            pytest.fail(f"{message} (CI=true: co-simulation is required)", pytrace=False)
        pytest.skip(message)
    return sim


@pytest.fixture
def cosim(simulator, request):
    """``cosim(unit, params, **kw)``: run the unit's cocotb testbench; raise on failure."""

    def run(unit, params=None, **kw):
        kw.setdefault("sim", simulator)
        kw.setdefault("name", request.node.nodeid)
        return runner.run(unit, params, **kw)

    return run
