"""Formal properties of the host-interface RTL (``hdl/common/axi.py``;
``docs/SPEC.md``, "Host interface").

``HARNESSES`` maps a name to ``(factory, depth, mode)``: ``factory()`` returns
an Elaboratable holding the design under test and its properties, ``Assume``
for what the AXI master (or stream source) promises, ``Assert`` for what the
RTL must do, ``Cover`` for traces that show the properties are not vacuous.
Free inputs are ``AnySeq``; reset is high in the initial state only. The
formal runner discovers ``hdl/**/*_formal.py``.

* ``axil_slave`` (prove): valid held and response stable until ready on B and
  R; a B only after both its AW and W, an R only after its AR, at most two
  writes and one read outstanding; SLVERR exactly for unknown addresses and
  writes to the read-only register; registers change only on an OKAY write
  to their own address (``rw``, ``w1c`` clears, ``wo`` strobes).
* ``axis_wires`` (prove): the unregistered adapters are a rename: payload,
  valid and ready pass unchanged both ways.
* ``axis_registered_handshake`` (prove): the registered adapters hold
  ``tvalid`` and the payload while stalled.
* ``axis_registered_order`` (bmc): through both registered adapters in a row
  every beat arrives once and in order (the source sends a count; the sink
  must see the same count), with at most four beats inside.
"""

from amaranth.hdl import Module, ResetSignal, Signal, Value
from amaranth.hdl import Assert, Assume, Cover
from amaranth.hdl._ast import AnySeq, Initial
from amaranth.lib import wiring

from .axi import OKAY, SLVERR, AXI4LiteRegisters, AXIStreamToStream, StreamToAXIStream
from .regmap import Field, Register, RegisterMap

__all__ = ["HARNESSES", "formal_regmap"]


def formal_regmap() -> RegisterMap:
    """One register of each access type in a 32-byte window (four holes)."""
    return RegisterMap("formal", [
        Register("r", 0x0, 8, "ro"),
        Register("w", 0x4, [Field("a", 0, 4, reset=3), Field("b", 8, 4)], "rw"),
        Register("c", 0x8, 4, "wo"),
        Register("s", 0xC, 2, "w1c"),
    ], addr_width=5)


def _past(m, value, name):
    """``value`` one cycle ago (its reset value in the first cycle)."""
    value = Value.cast(value)
    r = Signal(value.shape(), name=name)
    m.d.sync += r.eq(value)
    return r


def _reset_only_at_start(m):
    m.d.comb += Assume(ResetSignal() == Initial())


def _assume_held(m, valid, ready, payload, name):
    """The master's rule: once valid, hold valid and payload until ready."""
    pv = _past(m, valid, f"{name}_pv")
    pr = _past(m, ready, f"{name}_pr")
    pp = _past(m, payload, f"{name}_pp")
    with m.If(pv & ~pr & ~Initial()):
        m.d.comb += [Assume(valid), Assume(payload == pp)]


def _assert_held(m, valid, ready, payload, name):
    pv = _past(m, valid, f"{name}_pv")
    pr = _past(m, ready, f"{name}_pr")
    pp = _past(m, payload, f"{name}_pp")
    with m.If(pv & ~pr & ~Initial() & ~ResetSignal()):
        m.d.comb += [Assert(valid), Assert(payload == pp)]


class AXILiteSlaveHarness(wiring.Component):
    """The slave over :func:`formal_regmap` with a free master."""

    def __init__(self):
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        regmap = formal_regmap()
        m.submodules.dut = dut = AXI4LiteRegisters(regmap)
        bus = dut.s_axil
        _reset_only_at_start(m)
        rst = ResetSignal()
        for name in ("awaddr", "awprot", "awvalid", "wdata", "wstrb", "wvalid", "bready",
                     "araddr", "arprot", "arvalid", "rready"):
            port = getattr(bus, name)
            m.d.comb += port.eq(AnySeq(port.shape()))
        m.d.comb += [dut.r.eq(AnySeq(8)), dut.s_set.eq(AnySeq(2))]
        with m.If(rst):
            m.d.comb += [Assume(~bus.awvalid), Assume(~bus.wvalid), Assume(~bus.arvalid)]
        _assume_held(m, bus.awvalid, bus.awready, bus.awaddr, "aw")
        _assume_held(m, bus.wvalid, bus.wready, Value.cast(bus.wdata).as_unsigned() | (bus.wstrb << 32), "w")
        _assume_held(m, bus.arvalid, bus.arready, bus.araddr, "ar")
        _assert_held(m, bus.bvalid, bus.bready, bus.bresp, "b")
        _assert_held(m, bus.rvalid, bus.rready, Value.cast(bus.rdata) | (bus.rresp << 32), "r")

        def slverr_write(addr):
            word = addr[2:]
            return ~((word == 1) | (word == 2) | (word == 3))

        def slverr_read(addr):
            return addr[2:] > 3

        aw_hs = bus.awvalid & bus.awready
        w_hs = bus.wvalid & bus.wready
        b_hs = bus.bvalid & bus.bready
        ar_hs = bus.arvalid & bus.arready
        r_hs = bus.rvalid & bus.rready

        # The monitor's record: outstanding AWs (oldest first), Ws and ARs.
        aw_n = Signal(range(4))
        w_n = Signal(range(4))
        ar_n = Signal(range(3))
        aq0 = Signal(5)
        aq1 = Signal(5)
        ara = Signal(5)
        m.d.sync += [aw_n.eq(aw_n + aw_hs - b_hs), w_n.eq(w_n + w_hs - b_hs), ar_n.eq(ar_n + ar_hs - r_hs)]
        with m.If(b_hs):
            with m.If(aw_hs):
                with m.If(aw_n == 1):
                    m.d.sync += aq0.eq(bus.awaddr)
                with m.Else():
                    m.d.sync += [aq0.eq(aq1), aq1.eq(bus.awaddr)]
            with m.Else():
                m.d.sync += aq0.eq(aq1)
        with m.Elif(aw_hs):
            with m.If(aw_n == 0):
                m.d.sync += aq0.eq(bus.awaddr)
            with m.Else():
                m.d.sync += aq1.eq(bus.awaddr)
        with m.If(ar_hs):
            m.d.sync += ara.eq(bus.araddr)

        with m.If(~rst):
            m.d.comb += [
                # A response only after its address and data; bounded acceptance.
                Assert(aw_n <= 2), Assert(w_n <= 2), Assert(ar_n <= 1),
                Assert(~bus.bvalid | ((aw_n >= 1) & (w_n >= 1))),
                Assert(~bus.rvalid | (ar_n == 1)),
                # Inductive strengthening: the DUT's holding registers are the monitor's record.
                Assert(aw_n == (~bus.awready) + bus.bvalid),
                Assert(w_n == (~bus.wready) + bus.bvalid),
                Assert(ar_n == bus.rvalid),
            ]
            with m.If(~bus.awready):
                with m.If(bus.bvalid):
                    m.d.comb += Assert(Value.cast(dut._aw_word) == aq1[2:])
                    m.d.comb += Assert(dut._aw_lane == aq1[:2])
                with m.Else():
                    m.d.comb += Assert(Value.cast(dut._aw_word) == aq0[2:])
                    m.d.comb += Assert(dut._aw_lane == aq0[:2])
            with m.If(bus.bvalid):
                m.d.comb += Assert(bus.bresp == SLVERR * slverr_write(aq0))
            with m.If(bus.rvalid):
                m.d.comb += Assert(bus.rresp == SLVERR * slverr_read(ara))
                with m.If(slverr_read(ara) | (ara[2:] == 2)):
                    m.d.comb += Assert(bus.rdata == 0)

        # State changes only through an OKAY write to the register's own word.
        pb_valid = _past(m, bus.bvalid, "pbv")
        pb_ready = _past(m, bus.bready, "pbr")
        new_b = Signal()
        m.d.comb += new_b.eq(bus.bvalid & (~pb_valid | pb_ready))
        w_prev = _past(m, dut.w, "w_prev")
        s_prev = _past(m, dut.s, "s_prev")
        # The _past registers reset too: mask the cycle after a reset.
        rst_prev = Signal(init=1)
        m.d.sync += rst_prev.eq(0)
        with m.If(~rst & ~rst_prev & ~Initial()):
            with m.If(Value.cast(dut.w) != w_prev):
                m.d.comb += Assert(new_b & (aq0[2:] == 1) & (bus.bresp == OKAY))
            with m.If((s_prev & ~Value.cast(dut.s)).any()):
                m.d.comb += Assert(new_b & (aq0[2:] == 3) & (bus.bresp == OKAY))
            with m.If(dut.c_wstb):
                m.d.comb += Assert(new_b & (aq0[2:] == 2) & (bus.bresp == OKAY))

        m.d.comb += [
            Cover(bus.bvalid & (bus.bresp == SLVERR) & (aq0[2:] == 0)),
            Cover(bus.rvalid & (bus.rresp == OKAY) & (ara[2:] == 1) & (bus.rdata == 0x0302)),
            Cover(bus.bvalid & ~bus.awready & ~bus.wready),
        ]
        return m


def _axis_free_source(m, axis, name):
    m.d.comb += [axis.tvalid.eq(AnySeq(1)), axis.tdata.eq(AnySeq(len(axis.tdata))),
                 axis.tlast.eq(AnySeq(1))]
    with m.If(ResetSignal()):
        m.d.comb += Assume(~axis.tvalid)
    _assume_held(m, axis.tvalid, axis.tready, Value.cast(axis.tdata) | (axis.tlast << len(axis.tdata)), name)


class AXISWiresHarness(wiring.Component):
    """Both unregistered adapters, each with free inputs on both sides."""

    def __init__(self):
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.rx = rx = AXIStreamToStream(2)
        m.submodules.tx = tx = StreamToAXIStream(2)
        _reset_only_at_start(m)
        for port, width in ((rx.s_axis.tdata, 16), (rx.s_axis.tvalid, 1), (rx.s_axis.tlast, 1), (rx.o.ready, 1),
                            (tx.i.valid, 1), (tx.i.payload, 17), (tx.m_axis.tready, 1)):
            m.d.comb += port.eq(AnySeq(width))
        m.d.comb += [
            Assert(rx.o.valid == rx.s_axis.tvalid), Assert(rx.s_axis.tready == rx.o.ready),
            Assert(rx.o.payload.data == rx.s_axis.tdata), Assert(rx.o.payload.last == rx.s_axis.tlast),
            Assert(tx.m_axis.tvalid == tx.i.valid), Assert(tx.i.ready == tx.m_axis.tready),
            Assert(tx.m_axis.tdata == tx.i.payload.data), Assert(tx.m_axis.tlast == tx.i.payload.last),
        ]
        return m


class AXISRegisteredHarness(wiring.Component):
    """AXI4-Stream -> stream -> AXI4-Stream through both registered adapters.

    ``order``: the source sends ``tdata`` = its beat count (mod 256) and
    ``tlast`` = bit 0 of it; every output beat must carry the sink's count.
    Without it only the handshake rules are checked.
    """

    def __init__(self, *, order: bool):
        self._order = order
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.rx = rx = AXIStreamToStream(1, registered=True)
        m.submodules.tx = tx = StreamToAXIStream(1, registered=True)
        wiring.connect(m, rx.o, tx.i)
        _reset_only_at_start(m)
        rst = ResetSignal()
        src = rx.s_axis
        snk = tx.m_axis
        _axis_free_source(m, src, "src")
        m.d.comb += snk.tready.eq(AnySeq(1))
        _assert_held(m, snk.tvalid, snk.tready, Value.cast(snk.tdata) | (snk.tlast << 8), "snk")
        _assert_held(m, rx.o.valid, rx.o.ready, Value.cast(rx.o.payload), "mid")
        m.d.comb += Cover(snk.tvalid & snk.tready & snk.tlast)
        if not self._order:
            return m
        n_in = Signal(8)
        n_mid = Signal(8)
        n_out = Signal(8)
        m.d.sync += [
            n_in.eq(n_in + (src.tvalid & src.tready)),
            n_mid.eq(n_mid + (rx.o.valid & rx.o.ready)),
            n_out.eq(n_out + (snk.tvalid & snk.tready)),
        ]
        with m.If(src.tvalid):
            m.d.comb += [Assume(src.tdata == n_in), Assume(src.tlast == n_in[0])]
        with m.If(~rst):
            inside_rx = Signal(8)
            inside_tx = Signal(8)
            m.d.comb += [inside_rx.eq(n_in - n_mid), inside_tx.eq(n_mid - n_out)]
            m.d.comb += [Assert(inside_rx <= 2), Assert(inside_tx <= 2),
                         Assert(inside_rx == rx.o.valid + ~src.tready),
                         Assert(inside_tx == snk.tvalid + ~rx.o.ready)]
            with m.If(snk.tvalid):
                m.d.comb += [Assert(snk.tdata == n_out), Assert(snk.tlast == n_out[0])]
            with m.If(rx.o.valid):
                m.d.comb += Assert(rx.o.payload.data == n_mid)
        m.d.comb += Cover(n_out == 6)
        return m


HARNESSES = {
    "axil_slave": (AXILiteSlaveHarness, 8, "prove"),
    "axis_wires": (AXISWiresHarness, 2, "prove"),
    "axis_registered_handshake": (lambda: AXISRegisteredHarness(order=False), 4, "prove"),
    "axis_registered_order": (lambda: AXISRegisteredHarness(order=True), 24, "bmc"),
}
