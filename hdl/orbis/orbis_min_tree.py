"""ORBIS min tree: nearest dst of a src token (ORBIS §3.3, Fig. 6; docs/SPEC.md
"DATM engine", pairing: ties go to the lower dst index)."""

from amaranth.hdl import Module, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from ..common.min_tree import min_tree, min_tree_latency
from ..common.params import check_int
from ..common.stream import stall_pipeline
from ..registry import unit

__all__ = ["OrbisMinTree"]


@unit("orbis_min_tree", golden="golden.orbis.min_tree", testbench="sim.orbis.tb_orbis_min_tree")
class OrbisMinTree(wiring.Component):
    """Min tree: the smallest of ``NUM_DST`` distances and its dst index, ties to the lower index.

    One distance vector per cycle.

    Parameters
    ----------
    num_dst : int
        Distances per beat D (default 16), any count >= 1.
    dist_width : int
        Bits of an unsigned distance (default 31, the DATM engine's default).

    Members
    -------
    i : ``In(stream.Signature(ArrayLayout(unsigned(dist_width), num_dst)))``
    o : ``Out(stream.Signature(StructLayout({"dist": dist_width, "index": ⌈log2 D⌉})))``

    Timing: ``ii`` = 1; ``latency`` = ⌈log2 D⌉ cycles (a register after every
    tree level; 0, a combinational pass, for D = 1). Back-pressure stalls the
    whole tree.

    Implements docs/SPEC.md "DATM engine" (pairing: ties to the lower dst index).
    """

    def __init__(self, *, num_dst=16, dist_width=31):
        self._num_dst = check_int("num_dst", num_dst, maximum=4096)
        self._dist_width = check_int("dist_width", dist_width, maximum=128)
        self._index_width = bits_for(self._num_dst - 1)
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(unsigned(self._dist_width), self._num_dst))),
            "o": Out(stream.Signature(data.StructLayout({
                "dist": self._dist_width, "index": self._index_width}))),
        })

    @property
    def num_dst(self):
        return self._num_dst

    @property
    def dist_width(self):
        return self._dist_width

    @property
    def latency(self):
        """Cycles from an accepted distance vector to its minimum on ``o``."""
        return min_tree_latency(self._num_dst)

    @property
    def ii(self):
        """Cycles between accepted vectors while ``o`` is ready."""
        return 1

    def elaborate(self, platform):
        m = Module()
        ce = stall_pipeline(m, self.i.valid, self.i.ready, self.o.valid, self.o.ready, self.latency,
                            name="mint")
        value, index = min_tree(m, [self.i.payload[d] for d in range(self._num_dst)], ce=ce)
        m.d.comb += [self.o.payload.dist.eq(value), self.o.payload.index.eq(index)]
        return m
