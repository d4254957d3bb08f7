"""Bitonic sorting network (Batcher, 1968; ORBIS §3.3 "Top-k Selection"),
generic over key width and size, pipelined.

:func:`bitonic_network` is the comparator schedule as plain data (checked
exhaustively with the 0-1 principle in the tests); :func:`bitonic_sort` builds
it in Amaranth with a register stage every ``register_every`` comparator stages.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value

from .stream import register

__all__ = ["bitonic_network", "bitonic_latency", "bitonic_sort"]


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size & (size - 1):
        raise ValueError(f"size must be a power of two, not {size!r}")
    return size


def bitonic_network(size: int) -> list[list[tuple[int, int]]]:
    """Comparator stages of an ascending bitonic sorter of ``size`` keys.

    Every stage is a list of ``(lo, hi)`` position pairs: after the stage,
    position ``lo`` holds the smaller and ``hi`` the larger of the two keys.
    ``size`` = 2^s gives s(s+1)/2 stages of size/2 comparators.
    """
    _check_size(size)
    stages = []
    k = 2
    while k <= size:
        j = k // 2
        while j >= 1:
            stage = []
            for i in range(size):
                partner = i ^ j
                if partner > i:
                    stage.append((i, partner) if (i & k) == 0 else (partner, i))
            stages.append(stage)
            j //= 2
        k *= 2
    return stages


def bitonic_latency(size: int, register_every: int | None = 1) -> int:
    """Register stages :func:`bitonic_sort` inserts for ``size`` keys."""
    stages = len(bitonic_network(size))
    if not register_every or stages == 0:
        return 0
    return -(-stages // register_every)


def bitonic_sort(m: Module, keys: list, *, ce=None, register_every: int | None = 1,
                 name: str = "bitonic") -> list[Value]:
    """Sort ``keys`` (unsigned compare, ascending) with a bitonic network.

    Keys of any width: put the primary field in the most significant bits (for
    (loss, index) keys: ``Cat(index, loss)``). A register stage, enabled by
    ``ce`` (default always), follows every ``register_every`` comparator stages
    and the last one; the result lags by :func:`bitonic_latency` cycles.
    """
    size = _check_size(len(keys))
    level = [Value.cast(k) for k in keys]
    stages = bitonic_network(size)
    for depth, stage in enumerate(stages, start=1):
        nxt = list(level)
        for lo, hi in stage:
            # Named nets: Amaranth re-emits a shared expression at every use.
            swap = Signal(name=f"{name}_x{depth}_{lo}_{hi}")
            m.d.comb += swap.eq(level[hi] < level[lo])
            nxt[lo] = Mux(swap, level[hi], level[lo])
            nxt[hi] = Mux(swap, level[lo], level[hi])
        registered = register_every and (depth % register_every == 0 or depth == len(stages))
        if not registered:
            nets = []
            for j, v in enumerate(nxt):
                w = Signal(v.shape(), name=f"{name}_c{depth}_{j}")
                m.d.comb += w.eq(v)
                nets.append(w)
            nxt = nets
        if registered:
            nxt = [register(m, v, ce=ce, name=f"{name}_s{depth}_{j}") for j, v in enumerate(nxt)]
        level = nxt
    return level
