"""Pipelined argmin tree: the minimum of ``n`` values and its index, ties to
the lower index (ORBIS §3.3 "Min Tree"; docs/SPEC.md "DATM engine", pairing)."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Value

from .stream import register

__all__ = ["min_tree", "min_tree_latency"]


def min_tree_latency(n: int, register_every: int | None = 1) -> int:
    """Register stages :func:`min_tree` inserts for ``n`` values."""
    levels = max(0, (n - 1).bit_length())
    if not register_every or levels == 0:
        return 0
    return -(-levels // register_every)


def min_tree(m: Module, values: list, *, ce=None, register_every: int | None = 1,
             name: str = "mint") -> tuple[Value, Value]:
    """Minimum of ``values`` (unsigned compare) and its index.

    A balanced binary tree of compare-select nodes; at every node the left
    operand holds the lower indices and wins ties (the right one is taken only
    when strictly smaller), so equal minima resolve to the lowest index. An odd
    element passes a level unchanged. With ``register_every = r`` a register
    stage (enabled by ``ce``, default always) follows every ``r`` levels and the
    last one: latency :func:`min_tree_latency`. Returns ``(value, index)``.
    """
    n = len(values)
    if n == 0:
        raise ValueError("min_tree needs at least one value")
    width = max(1, (n - 1).bit_length())
    level = [(Value.cast(v), Const(i, width)) for i, v in enumerate(values)]
    levels = max(0, (n - 1).bit_length())
    depth = 0
    while len(level) > 1:
        nxt = []
        for j in range(0, len(level) - 1, 2):
            (va, ia), (vb, ib) = level[j], level[j + 1]
            take_b = vb < va
            nxt.append((Mux(take_b, vb, va), Mux(take_b, ib, ia)))
        if len(level) % 2:
            nxt.append(level[-1])
        depth += 1
        if register_every and (depth % register_every == 0 or depth == levels):
            nxt = [(register(m, v, ce=ce, name=f"{name}_l{depth}_v{j}"),
                    register(m, i, ce=ce, name=f"{name}_l{depth}_i{j}", shape=width))
                   for j, (v, i) in enumerate(nxt)]
        level = nxt
    return level[0]
