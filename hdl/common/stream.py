"""Stream plumbing shared by every unit: pipeline flow control and a skid buffer.

All streams are ``amaranth.lib.stream`` valid/ready interfaces: a payload moves
on a cycle where both ``valid`` and ``ready`` are high.
"""

from amaranth.hdl import Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["stall_pipeline", "register", "delay", "SkidBuffer"]


def register(m: Module, value, *, ce=None, name: str, shape=None) -> Signal:
    """``value`` through a register that loads when ``ce`` is high (always when
    ``ce`` is None); the pipeline stage of every tree and datapath here."""
    value = Value.cast(value)
    r = Signal(shape if shape is not None else value.shape(), name=name)
    if ce is None:
        m.d.sync += r.eq(value)
    else:
        with m.If(ce):
            m.d.sync += r.eq(value)
    return r


def delay(m: Module, value, cycles: int, *, ce=None, name: str) -> Value:
    """``value`` through ``cycles`` registers (``{name}_d1`` ...), each loading
    when ``ce`` is high (always when ``ce`` is None): the side band that travels
    beside a pipelined datapath. ``cycles`` = 0 returns ``value`` itself."""
    out = Value.cast(value)
    for j in range(cycles):
        out = register(m, out, ce=ce, name=f"{name}_d{j + 1}")
    return out


def stall_pipeline(m: Module, i_valid, i_ready, o_valid, o_ready, depth: int, *, name="pipe"):
    """Flow control for a ``depth``-stage pipeline that stalls as a whole.

    Returns the clock enable ``ce`` that every data register of the pipeline
    must honour (``with m.If(ce): m.d.sync += ...``). The pipeline advances
    whenever its output slot is empty or being taken, so it accepts one beat per
    cycle while the sink keeps up (II = 1) and loses nothing under
    back-pressure. ``depth`` = 0 is a combinational pass-through.

    ``i_ready`` depends combinationally on ``o_ready``; put a :class:`SkidBuffer`
    at the output where that path must be cut.
    """
    ce = Signal(name=f"{name}_ce")
    if depth == 0:
        m.d.comb += [ce.eq(o_ready), i_ready.eq(o_ready), o_valid.eq(i_valid)]
        return ce
    valid = Signal(depth, name=f"{name}_valid")
    m.d.comb += [
        ce.eq(~valid[-1] | o_ready),
        i_ready.eq(ce),
        o_valid.eq(valid[-1]),
    ]
    with m.If(ce):
        m.d.sync += valid.eq((valid << 1) | i_valid)
    return ce


class SkidBuffer(wiring.Component):
    """Two-entry stream buffer that registers ``ready`` (cuts the combinational
    ready path between producer and consumer) at full throughput.

    Parameters
    ----------
    shape : shape-like
        Payload shape.

    Members
    -------
    i : ``In(stream.Signature(shape))``
    o : ``Out(stream.Signature(shape))``

    Latency 1 cycle, II = 1.
    """

    def __init__(self, shape):
        self._shape = shape
        super().__init__({
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
        })

    def elaborate(self, platform):
        m = Module()
        main = Signal.like(self.o.payload, name="main")
        skid = Signal.like(self.o.payload, name="skid")
        main_valid = Signal()
        skid_valid = Signal()
        m.d.comb += [
            self.i.ready.eq(~skid_valid),
            self.o.valid.eq(main_valid),
            self.o.payload.eq(main),
        ]
        take = self.o.valid & self.o.ready
        accept = self.i.valid & self.i.ready
        with m.If(take | ~main_valid):
            # The output slot frees up: refill it from the skid slot first.
            with m.If(skid_valid):
                m.d.sync += [main.eq(skid), main_valid.eq(1), skid_valid.eq(0)]
                with m.If(accept):
                    m.d.sync += [skid.eq(self.i.payload), skid_valid.eq(1)]
            with m.Else():
                m.d.sync += [main.eq(self.i.payload), main_valid.eq(accept)]
        with m.Elif(accept):
            m.d.sync += [skid.eq(self.i.payload), skid_valid.eq(1)]
        return m
