"""Ditto Defo: golden decision and table, the whole-run driver, and the Defo
unit RTL against them (including 16-bit saturation)."""

import numpy as np
import pytest

from golden.ditto import CYCLE_MAX, DefoTable, defo, matmul, run_network, trajectory



def test_golden_defo_decision_and_saturation():
    assert defo(100, 99) is True and defo(100, 100) is False and defo(99, 100) is False
    assert defo(CYCLE_MAX + 5, CYCLE_MAX) is False        # both saturate: equal, keep activations
    assert defo(CYCLE_MAX + 5, CYCLE_MAX - 1) is True
    assert defo(10, CYCLE_MAX + 1000) is False
    assert defo(np.array([5, 5, 1 << 20]), np.array([4, 6, 1 << 19])).tolist() == [True, False, False]


def test_golden_table_follows_decision():
    t = DefoTable()
    t.record(3, 0, 1000)
    t.record(3, 1, 400)
    t.record(4, 0, 200)
    t.record(4, 1, 70000)
    assert [t.execution(3, s) for s in range(3)] == [0, 1, 1]
    assert [t.execution(4, s) for s in range(3)] == [0, 1, 0]
    assert t.diff[4] == CYCLE_MAX
    t.record(3, 0, 5)  # a new run starts the entry over
    assert (t.act[3], t.diff[3], t.decision[3]) == (5, 0, 0)


@pytest.mark.parametrize("use_defo", [True, False])
def test_golden_whole_run_equals_plain_matmuls(use_defo):
    """T = 8 timesteps of a 3-layer network: every layer output at every step
    equals the plain INT8 matmul of that step, whichever execution type Defo picks."""
    rng = np.random.default_rng(5)
    x = trajectory(rng, 8, (8, 32))
    ws = [rng.integers(-128, 128, size=s) for s in ((32, 48), (48, 48), (48, 16))]
    res = run_network(x, ws, shifts=[9, 10, 10], use_defo=use_defo)
    for t in range(8):
        for layer in range(3):
            assert np.array_equal(res["outputs"][t][layer], res["reference"][t][layer]), (t, layer)
    assert res["modes"][0] == ["act"] * 3 and res["modes"][1] == ["temporal"] * 3
    table = res["table"]
    for layer in range(3):
        want = "temporal" if table.decision[layer] or not use_defo else "act"
        assert all(res["modes"][t][layer] == want for t in range(2, 8))
        assert table.decision[layer] == defo(res["cycles"][0][layer], res["cycles"][1][layer])
    assert np.array_equal(res["outputs"][0][0], matmul(x[0], ws[0]))


def test_golden_whole_run_defo_picks_activations_for_noisy_layer():
    """A layer whose inputs change completely between steps runs on activations."""
    rng = np.random.default_rng(6)
    x = rng.integers(-3, 4, size=(6, 8, 32))   # small activations, unrelated steps
    res = run_network(x, [rng.integers(-128, 128, size=(32, 8))])
    assert res["cycles"][1][0] >= res["cycles"][0][0]
    assert [m[0] for m in res["modes"]] == ["act", "temporal"] + ["act"] * 4
    assert all(np.array_equal(o[0], r[0]) for o, r in zip(res["outputs"], res["reference"]))


@pytest.mark.cosim
def test_rtl_table_random_with_saturation(cosim):
    """512 entries (layers 0 and 511 included): runs of RECORD steps 0/1/later and
    queries with gaps and back-pressure; one record after > 65,535 ticks."""
    cosim("defo_unit", {}, args={"commands": 600, "layers": 8, "idle": 0.3, "backpressure": 0.4,
                                 "saturate": 1})


@pytest.mark.slow
@pytest.mark.cosim
def test_rtl_table_long_saturating(cosim):
    """More commands and layers, four saturated records."""
    cosim("defo_unit", {}, args={"commands": 3000, "layers": 40, "idle": 0.2, "backpressure": 0.3,
                                 "saturate": 4})


def test_rtl_rejects_bad_parameters():
    from hdl.ditto.defo_unit import DefoUnit

    with pytest.raises(ValueError, match="entries"):
        DefoUnit(entries=0)
