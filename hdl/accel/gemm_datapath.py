"""Datapath pieces of the GEMM accelerator (docs/SPEC.md "GEMM core"): the
vector unit between the accumulator and the output, and the row serializer
that cuts scratchpad rows into stream beats."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..common.fp import fp16_to_fp32, fp32_add, fp32_to_fp16
from ..common.params import check_choice, check_int
from ..common.stream import register, stall_pipeline

__all__ = ["VectorUnit", "RowSerializer", "VECTOR_LATENCY", "MULT_BITS", "SHIFT_BITS", "DTYPES"]

MULT_BITS = 16   # per-tensor requantize multiplier, unsigned
SHIFT_BITS = 6   # per-tensor requantize right shift, 0..63
VECTOR_LATENCY = 3
DTYPES = ("int8", "fp16")


class VectorUnit(wiring.Component):
    """Per-lane output stage: bias, requantize, residual, ReLU, clip; INT32 rows in, INT8 rows out
    (or, ``dtype="fp16"``, binary32 rows in, binary16 rows out).

    For each lane, in this order (docs/SPEC.md "GEMM core", "Vector unit"), INT8:

    1. ``x = acc + bias`` (``bias`` is 0 unless ``cfg.bias``); exact, 33 bits.
    2. ``y = round_half_even(x * mult / 2^shift)`` with ``mult`` unsigned
       16-bit and ``shift`` 0..63; exact (50-bit product).
    3. ``q = clamp(y, -128, 127)``.
    4. ``q = clamp(q + res, -128, 127)`` if ``cfg.residual`` (``res`` INT8).
    5. ``q = max(q, 0)`` if ``cfg.relu``.
    6. ``q = min(max(q, clip_lo), clip_hi)`` (signed INT8 bounds; the reset
       values -128 / 127 make it a no-op).

    FP16 (docs/SPEC.md "GEMM core", "FP16 datapath"; ``mult``, ``shift``,
    ``clip_lo``, ``clip_hi`` absent):

    1. ``x = fl32(acc + bias)`` if ``cfg.bias`` (binary32, round to nearest even);
    2. ``x = fl32(x + fp32(res))`` if ``cfg.residual`` (``res`` binary16, widened exactly);
    3. ``y = fp16(x)`` (the one rounding to binary16; |x| >= 65520 to infinity);
    4. ``y = +0`` if ``cfg.relu`` and ``y``'s sign bit is set;
    5. a non-NaN ``y`` with ``|y| > |clip|`` becomes ``±|clip|`` (``cfg.clip``
       a binary16 pattern; +inf clips nothing).

    Parameters
    ----------
    lanes : int
        Lanes per row (the array's COLS), >= 1.
    dtype : str
        ``"int8"`` (default) or ``"fp16"``.

    Members
    -------
    i : ``In(stream.Signature({"acc", "bias", "res", "last"}))``
        ``acc`` and ``bias``: ``lanes`` INT32 (binary32 patterns); ``res``:
        ``lanes`` INT8 (binary16 patterns).
    o : ``Out(stream.Signature({"data", "last"}))``
        ``lanes`` INT8 results (binary16 patterns); ``last`` copied from the input.
    cfg : ``In(Signature({"mult", "shift", "bias", "residual", "relu", "clip_lo", "clip_hi"}))``
        Held constant while rows flow; FP16: ``{"bias", "residual", "relu", "clip"}``.

    Latency 3 cycles (INT8: product, round and clamp, residual/ReLU/clip;
    FP16: bias add, residual add, conversion/ReLU/clip), II = 1; back-pressure
    on ``o`` stalls all three stages.
    """

    def __init__(self, *, lanes=16, dtype="int8"):
        self._lanes = check_int("lanes", lanes, maximum=256)
        self._dtype = check_choice("dtype", dtype, DTYPES)
        if dtype == "fp16":
            acc = data.ArrayLayout(unsigned(32), lanes)
            byte = data.ArrayLayout(unsigned(16), lanes)
            cfg = {"bias": Out(1), "residual": Out(1), "relu": Out(1), "clip": Out(16)}
        else:
            acc = data.ArrayLayout(signed(32), lanes)
            byte = data.ArrayLayout(signed(8), lanes)
            cfg = {"mult": Out(MULT_BITS), "shift": Out(SHIFT_BITS), "bias": Out(1), "residual": Out(1),
                   "relu": Out(1), "clip_lo": Out(signed(8)), "clip_hi": Out(signed(8))}
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"acc": acc, "bias": acc, "res": byte, "last": 1}))),
            "o": Out(stream.Signature(data.StructLayout({"data": byte, "last": 1}))),
            "cfg": In(wiring.Signature(cfg)),
        })

    @property
    def lanes(self):
        return self._lanes

    @property
    def dtype(self):
        return self._dtype

    def _pipeline(self, m):
        """The three-stage stall control and the ``last`` flag beside it; the stage enable."""
        ce = stall_pipeline(m, self.i.valid, self.i.ready, self.o.valid, self.o.ready, VECTOR_LATENCY,
                            name="vec")
        last1 = register(m, self.i.payload.last, ce=ce, name="last1")
        last2 = register(m, last1, ce=ce, name="last2")
        last3 = register(m, last2, ce=ce, name="last3")
        m.d.comb += self.o.payload.last.eq(last3)
        return ce

    def elaborate(self, platform):
        if self._dtype == "fp16":
            return self._elaborate_fp16()
        m = Module()
        cfg = self.cfg
        ce = self._pipeline(m)
        shift = cfg.shift
        # (1 << shift) - 1 and (1 << (shift - 1)): the bits below the result and the half bit.
        below = Signal(64, name="below_mask")
        half = Signal(64, name="half_bit")
        m.d.comb += [below.eq((Const(1, 65) << shift) - 1), half.eq((Const(1, 65) << shift) >> 1)]
        for n in range(self._lanes):
            bias = Mux(cfg.bias, self.i.payload.bias[n], 0)
            x = Signal(signed(33), name=f"x_{n}")
            m.d.comb += x.eq(self.i.payload.acc[n] + bias)
            p = register(m, x * Cat(cfg.mult, Const(0, 1)).as_signed(),
                         ce=ce, name=f"prod_{n}", shape=signed(50))
            res2 = register(m, self.i.payload.res[n], ce=ce, name=f"res1_{n}")
            floor = Signal(signed(50), name=f"floor_{n}")
            m.d.comb += floor.eq(p >> shift)
            # The bits shifted out, of p sign-extended to the widest shift.
            wide = Signal(signed(64), name=f"wide_{n}")
            rem = Signal(64, name=f"rem_{n}")
            m.d.comb += [wide.eq(p), rem.eq(wide.as_unsigned() & below)]
            up = (rem > half) | ((rem == half) & floor[0] & (shift != 0))
            y = Signal(signed(51), name=f"round_{n}")
            m.d.comb += y.eq(floor + up)
            q = register(m, Mux(y > 127, 127, Mux(y < -128, -128, y)), ce=ce, name=f"q_{n}",
                         shape=signed(8))
            res3 = register(m, res2, ce=ce, name=f"res2_{n}")
            s = Signal(signed(9), name=f"resadd_{n}")
            m.d.comb += s.eq(q + Mux(cfg.residual, res3, 0))
            r = Mux(s > 127, 127, Mux(s < -128, -128, s))
            r = Mux(cfg.relu & (r < 0), 0, r)
            r = Mux(r < cfg.clip_lo, cfg.clip_lo, r)
            r = Mux(r > cfg.clip_hi, cfg.clip_hi, r)
            out = register(m, r, ce=ce, name=f"out_{n}", shape=signed(8))
            m.d.comb += self.o.payload.data[n].eq(out)
        return m

    def _elaborate_fp16(self):
        m = Module()
        cfg = self.cfg
        ce = self._pipeline(m)
        bound = cfg.clip[:15]
        for n in range(self._lanes):
            acc = self.i.payload.acc[n]
            biased = fp32_add(m, acc, self.i.payload.bias[n], name=f"badd_{n}")
            x1 = register(m, Mux(cfg.bias, biased, acc), ce=ce, name=f"x1_{n}", shape=32)
            res1 = register(m, self.i.payload.res[n], ce=ce, name=f"res1_{n}", shape=16)
            wide = fp16_to_fp32(m, res1, name=f"rwide_{n}")
            summed = fp32_add(m, x1, wide, name=f"radd_{n}")
            x2 = register(m, Mux(cfg.residual, summed, x1), ce=ce, name=f"x2_{n}", shape=32)
            h = fp32_to_fp16(m, x2, name=f"conv_{n}")
            y = Signal(16, name=f"relu_{n}")
            m.d.comb += y.eq(Mux(cfg.relu & h[15], 0, h))
            mag = y[:15]
            nan = mag > 0x7C00
            r = Mux(~nan & (mag > bound), Cat(bound, y[15]), y)
            out = register(m, r, ce=ce, name=f"out_{n}", shape=16)
            m.d.comb += self.o.payload.data[n].eq(out)
        return m


class RowSerializer(wiring.Component):
    """Cuts rows of up to ``row_bits`` into ``beats`` beats of ``beat_bits``,
    beat 0 from the least significant bits.

    Parameters
    ----------
    row_bits, beat_bits : int
        Widest row and the beat width; ``beat_bits`` divides ``row_bits``.

    Members
    -------
    i : ``In(stream.Signature({"data": row_bits, "last": 1}))``
    o : ``Out(stream.Signature({"data": beat_bits, "last": 1}))``
        ``last`` on the final beat of a row whose input ``last`` was set.
    beats_m1 : ``In(range(row_bits // beat_bits))``
        Beats per row minus one (held while rows flow).

    One beat per cycle (rows back to back, II = ``beats``); a row is taken in
    the cycle the previous row's last beat leaves, so the output keeps
    ``valid`` high and ``data`` stable while it is stalled.
    """

    def __init__(self, *, row_bits, beat_bits):
        self._row_bits = check_int("row_bits", row_bits)
        self._beat_bits = check_int("beat_bits", beat_bits)
        if row_bits % beat_bits:
            raise ValueError(f"beat_bits ({beat_bits}) must divide row_bits ({row_bits})")
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"data": row_bits, "last": 1}))),
            "o": Out(stream.Signature(data.StructLayout({"data": beat_bits, "last": 1}))),
            "beats_m1": In(range(row_bits // beat_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        words = self._row_bits // self._beat_bits
        buf = Signal(self._row_bits, name="buf")
        full = Signal(name="full")
        row_last = Signal(name="row_last")
        idx = Signal(range(words), name="idx")
        end = Signal(name="end")
        take = Signal(name="take")
        m.d.comb += [
            end.eq(idx == self.beats_m1),
            self.o.valid.eq(full),
            self.o.payload.data.eq(buf.word_select(idx, self._beat_bits) if words > 1 else buf),
            self.o.payload.last.eq(row_last & end),
            take.eq(self.o.valid & self.o.ready),
            self.i.ready.eq(~full | (take & end)),
        ]
        with m.If(take):
            m.d.sync += idx.eq(Mux(end, 0, idx + 1))
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [buf.eq(self.i.payload.data), row_last.eq(self.i.payload.last), full.eq(1)]
        with m.Elif(take & end):
            m.d.sync += full.eq(0)
        return m
