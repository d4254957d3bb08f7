"""RADiT CCU compare: compress the current block input and count the code bits
that differ from the previous timestep's (RADiT §III-B3, Fig. 6c; docs/SPEC.md
"CCU: compare")."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from ..common.arith import popcount
from ..common.params import check_bool, check_int
from ..registry import unit
from .ccu_compress import CODE_BITS, compress_code

__all__ = ["CCUCompare", "delta_width", "DIT_XL2_ELEMENTS"]

DIT_XL2_ELEMENTS = 256 * 1152
"""Elements of one DiT-XL/2 block input: 256 tokens x 1152 channels."""


def delta_width(max_elements: int) -> int:
    """Bits of a Δ count for blocks of up to ``max_elements`` FP16 values (≤ 4 per element)."""
    return bits_for(CODE_BITS * max_elements)


def input_layout(lanes: int) -> data.StructLayout:
    """Payload of the current-input stream: ``LANES`` FP16 values and ``last``."""
    return data.StructLayout({"data": data.ArrayLayout(16, lanes), "last": 1})


@unit("ccu_compare", golden="golden.radit.code_distance", testbench="sim.radit.tb_ccu_compare")
class CCUCompare(wiring.Component):
    """CCU compare: Δ = Σ popcount(code_t XOR code_t+1) of a DNN operation block's input.

    Every beat carries ``LANES`` FP16 values of the current block input and is
    joined with one beat of the previous timestep's 4-bit codes of the same
    elements (read from memory, 4x smaller than FP16). The values are
    compressed by the CCU compressor (:func:`compress_code`), the new codes
    leave on ``codes`` to be written back, and the differing code bits are
    summed (popcount from ``hdl.common.arith``). The beat with ``last`` closes
    the block: its Δ leaves on ``delta`` and the counter restarts.

    Parameters
    ----------
    lanes : int
        FP16 values per beat (default 16), 1..1024.
    max_elements : int
        Largest block input in elements (default DiT-XL/2's 256 x 1152),
        at least ``lanes`` (a block is at least one beat). Δ is
        ``bit_length(4 * max_elements)`` bits wide (21 by default) and the
        counter saturates at its all-ones value rather than wrap, so a longer
        block reads as "very different", never as "similar".
    saturate : bool
        Compressor option, see ``ccu_compress`` (default ``True``).

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"data": ArrayLayout(16, lanes), "last": 1})))``
        Current block input, lane 0 in the least significant bits; ``last``
        marks the block's final beat.
    prev : ``In(stream.Signature(ArrayLayout(4, lanes)))``
        Previous timestep's codes, one beat per ``i`` beat (the two are joined).
    codes : ``Out(stream.Signature(ArrayLayout(4, lanes)))``
        Current codes, one beat per input beat.
    delta : ``Out(stream.Signature(unsigned(DW)))``
        Δ of the block, one beat per ``last``.

    Timing: II = 1 while both sinks take beats; ``codes`` lags its input beat
    by 1 cycle and ``delta`` appears 1 cycle after the ``last`` beat. A Δ
    waiting on ``delta`` stalls only the next block's ``last`` beat; a full
    ``codes`` slot stalls every beat. ``i.ready`` depends combinationally on
    ``prev.valid``, ``i.payload.last`` and the sinks' ``ready`` (and
    ``prev.ready`` on ``i.valid``): a join. ``latency`` = 1, ``ii`` = 1.

    Implements docs/SPEC.md "CCU: compare" (the compressor: "CCU: compress").
    """

    def __init__(self, *, lanes=16, max_elements=DIT_XL2_ELEMENTS, saturate=True):
        self._lanes = check_int("lanes", lanes, maximum=1024)
        self._max_elements = check_int("max_elements", max_elements, minimum=self._lanes, maximum=1 << 40)
        self._saturate = check_bool("saturate", saturate)
        self._dw = delta_width(self._max_elements)
        lanes = self._lanes
        super().__init__({
            "i": In(stream.Signature(input_layout(lanes))),
            "prev": In(stream.Signature(data.ArrayLayout(CODE_BITS, lanes))),
            "codes": Out(stream.Signature(data.ArrayLayout(CODE_BITS, lanes))),
            "delta": Out(stream.Signature(unsigned(self._dw))),
        })

    @property
    def lanes(self):
        return self._lanes

    @property
    def max_elements(self):
        return self._max_elements

    @property
    def saturate(self):
        return self._saturate

    @property
    def latency(self):
        """Cycles from an accepted beat to its codes (and, for ``last``, its Δ)."""
        return 1

    @property
    def ii(self):
        """Cycles between accepted beats while both sinks are ready."""
        return 1

    @property
    def delta_width(self):
        return self._dw

    @property
    def delta_limit(self):
        """The value the Δ counter saturates at."""
        return (1 << self._dw) - 1

    def elaborate(self, platform):
        m = Module()
        lanes = self._lanes
        cur = [compress_code(self.i.payload.data[n], saturate=self._saturate) for n in range(lanes)]
        differing = Signal(CODE_BITS * lanes)
        m.d.comb += differing.eq(Cat(*cur) ^ self.prev.payload.as_value())
        beat_bits = Signal(range(CODE_BITS * lanes + 1))
        m.d.comb += beat_bits.eq(popcount(differing))

        acc = Signal(self._dw)
        total = Signal(self._dw + 1)
        acc_next = Signal(self._dw)
        m.d.comb += [
            total.eq(acc + beat_bits),
            acc_next.eq(Mux(total > self.delta_limit, Const(self.delta_limit, self._dw), total)),
        ]

        codes_free = Signal()
        delta_free = Signal()
        space = Signal()
        fire = Signal()
        m.d.comb += [
            codes_free.eq(~self.codes.valid | self.codes.ready),
            delta_free.eq(~self.delta.valid | self.delta.ready),
            space.eq(codes_free & (delta_free | ~self.i.payload.last)),
            self.i.ready.eq(self.prev.valid & space),
            self.prev.ready.eq(self.i.valid & space),
            fire.eq(self.i.valid & self.prev.valid & space),
        ]

        with m.If(self.codes.ready):
            m.d.sync += self.codes.valid.eq(0)
        with m.If(self.delta.ready):
            m.d.sync += self.delta.valid.eq(0)
        with m.If(fire):
            m.d.sync += [self.codes.valid.eq(1)]
            m.d.sync += [self.codes.payload[n].eq(cur[n]) for n in range(lanes)]
            with m.If(self.i.payload.last):
                m.d.sync += [self.delta.payload.eq(acc_next), self.delta.valid.eq(1), acc.eq(0)]
            with m.Else():
                m.d.sync += acc.eq(acc_next)
        return m
