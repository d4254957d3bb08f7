"""Processing element of the weight-stationary systolic array, and the minimal
MAC it is priced against (docs/SPEC.md "Systolic array", "FP16"; RADiT §III-C,
§IV-B1)."""

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..common.fp import fp16_mul, fp32_add
from ..common.params import check_choice, check_int
from ..registry import unit

__all__ = ["SystolicPE", "MACRef", "check_widths", "check_dtype", "dtype_widths", "product", "DTYPES"]

DTYPES = ("int8", "fp16")
# FP16: binary16 activations and weights, binary32 partial sums (bit patterns).
FP16_WIDTHS = (16, 16, 32)


def product(m, a, b, name="product"):
    """``a * b`` on a wire Yosys must keep.

    Without it, Yosys's ``alumacc`` merges the multiply and the following
    add into one ``$macc`` cell, whose mapping is a third larger in this flow
    than a multiplier feeding a separate adder (the PE: 1,358 -> 1,005 µm²).
    The PE and its yardstick MAC both use it, so they are priced alike.
    """
    wire = Signal(signed(len(a) + len(b)), name=name, attrs={"keep": 1})
    m.d.comb += wire.eq(a * b)
    return wire


def check_widths(in_bits, w_bits, acc_bits):
    """Validate the array's operand and accumulator widths: ``TypeError`` for a
    non-integer, ``ValueError`` out of range; returns them as ``int``."""
    in_bits = check_int("in_bits", in_bits, minimum=2, maximum=32)
    w_bits = check_int("w_bits", w_bits, minimum=2, maximum=32)
    acc_bits = check_int("acc_bits", acc_bits, minimum=in_bits + w_bits, maximum=64)
    return in_bits, w_bits, acc_bits


def check_dtype(dtype):
    """Validate the datapath type: a string (``TypeError``), one of :data:`DTYPES` (``ValueError``)."""
    return check_choice("dtype", dtype, DTYPES)


def dtype_widths(dtype, in_bits, w_bits, acc_bits):
    """The port widths ``(in_bits, w_bits, acc_bits)`` of a datapath type.

    INT8 takes the width parameters as given; FP16 fixes them (binary16
    operands, binary32 sums), so non-default widths with ``dtype="fp16"`` are
    a ``ValueError`` rather than silently ignored.
    """
    widths = check_widths(in_bits, w_bits, acc_bits)
    if check_dtype(dtype) == "int8":
        return widths
    if widths != (8, 8, 32):
        raise ValueError(f"in_bits, w_bits and acc_bits are fixed by dtype='fp16' (16, 16, 32); "
                         f"leave them at their defaults, not {widths}")
    return FP16_WIDTHS


class WidthProperties:
    """The width properties of the PE, its yardstick MAC and the array."""

    @property
    def in_bits(self):
        """Activation width (16 for FP16)."""
        return self._in_bits

    @property
    def w_bits(self):
        """Weight width (16 for FP16)."""
        return self._w_bits

    @property
    def acc_bits(self):
        """Partial-sum width (32 for FP16)."""
        return self._acc_bits


@unit("systolic_pe", golden="golden.systolic.matmul", testbench="sim.systolic.tb_systolic_pe")
class SystolicPE(WidthProperties, wiring.Component):
    """Systolic-array PE: weight register pair, activation pass-through, partial sum.

    One processing element of the weight-stationary array
    (:class:`hdl.systolic.array.SystolicArray`), emitted once as a Verilog
    module and instantiated ``ROWS x COLS`` times. Every register advances only
    when ``ce`` is high (the array's global stall); with ``ce`` high::

        a    <= a_in                   # activation, passed right
        f    <= f_in; e <= e_in        # swap and load flags, passed right
        act  <= shd   if f_in          # swap: the next tile's weight goes live
        shd  <= w_in  if e_in          # shadow weight: shift chain down the column
        p    <= p_in + a * act         # partial sum, passed down

    With ``dtype="int8"`` the sum wraps at ``acc_bits``; with ``dtype="fp16"``
    ``a * act`` is the exact binary32 product of two binary16 values and the
    addition is binary32 with round to nearest even
    (:func:`hdl.common.fp.fp16_mul`, :func:`hdl.common.fp.fp32_add`; NaN
    canonical ``0x7FC00000``, subnormals exact), in the same single cycle.

    The swap flag travels with the first activation of a tile, so each PE
    switches weights exactly when that activation reaches it, while the
    shadow register loads the next tile.

    Parameters
    ----------
    in_bits, w_bits : int
        Signed activation and weight widths (default 8, 8; INT8 only).
    acc_bits : int
        Partial-sum width (default 32), >= ``in_bits + w_bits`` (INT8 only).
    dtype : str
        ``"int8"`` (default: signed integers, wrapping sums) or ``"fp16"``
        (binary16 operands, binary32 partial sums, all ports bit patterns;
        the widths then read 16, 16, 32 and must be left at their defaults).

    Members
    -------
    ce : ``In(1)``
        Clock enable of every register (low: the PE holds).
    a_in, f_in, e_in : ``In(signed(in_bits))``, ``In(1)``, ``In(1)``
        From the left neighbour: activation, swap flag, load-shift enable.
    a_out, f_out, e_out : ``Out(...)``
        The registered copies, to the right neighbour.
    w_in : ``In(signed(w_bits))``
        The shadow weight of the PE above (or the array's weight feed).
    w_out : ``Out(signed(w_bits))``
        This PE's shadow weight, to the PE below.
    p_in : ``In(signed(acc_bits))``
        Partial sum from the PE above (0 in the top row).
    p_out : ``Out(signed(acc_bits))``
        Registered ``p_in + a * act``, to the PE below.

    Timing (both types): 1 cycle from ``a_in``/``f_in``/``e_in`` to their
    outputs; ``p_out`` holds ``p_in + a * act`` one cycle after the activation
    sits in ``a`` (2 cycles after ``a_in``). Implements docs/SPEC.md
    "Systolic array" and "FP16".
    """

    def __init__(self, *, in_bits=8, w_bits=8, acc_bits=32, dtype="int8"):
        self._dtype = check_dtype(dtype)
        self._in_bits, self._w_bits, self._acc_bits = dtype_widths(dtype, in_bits, w_bits, acc_bits)
        shape = signed if self._dtype == "int8" else unsigned
        super().__init__({
            "ce": In(1),
            "a_in": In(shape(self._in_bits)),
            "f_in": In(1),
            "e_in": In(1),
            "w_in": In(shape(self._w_bits)),
            "p_in": In(shape(self._acc_bits)),
            "a_out": Out(shape(self._in_bits)),
            "f_out": Out(1),
            "e_out": Out(1),
            "w_out": Out(shape(self._w_bits)),
            "p_out": Out(shape(self._acc_bits)),
        })

    @property
    def dtype(self):
        return self._dtype

    def elaborate(self, platform):
        m = Module()
        fp = self._dtype == "fp16"
        shape = unsigned if fp else signed
        # Data registers need no reset: nothing reads them before the flags
        # (which do reset) have loaded and swapped in a tile.
        a = Signal(shape(self._in_bits), reset_less=True)
        act = Signal(shape(self._w_bits), reset_less=True)
        shd = Signal(shape(self._w_bits), reset_less=True)
        p = Signal(shape(self._acc_bits), reset_less=True)
        f = Signal()
        e = Signal()
        if fp:
            total = fp32_add(m, self.p_in, fp16_mul(m, a, act, name="product"), name="psum")
        else:
            total = self.p_in + product(m, a, act)
        with m.If(self.ce):
            m.d.sync += [
                a.eq(self.a_in),
                f.eq(self.f_in),
                e.eq(self.e_in),
                p.eq(total),
            ]
            with m.If(self.f_in):
                m.d.sync += act.eq(shd)
            with m.If(self.e_in):
                m.d.sync += shd.eq(self.w_in)
        m.d.comb += [
            self.a_out.eq(a),
            self.f_out.eq(f),
            self.e_out.eq(e),
            self.w_out.eq(shd),
            self.p_out.eq(p),
        ]
        return m


@unit("systolic_mac_ref", golden="golden.systolic.matmul", testbench="sim.systolic.tb_systolic_mac_ref")
class MACRef(WidthProperties, wiring.Component):
    """Minimal registered MAC: INT8 x INT8 multiply feeding a 32-bit accumulator.

    The area yardstick of :class:`SystolicPE` (the issue asks for a PE within
    1.2x of it, synthesised in the same flow): registered operands, one signed
    multiplier, one accumulator register, nothing else. ``clr`` starts a new
    sum (``acc <= product`` instead of ``acc + product``); reset acts as a clear.

    Parameters
    ----------
    in_bits, w_bits, acc_bits : int
        Operand and accumulator widths (default 8, 8, 32).

    Members
    -------
    a : ``In(signed(in_bits))``
    b : ``In(signed(w_bits))``
    clr : ``In(1)``
    acc : ``Out(signed(acc_bits))``

    Timing: ``acc`` includes the operands of cycle ``t`` from cycle ``t + 2``
    (operand register, then accumulator); one MAC per cycle. The yardstick of
    docs/SPEC.md "Systolic array".
    """

    def __init__(self, *, in_bits=8, w_bits=8, acc_bits=32):
        in_bits, w_bits, acc_bits = check_widths(in_bits, w_bits, acc_bits)
        self._in_bits = in_bits
        self._w_bits = w_bits
        self._acc_bits = acc_bits
        super().__init__({
            "a": In(signed(in_bits)),
            "b": In(signed(w_bits)),
            "clr": In(1),
            "acc": Out(signed(acc_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        a = Signal(signed(self._in_bits), reset_less=True)
        b = Signal(signed(self._w_bits), reset_less=True)
        clr = Signal(init=1)  # reset clears the sum
        total = Signal(signed(self._acc_bits), reset_less=True)
        m.d.sync += [a.eq(self.a), b.eq(self.b), clr.eq(self.clr)]
        prod = product(m, a, b)
        with m.If(clr):
            m.d.sync += total.eq(prod)
        with m.Else():
            m.d.sync += total.eq(total + prod)
        m.d.comb += self.acc.eq(total)
        return m
