"""Multiply / shift-add / accumulate pieces shared by the adder-tree PEs.

Ditto's PE (4 × (5-bit × INT8) with a ×16 shifter on lanes 0 and 2) and the
A8W8 ITC baseline PE (4 × (INT8 × INT8)) differ only in operand width and the
shifters: both are :class:`AdderTreePE`, and the Ditto compute unit builds
``PES`` copies of the same datapath under one shared control
(docs/SPEC.md "PE (compute unit)").

Elaboration-time builders (functions adding logic to a ``Module``), like
:mod:`hdl.common.arith`. The adder tree is :func:`hdl.common.arith.adder_tree`.

Timing of a row pipeline built with :func:`row_control`: a beat accepted at
cycle c passes ``stages`` register stages, then updates the partial sum; the
beat that closes a row (``last``) leaves its result in the partial-sum
register, presented as the output from cycle c + stages + 1 until taken.
The whole pipeline stalls only while a result waits to be taken, so it
accepts a beat every cycle when results are taken as they come (II = 1).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Module, Mux, Signal, Value, signed
from amaranth.lib import data, wiring

from .arith import adder_tree
from .stream import register

__all__ = ["lane_terms", "accumulate", "RowControl", "row_control", "PSUM_BITS", "WEIGHT_BITS",
           "PE_LANES", "SHIFT", "pe_layout", "AdderTreePE"]

PSUM_BITS = 32
WEIGHT_BITS = 8
PE_LANES = 4
SHIFT = 4  # a hi part weighs 2^4: d = 16·hi + lo


def pe_layout(operand_bits: int) -> data.StructLayout:
    """Input beat of an adder-tree PE: four operands, their weights, the hi
    flags of lanes 0 and 2, and the clear/last row control."""
    return data.StructLayout({
        "a": data.ArrayLayout(signed(operand_bits), PE_LANES),
        "w": data.ArrayLayout(signed(WEIGHT_BITS), PE_LANES),
        "hi": 2,
        "clear": 1,
        "last": 1,
    })


def lane_terms(operands, weights, shift_flags=None, shift: int = 4) -> list[Value]:
    """Signed products ``operands[n] * weights[n]``; where ``shift_flags[n]``
    is given (a 1-bit value) the product is shifted left by ``shift`` when it
    is set (Ditto's hi-part lanes). Operands and weights must be signed values.
    """
    flags = list(shift_flags) if shift_flags is not None else [None] * len(operands)
    if len(flags) != len(operands) or len(weights) != len(operands):
        raise ValueError("operands, weights and shift_flags must have one entry per lane")
    terms = []
    for a, w, flag in zip(operands, weights, flags):
        p = Value.cast(a) * Value.cast(w)
        terms.append(p if flag is None else Mux(flag, p << shift, p))
    return terms


def accumulate(m: Module, terms, *, ce, en, clear, width: int = PSUM_BITS, name: str = "psum") -> Signal:
    """Partial-sum register: ``psum := (clear ? 0 : psum) + Σ terms`` (adder
    tree) on cycles where ``ce & en``; two's complement, wraps at ``width``."""
    total = adder_tree(list(terms))
    psum = Signal(signed(width), name=name)
    with m.If(ce & en):
        m.d.sync += psum.eq(Mux(clear, 0, psum) + total)
    return psum


@dataclass
class RowControl:
    """Control signals of a row pipeline (see :func:`row_control`)."""

    ce: Signal        # clock enable of every data register of the pipeline
    acc_en: Value     # the beat in the last stage updates the partial sum
    acc_clear: Value  # ... starting a new sum
    done: Signal      # the partial-sum register holds a finished row's result


def row_control(m: Module, *, i_valid, i_ready, o_valid, o_ready, clear, last,
                stages: int, name: str = "row") -> RowControl:
    """Valid/clear/last pipeline of ``stages`` register stages in front of a
    partial-sum register, with stream flow control (accepting when the
    result slot is free or being taken)."""
    ce = Signal(name=f"{name}_ce")
    done = Signal(name=f"{name}_done")
    m.d.comb += [ce.eq(~done | o_ready), i_ready.eq(ce), o_valid.eq(done)]
    valid, clr, lst = Value.cast(i_valid), Value.cast(clear), Value.cast(last)
    for s in range(stages):
        valid = register(m, valid, ce=ce, name=f"{name}_s{s + 1}_valid")
        clr = register(m, clr, ce=ce, name=f"{name}_s{s + 1}_clear")
        lst = register(m, lst, ce=ce, name=f"{name}_s{s + 1}_last")
    with m.If(ce):
        m.d.sync += done.eq(valid & lst)
    return RowControl(ce=ce, acc_en=valid, acc_clear=clr, done=done)


class AdderTreePE(wiring.Component):
    """Four-lane adder-tree PE: registered products, adder tree, partial sum.

    The common structure of :class:`hdl.ditto.ditto_pe.DittoPE` and
    :class:`hdl.ditto.itc_pe.ITCPE`; a subclass declares its ``i``/``o`` ports
    as class annotations (``i: In(stream.Signature(pe_layout(bits)))``,
    ``o: Out(stream.Signature(signed(PSUM_BITS)))``) and sets ``SHIFTERS``:
    whether lanes 0 and 2 shift their product left by :data:`SHIFT` when their
    ``hi`` flag is set.

    Timing: products are registered, the adder tree and the partial-sum add
    take the next cycle; a row's result is on ``o`` ``latency`` = 2 cycles
    after its last beat was accepted; ``ii`` = 1 while ``o`` is taken as it
    comes; the whole PE stalls while a result waits.
    """

    SHIFTERS = False

    def __init__(self):
        # No parameters: the ports are the subclass's annotations.
        super().__init__()

    @property
    def latency(self):
        """Cycles from a row's accepted ``last`` beat to its sum on ``o``."""
        return 2

    @property
    def ii(self):
        """Cycles between accepted beats while ``o`` is taken as it comes."""
        return 1

    def elaborate(self, platform):
        m = Module()
        p = self.i.payload
        ctl = row_control(m, i_valid=self.i.valid, i_ready=self.i.ready, o_valid=self.o.valid,
                          o_ready=self.o.ready, clear=p.clear, last=p.last, stages=self.latency - 1,
                          name="pe")
        flags = [p.hi[0], None, p.hi[1], None] if self.SHIFTERS else None
        terms = lane_terms([p.a[n] for n in range(PE_LANES)], [p.w[n] for n in range(PE_LANES)],
                           flags, SHIFT)
        terms = [register(m, t, ce=ctl.ce, name=f"prod{n}") for n, t in enumerate(terms)]
        psum = accumulate(m, terms, ce=ctl.ce, en=ctl.acc_en, clear=ctl.acc_clear, name="psum")
        m.d.comb += self.o.payload.eq(psum)
        return m
