"""RADiT CCU compressor: FP16 -> 4-bit code (RADiT §III-B3, Fig. 6b; docs/SPEC.md "CCU: compress")."""

from amaranth.hdl import Cat, Const, Module, Mux, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..common.params import check_bool, check_int
from ..common.stream import stall_pipeline
from ..registry import unit

__all__ = ["compress_code", "CCUCompress"]

CODE_BITS = 4
SATURATED = 0b0111


def compress_code(x: Value, *, saturate: bool = True) -> Value:
    """Combinational 4-bit code of the FP16 bit pattern ``x``.

    The exponent's two MSBs (x[14:13]) select the case: 00 keeps {0, x[14:12]},
    01 keeps x[13:10], 10 maps x[12:9] + 2 (saturating above 16 when
    ``saturate``), 11 (>= 2^9, inf, NaN) is the largest code. The sign is ignored.
    """
    x = Value.cast(x)
    indicator = x[13:15]
    case1 = Cat(x[12:15], Const(0, 1))
    case2 = x[10:14]
    literal = (x[9:13] + 2)[:CODE_BITS]  # wraps modulo 16, as the paper's adder would
    # x[12:10] >= 3 is exponent >= 19, i.e. |x| >= 16: outside the paper's range.
    case3 = Mux(x[10:13] >= 3, SATURATED, literal) if saturate else literal
    return Mux(indicator[1],
               Mux(indicator[0], Const(SATURATED, CODE_BITS), case3),
               Mux(indicator[0], case2, case1))


@unit("ccu_compress", golden="golden.radit.compress_fp16", testbench="sim.radit.tb_ccu_compress")
class CCUCompress(wiring.Component):
    """CCU compressor: squeezes ``LANES`` FP16 values per beat into 4-bit codes.

    Parameters
    ----------
    lanes : int
        FP16 values per stream beat (default 16), >= 1.
    saturate : bool
        Map |x| >= 16 to the largest code 0111 (default). ``False`` keeps the
        paper's literal ``x[12:9] + 0010``, which wraps 16..512 into low codes.

    Members
    -------
    i : ``In(stream.Signature(ArrayLayout(16, lanes)))``
        FP16 bit patterns, lane 0 in the least significant bits.
    o : ``Out(stream.Signature(ArrayLayout(4, lanes)))``
        4-bit codes, lane for lane.

    Ports (Verilog): ``i__valid``, ``i__ready``, ``i__payload[16*LANES-1:0]``,
    ``o__valid``, ``o__ready``, ``o__payload[4*LANES-1:0]``, ``clk``, ``rst``.

    Timing: ``latency`` = 1 cycle (registered output), ``ii`` = 1;
    back-pressure stalls the register without losing a beat.

    Implements docs/SPEC.md "CCU: compress".
    """

    def __init__(self, *, lanes=16, saturate=True):
        self._lanes = check_int("lanes", lanes, maximum=1024)
        self._saturate = check_bool("saturate", saturate)
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(16, self._lanes))),
            "o": Out(stream.Signature(data.ArrayLayout(CODE_BITS, self._lanes))),
        })

    @property
    def lanes(self):
        return self._lanes

    @property
    def saturate(self):
        return self._saturate

    @property
    def latency(self):
        """Cycles from an accepted beat to its codes on ``o``."""
        return 1

    @property
    def ii(self):
        """Cycles between accepted beats while ``o`` is ready."""
        return 1

    def elaborate(self, platform):
        m = Module()
        ce = stall_pipeline(m, self.i.valid, self.i.ready, self.o.valid, self.o.ready,
                            self.latency, name="ccu")
        with m.If(ce):
            m.d.sync += [self.o.payload[n].eq(compress_code(self.i.payload[n], saturate=self._saturate))
                         for n in range(self._lanes)]
        return m
