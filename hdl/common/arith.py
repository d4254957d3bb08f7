"""Arithmetic building blocks: pipelined adder trees and popcount.

These are elaboration-time builders (functions that add logic to a
``Module``), not components, because they sit inside other units' pipelines
and share those units' clock enables.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Value

from .stream import register

__all__ = ["adder_tree", "tree_latency", "popcount"]


def tree_latency(n_terms: int, register_every: int | None) -> int:
    """Register stages :func:`adder_tree` inserts for ``n_terms`` inputs."""
    levels = max(0, (n_terms - 1).bit_length())
    if not register_every or levels == 0:
        return 0
    return (levels + register_every - 1) // register_every


def adder_tree(terms: list, *, m: Module | None = None, register_every: int | None = None,
               ce=None, name: str = "tree") -> Value:
    """Sum ``terms`` with a balanced binary tree.

    Widths grow one bit per level (Amaranth's ``+``), so the sum never
    overflows; signed terms give a signed sum. With ``register_every = k`` a
    register stage follows every ``k`` levels (and the last level), enabled by
    ``ce`` (default: always), so the result lags the inputs by
    :func:`tree_latency` cycles. With ``None`` the tree is combinational and
    ``m`` may be omitted.
    """
    if register_every and m is None:
        raise ValueError("a pipelined adder tree needs the module `m` to add registers to")
    if not terms:
        return Const(0, 1)
    level = [Value.cast(t) for t in terms]
    depth = 0
    levels = max(0, (len(level) - 1).bit_length())
    while len(level) > 1:
        nxt = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        depth += 1
        if register_every and (depth % register_every == 0 or depth == levels):
            nxt = [register(m, v, ce=ce, name=f"{name}_l{depth}_{j}") for j, v in enumerate(nxt)]
        level = nxt
    return level[0]


def popcount(value) -> Value:
    """Number of set bits of ``value`` (combinational, unsigned)."""
    value = Value.cast(value)
    return adder_tree([value[i] for i in range(len(value))])
