"""The verification infrastructure itself: the scoreboard catches lost,
duplicated and reordered beats, the port layouts exported from a component's
signature pack and unpack like Amaranth lays them out, the harness fails on
unexpected beats and protocol violations, and the runner turns a failing
cocotb test into a pytest failure that names the seed and how to replay it."""

import numpy as np
import pytest
from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hdl import registry
from sim import ports, runner
from sim.stream import ANY, Scoreboard


def test_scoreboard_accepts_exact_stream():
    Scoreboard("s", [1, 2, 3]).check([1, 2, 3])
    Scoreboard("a", [np.array([1, 2])]).check([np.array([1, 2])])
    Scoreboard("any", [ANY, 2]).check([7, 2])


@pytest.mark.parametrize("received, word", [
    ([1, 3], "mismatch"),           # lost in the middle
    ([1, 2], "missing"),            # lost at the end
    ([1, 2, 2, 3], "mismatch"),     # duplicated
    ([1, 3, 2], "mismatch"),        # reordered
    ([1, 2, 3, 4], "extra"),        # spurious
])
def test_scoreboard_rejects_damaged_stream(received, word):
    with pytest.raises(AssertionError, match=word):
        Scoreboard("s", [1, 2, 3]).check(received)


LANE = data.StructLayout({"nib": 4, "ext": 1, "index": range(37)})
LAYOUT = data.StructLayout({"data": data.ArrayLayout(signed(5), 4), "lanes": data.ArrayLayout(LANE, 2),
                            "index": 6, "last": 1})


class _Toy(wiring.Component):
    def __init__(self):
        super().__init__({"i": In(stream.Signature(LAYOUT)), "o": Out(stream.Signature(signed(9))),
                          "side": In(wiring.Signature({"en": Out(1), "addr": Out(3)})), "flag": Out(2)})


def test_exported_layouts_pack_like_amaranth(tmp_path):
    """Packing through the exported JSON equals Amaranth's own ``Const`` of the layout."""
    path = ports.write(_Toy(), tmp_path / "toy.ports.json", unit="toy")
    p = ports.load(path)
    assert p["i"].dir == "in" and p["o"].dir == "out" and p["flag"].dir == "out"
    assert p["side"]["en"].dir == "in" and p["side"]["addr"].name == "side__addr"
    pk = p["i"].payload
    assert pk.width == LAYOUT.size
    value = {"data": [-16, 15, 3, -1], "lanes": [{"nib": 9, "ext": 1, "index": 36}, {"nib": 2, "ext": 0, "index": 5}],
             "index": 37, "last": 1}
    want = Const.cast(LAYOUT.const(value)).value
    assert pk.pack(value) == pk.pack(**value) == want
    out = pk.unpack(want)
    assert out["data"].tolist() == [-16, 15, 3, -1] and out["index"] == 37 and out["last"] == 1
    assert out["lanes"][0] == {"nib": 9, "ext": 1, "index": 36}
    assert pk["lanes"].elem["index"].width == 6
    assert p["o"].payload.unpack(p["o"].payload.pack(-256)) == -256
    with pytest.raises(ValueError):
        pk.pack(index=64)            # does not fit 6 bits
    with pytest.raises(KeyError):
        pk.pack(nonsense=1)
    with pytest.raises(ValueError):
        pk.pack(data=[1, 2, 3])      # an array of 4


def _selftest(simulator, case, **kw):
    return runner.run("ccu_compress", {"LANES": 2}, testbench="sim.tb_selftest", testcase=case,
                      sim=simulator, name=f"selftest-{case}", **kw)


@pytest.mark.cosim
def test_runner_reports_pass_and_failure_with_seed(simulator):
    ok = _selftest(simulator, "passes", seed=1234)
    again = _selftest(simulator, "passes", seed=1234)
    other = _selftest(simulator, "passes", seed=1235)
    # cocotb derives each test's seed from the run's seed: reproducible, seed-dependent.
    assert ok["tests"] == 1 and ok["result"]["seed"] == again["result"]["seed"] != other["result"]["seed"]
    with pytest.raises(runner.CosimFailure) as err:
        _selftest(simulator, "fails", seed=99)
    text = str(err.value)
    assert "SEED=99 make test" in text and "deliberate failure" in text and "sim.log" in text


@pytest.mark.cosim
def test_harness_fails_on_unexpected_beats(simulator):
    with pytest.raises(runner.CosimFailure, match="unexpected extra beats"):
        _selftest(simulator, "unexpected_beat", seed=5)


@registry.unit("test_stream_producer")
class _Producer(wiring.Component):
    """A counter on an output stream that keeps (``fault`` = 0) or breaks the
    stream rules: 1 drops valid every other cycle, 2 counts on while stalled.
    (The fault is an input so that one build serves every case.)"""

    def __init__(self):
        super().__init__({"o": Out(stream.Signature(8)), "fault": In(2)})

    def elaborate(self, platform):
        m = Module()
        count = Signal(8)
        toggle = Signal()
        m.d.sync += toggle.eq(~toggle)
        m.d.comb += [self.o.payload.eq(count), self.o.valid.eq(Mux(self.fault == 1, toggle, 1))]
        with m.If((self.fault == 2) | (self.o.valid & self.o.ready)):
            m.d.sync += count.eq(count + 1)
        return m


@pytest.mark.cosim
@pytest.mark.parametrize("fault, message", [
    (0, None),
    (1, r"test_stream_producer\.o: protocol violation: valid dropped at cycle \d+ before the beat offered"),
    (2, r"test_stream_producer\.o: protocol violation: payload changed at cycle \d+ while stalled"),
])
def test_protocol_checker_catches_broken_producers(simulator, fault, message):
    def go():
        return runner.run("test_stream_producer", {}, testbench="sim.tb_selftest", args={"fault": fault},
                          testcase="protocol_violation", sim=simulator, name=f"selftest-producer-{fault}", seed=3)

    if message is None:
        go()
    else:
        with pytest.raises(runner.CosimFailure, match=message):
            go()


def test_default_seed_is_stable_and_overridable(monkeypatch, capsys):
    monkeypatch.delenv("SEED", raising=False)
    assert runner.default_seed("a::b") == runner.default_seed("a::b")
    assert runner.default_seed("a::b") != runner.default_seed("a::c")
    monkeypatch.setenv("SEED", "77")
    assert runner.default_seed("anything") == 77
    monkeypatch.setenv("SEED", "random")
    drawn = {runner.default_seed("a::b") for _ in range(4)}
    assert len(drawn) > 1
    assert "SEED=" in capsys.readouterr().out
