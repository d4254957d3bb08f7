"""ORBIS top-k selection: a bitonic sorting network over (loss, index) keys
(ORBIS §3.3, Batcher 1968; docs/SPEC.md "DATM engine", top-k)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..common.arith import popcount
from ..common.params import check_int
from ..common.sorting import bitonic_latency, bitonic_sort
from ..common.stream import delay, stall_pipeline
from ..registry import unit

__all__ = ["OrbisTopK"]


@unit("orbis_topk", golden="golden.orbis.topk_smallest", testbench="sim.orbis.tb_orbis_topk")
class OrbisTopK(wiring.Component):
    """Top-k: the k smallest (loss, index) keys of a set, ascending, from a pipelined bitonic network.

    A set is one input beat: ``SIZE`` losses (the index of a key is its
    position), a mask of the real keys and k. Key = {pad, loss, index} compared
    as one unsigned number: smaller loss first, ties to the lower index, and
    the masked-off positions (pad = 1, the padding of a non-power-of-two count)
    sort last. k is clamped to the number of real keys; k' = 0 gives no beat.

    Parameters
    ----------
    size : int
        Keys per set, a power of two (default 16).
    loss_width : int
        Bits of an unsigned loss (default 16).
    register_every : int
        Comparator stages per register stage (default 1: fully pipelined).

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"loss": ArrayLayout(loss_width, size), "valid": size, "k": ⌈log2(size+1)⌉})))``
    o : ``Out(stream.Signature(StructLayout({"loss": loss_width, "index": log2 size, "last": 1})))``
        k' beats per set, ``last`` on the final one.

    Timing: the first key leaves ``latency`` = ``bitonic_latency(size,
    register_every) + 2`` cycles after its set is accepted (input register,
    network, output shift register), then one key per cycle. A new set enters
    every cycle while the output register is free, so a set costs max(1, k')
    cycles: the initiation interval depends on k and has no fixed ``ii``.

    Implements docs/SPEC.md "DATM engine" (top-k).
    """

    def __init__(self, *, size=16, loss_width=16, register_every=1):
        self._size = check_int("size", size, minimum=2, maximum=1 << 12, power_of_two=True)
        self._loss_width = check_int("loss_width", loss_width, maximum=128)
        self._register_every = check_int("register_every", register_every, maximum=64)
        self._index_width = ceil_log2(self._size)
        size, loss_width = self._size, self._loss_width
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "loss": data.ArrayLayout(unsigned(loss_width), size),
                "valid": size,
                "k": range(size + 1)}))),
            "o": Out(stream.Signature(data.StructLayout({
                "loss": loss_width, "index": self._index_width, "last": 1}))),
        })

    @property
    def size(self):
        return self._size

    @property
    def loss_width(self):
        return self._loss_width

    @property
    def register_every(self):
        return self._register_every

    @property
    def latency(self):
        """Cycles from accepting a set to its first key on ``o``."""
        return bitonic_latency(self._size, self._register_every) + 2

    def elaborate(self, platform):
        m = Module()
        n, lw, iw = self._size, self._loss_width, self._index_width
        key_w = 1 + lw + iw
        depth = 1 + bitonic_latency(n, self._register_every)
        pipe_valid = Signal()
        pipe_ready = Signal()
        ce = stall_pipeline(m, self.i.valid, self.i.ready, pipe_valid, pipe_ready, depth, name="topk")

        keys = [Signal(key_w, name=f"key_in{j}") for j in range(n)]
        count = Signal(range(n + 1))
        m.d.comb += count.eq(popcount(self.i.payload.valid))
        k_in = self.i.payload.k
        kk = Signal(range(n + 1), name="k_clamped")
        with m.If(ce):
            m.d.sync += [keys[j].eq(Cat(Const(j, iw), self.i.payload.loss[j], ~self.i.payload.valid[j]))
                         for j in range(n)]
            m.d.sync += kk.eq(Mux(k_in > count, count, k_in))
        sorted_keys = bitonic_sort(m, keys, ce=ce, register_every=self._register_every, name="net")
        k_pipe = delay(m, kk, depth - 1, ce=ce, name="k")

        # Output shift register: key 0 is on the output, a take shifts by one.
        shift = [Signal(key_w, name=f"out_key{j}") for j in range(n)]
        left = Signal(range(n + 1))
        take = self.o.valid & self.o.ready
        m.d.comb += [
            pipe_ready.eq((left == 0) | ((left == 1) & self.o.ready)),
            self.o.valid.eq(left != 0),
            self.o.payload.index.eq(shift[0][:iw]),
            self.o.payload.loss.eq(shift[0][iw:iw + lw]),
            self.o.payload.last.eq(left == 1),
        ]
        with m.If(pipe_valid & pipe_ready):
            m.d.sync += [shift[j].eq(sorted_keys[j]) for j in range(n)]
            m.d.sync += left.eq(k_pipe)
        with m.Elif(take):
            m.d.sync += [shift[j].eq(shift[j + 1]) for j in range(n - 1)]
            m.d.sync += left.eq(left - 1)
        return m
