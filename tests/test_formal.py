"""The formal runner (sim/formal.py) and a bounded subset of the properties:
the stream helpers, the DTSM reference model and the Ditto encoder's queue at
small depths, and runs that must fail, so that the runner cannot pass a
property it did not check. ``make formal`` runs every harness at full depth."""

from pathlib import Path

import pytest
from amaranth.hdl import Assert, Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hdl.common.stream import SkidBuffer
from hdl.common.stream_formal import SequenceHarness
from sim import formal


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("formal")


@pytest.fixture(scope="module")
def harnesses():
    return {h.name: h for h in formal.discover()}


def test_discovers_every_property_module(harnesses):
    for name in ("stream_skid_buffer", "stream_pipeline_3_fair", "dtsm_reference", "ditto_encoder_queue"):
        assert name in harnesses
    for h in harnesses.values():
        assert h.mode in formal.MODES and h.depth >= 1


@pytest.mark.parametrize("name, depth, expected", [
    ("stream_skid_buffer", 8, "passed"),
    ("stream_skid_buffer_fair", 12, "proved"),
    ("stream_pipeline_3_fair", 16, "proved"),
    ("dtsm_reference", 5, "passed"),
    ("ditto_encoder_queue", 5, "passed"),
])
def test_harness_holds(harnesses, out, name, depth, expected):
    r = formal.run(harnesses[name], depth=depth, out=out)
    assert r.status == expected, r.detail


class _Dropper(wiring.Component):
    """A broken buffer: always ready, keeps one beat and overwrites it."""

    def __init__(self, width):
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(1)
        with m.If(self.i.valid):
            m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(1)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m


def test_lost_beat_fails_with_a_trace(out):
    h = formal.Harness("dropper", lambda: SequenceHarness(_Dropper, width=3, capacity=1), 8, "bmc", __name__)
    r = formal.run(h, out=out)
    assert r.status == "failed", r.detail
    assert r.trace and r.trace.endswith(".vcd")
    assert Path(r.trace).is_file()


class _WrongSkidProperty(wiring.Component):
    """A false claim about a correct SkidBuffer: it never holds two beats."""

    i_valid: In(1)
    o_ready: In(1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = SkidBuffer(2)
        m.d.comb += [dut.i.valid.eq(self.i_valid), dut.o.ready.eq(self.o_ready)]
        m.d.comb += Assert(dut.i.ready)
        return m


@pytest.mark.parametrize("mode", formal.MODES)
def test_wrong_property_fails(out, mode):
    h = formal.Harness(f"wrong_{mode}", _WrongSkidProperty, 6, mode, __name__)
    r = formal.run(h, out=out)
    assert r.status == "failed" and not r.ok, r.detail
    assert r.trace is not None and "trace" in r.detail


def test_induction_that_does_not_close_is_not_a_proof(harnesses, out):
    # Unbounded back-pressure hides a stalled beat's successors from the ports.
    r = formal.run(harnesses["stream_pipeline_3"], mode="prove", depth=6, out=out)
    assert r.status == "unknown" and not r.ok, r.detail
