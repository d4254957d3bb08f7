"""pytest configuration shared by all tests."""

import pytest

from sim import runner


def pytest_configure(config):
    runner.setup_toolchain()


@pytest.fixture(scope="session")
def simulator():
    """The simulator co-simulation tests use (``SIM``, default Verilator)."""
    sim = runner.simulator()
    if sim not in runner.available_simulators():
        pytest.skip(f"simulator {sim} is not installed")
    return sim


@pytest.fixture
def cosim(simulator, request):
    """``cosim(unit, params, **kw)``: run the unit's cocotb testbench; raise on failure."""

    def run(unit, params=None, **kw):
        kw.setdefault("sim", simulator)
        kw.setdefault("name", request.node.nodeid)
        return runner.run(unit, params, **kw)

    return run
