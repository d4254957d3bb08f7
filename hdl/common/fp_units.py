"""Streaming FP units: ``LANES`` independent lanes of one FP operation per beat,
registered once (docs/SPEC.md "FP16"; the arithmetic is :mod:`hdl.common.fp`).

Each unit is a stream in (``i``), a stream out (``o``), one register stage
between them and the shared whole-pipeline stall: latency 1 cycle, II = 1,
any back-pressure on ``o`` holds the result without losing or repeating a
beat. Lanes exist so that a testbench (or a vector unit) moves many values per
beat; every lane is the same combinational function of its own inputs.
"""

from amaranth.hdl import Module, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..registry import unit
from .fp import fp16_mul, fp16_to_fp32, fp16_to_int8, fp32_add, fp32_to_fp16, int32_to_fp16
from .params import check_int
from .stream import register, stall_pipeline

__all__ = ["FP16Mul", "FP32Add", "FP16ToINT8", "INT32ToFP16", "FP32ToFP16", "FP16ToFP32", "MAX_LANES"]

MAX_LANES = 256


def _pair(width):
    """Operands ``a`` and ``b`` of ``width`` bits, ``lanes`` of each."""
    return lambda lanes: data.StructLayout({"a": data.ArrayLayout(width, lanes), "b": data.ArrayLayout(width, lanes)})


def _lanes(shape):
    """One operand of ``shape`` per lane."""
    return lambda lanes: data.ArrayLayout(shape, lanes)


def _scaled(lanes):
    """binary16 values and the one binary16 scale they share."""
    return data.StructLayout({"data": data.ArrayLayout(16, lanes), "scale": 16})


class _LaneUnit(wiring.Component):
    """``LANES`` copies of ``_lane`` between a registered stream pair.

    A subclass names its input layout (``IN``, a function of ``lanes``), its
    output lane shape (``OUT``) and the lane function (``_lane``).

    Parameters
    ----------
    lanes : int
        Values per beat (default 1, 1 ... 256).

    Members
    -------
    i : ``In(stream.Signature(IN(lanes)))``
    o : ``Out(stream.Signature(ArrayLayout(OUT, lanes)))``
        Lane ``n`` is the operation on lane ``n`` of ``i``, one cycle later.

    Latency 1 cycle, II = 1.
    """

    IN = None
    OUT = None

    def __init__(self, *, lanes=1):
        self._lanes = lanes = check_int("lanes", lanes, maximum=MAX_LANES)
        super().__init__({
            "i": In(stream.Signature(type(self).IN(lanes))),
            "o": Out(stream.Signature(data.ArrayLayout(self.OUT, lanes))),
        })

    @property
    def lanes(self):
        return self._lanes

    @property
    def latency(self):
        """Cycles from an accepted input beat to its output beat."""
        return 1

    def _lane(self, m, n):
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        ce = stall_pipeline(m, self.i.valid, self.i.ready, self.o.valid, self.o.ready, self.latency,
                            name="fp")
        for n in range(self._lanes):
            result = self._lane(m, n)
            m.d.comb += self.o.payload[n].eq(register(m, result, ce=ce, name=f"q{n}"))
        return m


@unit("fp16_mul", golden="golden.fp16.fp16_mul", testbench="sim.common.tb_fp_units")
class FP16Mul(_LaneUnit):
    """Exact binary16 x binary16 -> binary32 multiplier, ``LANES`` per beat
    (``lanes``: default 1, 1 ... 256; latency 1, II = 1, see :class:`_LaneUnit`).

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"a": ArrayLayout(16, lanes), "b": ArrayLayout(16, lanes)})))``
        binary16 operand patterns, lane ``n`` of ``a`` times lane ``n`` of ``b``.
    o : ``Out(stream.Signature(ArrayLayout(32, lanes)))``
        binary32 product patterns: exact (no rounding), NaN canonical
        (``0x7FC00000``), ``inf * 0`` NaN.

    Implements docs/SPEC.md "FP16" (:func:`hdl.common.fp.fp16_mul`).
    """

    IN, OUT = _pair(16), 32

    def _lane(self, m, n):
        return fp16_mul(m, self.i.payload.a[n], self.i.payload.b[n], name=f"mul{n}")


@unit("fp32_add", golden="golden.fp16.fp32_add", testbench="sim.common.tb_fp_units")
class FP32Add(_LaneUnit):
    """binary32 adder with round to nearest, ties to even, ``LANES`` per beat
    (``lanes``: default 1, 1 ... 256; latency 1, II = 1, see :class:`_LaneUnit`).

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"a": ArrayLayout(32, lanes), "b": ArrayLayout(32, lanes)})))``
        binary32 operand patterns.
    o : ``Out(stream.Signature(ArrayLayout(32, lanes)))``
        ``a + b`` rounded to nearest even; subnormals exact; exact cancellation
        +0; overflow to infinity; NaN canonical, ``inf - inf`` NaN.

    Implements docs/SPEC.md "FP16" (:func:`hdl.common.fp.fp32_add`).
    """

    IN, OUT = _pair(32), 32

    def _lane(self, m, n):
        return fp32_add(m, self.i.payload.a[n], self.i.payload.b[n], name=f"add{n}")


@unit("fp16_to_int8", golden="golden.fp16.fp16_to_int8", testbench="sim.common.tb_fp_units")
class FP16ToINT8(_LaneUnit):
    """FP16 -> INT8 quantizer ``q = clamp(RNE(x * scale), -128, 127)``, ``LANES`` per beat
    (``lanes``: default 1, 1 ... 256; latency 1, II = 1, see :class:`_LaneUnit`).

    ``scale`` is a binary16 value carried in the beat (one per beat, shared by
    its lanes): a per-tensor scale stays on the bus, a per-row one changes
    with it. ``x * scale`` is exact in binary32, so the only rounding is to the
    integer.

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"data": ArrayLayout(16, lanes), "scale": 16})))``
        binary16 values and the binary16 scale.
    o : ``Out(stream.Signature(ArrayLayout(signed(8), lanes)))``
        INT8 codes: ties to even, saturating (+inf 127, -inf -128), NaN 0.

    Implements docs/SPEC.md "FP16" (:func:`hdl.common.fp.fp16_to_int8`).
    """

    IN, OUT = _scaled, signed(8)

    def _lane(self, m, n):
        return fp16_to_int8(m, self.i.payload.data[n], self.i.payload.scale, name=f"q8_{n}")


@unit("int32_to_fp16", golden="golden.fp16.int32_to_fp16", testbench="sim.common.tb_fp_units")
class INT32ToFP16(_LaneUnit):
    """INT32 -> binary16 conversion, round to nearest even, ``LANES`` per beat
    (``lanes``: default 1, 1 ... 256; latency 1, II = 1, see :class:`_LaneUnit`).

    Members
    -------
    i : ``In(stream.Signature(ArrayLayout(signed(32), lanes)))``
        Two's-complement integers.
    o : ``Out(stream.Signature(ArrayLayout(16, lanes)))``
        binary16 patterns; |x| >= 65520 gives infinity of x's sign; 0 gives +0.

    Implements docs/SPEC.md "FP16" (:func:`hdl.common.fp.int32_to_fp16`).
    """

    IN, OUT = _lanes(signed(32)), 16

    def _lane(self, m, n):
        return int32_to_fp16(m, self.i.payload[n], name=f"i2h{n}")


@unit("fp32_to_fp16", golden="golden.fp16.fp32_to_fp16", testbench="sim.common.tb_fp_units")
class FP32ToFP16(_LaneUnit):
    """binary32 -> binary16 conversion, round to nearest even, ``LANES`` per beat
    (``lanes``: default 1, 1 ... 256; latency 1, II = 1, see :class:`_LaneUnit`).

    Members
    -------
    i : ``In(stream.Signature(ArrayLayout(32, lanes)))``
        binary32 patterns.
    o : ``Out(stream.Signature(ArrayLayout(16, lanes)))``
        binary16 patterns: overflow (|x| >= 65520) to infinity, binary16
        subnormals exact, NaN canonical (``0x7E00``).

    Implements docs/SPEC.md "FP16" (:func:`hdl.common.fp.fp32_to_fp16`).
    """

    IN, OUT = _lanes(32), 16

    def _lane(self, m, n):
        return fp32_to_fp16(m, self.i.payload[n], name=f"f2h{n}")


@unit("fp16_to_fp32", golden="golden.fp16.fp16_to_fp32", testbench="sim.common.tb_fp_units")
class FP16ToFP32(_LaneUnit):
    """binary16 -> binary32 widening (exact), ``LANES`` per beat
    (``lanes``: default 1, 1 ... 256; latency 1, II = 1, see :class:`_LaneUnit`).

    Members
    -------
    i : ``In(stream.Signature(ArrayLayout(16, lanes)))``
        binary16 patterns.
    o : ``Out(stream.Signature(ArrayLayout(32, lanes)))``
        binary32 patterns of the same values: subnormals normalised, zeros and
        infinities keep their sign, NaN canonical (``0x7FC00000``).

    Implements docs/SPEC.md "FP16" (:func:`hdl.common.fp.fp16_to_fp32`); the
    FP16 GEMM datapath widens its residual with it (docs/SPEC.md "GEMM core").
    """

    IN, OUT = _lanes(16), 32

    def _lane(self, m, n):
        return fp16_to_fp32(m, self.i.payload[n], name=f"h2f{n}")
