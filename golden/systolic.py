"""Golden models of the weight-stationary systolic array (docs/SPEC.md "Systolic
array"; RADiT §III-C and §IV-B1: a TPU-like 64x64 PE array [19]; ORBIS §3.3:
the DXE's systolic array).

Three faces, all NumPy, none importing Amaranth:

* :func:`matmul` -- what the array computes: ``A @ W`` on signed integers with
  the hardware's two's-complement wrap-around at ``acc_bits`` (INT32 by
  default). Wrapping is a ring homomorphism, so wrapping every partial sum (as
  the PE adders do) and wrapping once at the end agree. With ``dtype="fp16"``
  (docs/SPEC.md "FP16"), binary16 operands and binary32 sums in the one order
  the hardware adds them: within a K tile of ``rows`` the column sum starts at
  +0.0 and adds the exact products in k order; the K tiles' sums are then
  added in tile order, the first stored as is.
* :func:`tiles` / :func:`assemble` -- the tiler: an (M x K) @ (K x N) product
  is cut into ``ceil(K/rows) * ceil(N/cols)`` weight tiles (K by ``rows``, N by
  ``cols``, zero-padded at the edges). Each tile is one weight load and M
  activation rows through the array; the per-tile (M x cols) partial sums are
  accumulated over the K tiles outside the array.
* :func:`cycles` -- the cycle model of :class:`hdl.systolic.array.SystolicArray`
  with always-valid sources and an always-ready sink, split the way SCALE-Sim
  reports a weight-stationary array (weight load, fill, steady state, drain,
  utilisation), and :func:`scalesim_ws_cycles`, SCALE-Sim's own WS estimate
  (weights not overlapped with compute) for comparison.

Stream beat formats (shared with the testbench): a weight tile is ``rows``
beats, beat ``j`` = row ``j`` of the tile (``cols`` values); an activation beat
is one row of the (M x rows) activation tile with a ``last`` flag on the
tile's final row; an output beat is one row of the (M x cols) result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["wrap", "matmul", "Tile", "tiles", "assemble", "weight_beats", "CycleModel", "cycles",
           "scalesim_ws_cycles", "dit_xl2_layers", "DTYPES", "NAN32"]

DTYPES = ("int8", "fp16")
NAN32 = 0x7FC00000  # the canonical NaN of every FP16-datapath result


def wrap(x, bits: int = 32) -> np.ndarray:
    """Two's-complement wrap of integers to ``bits`` bits (int64 result)."""
    x = np.asarray(x, dtype=np.int64)
    half = np.int64(1) << (bits - 1)
    return ((x + half) & ((np.int64(1) << bits) - 1)) - half


def _check_int(name, x):
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array, not {x.dtype}")
    return x.astype(np.int64)


def _check_dtype(dtype):
    if not isinstance(dtype, str):
        raise TypeError(f"dtype must be a string, not {dtype!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, not {dtype!r}")
    return dtype


def _check_fp16(name, x):
    x = np.asarray(x)
    if x.dtype != np.float16:
        raise TypeError(f"{name} must be a float16 array for dtype='fp16', not {x.dtype}")
    return x


def _canonical(x):
    """float32 values with every NaN as the canonical 0x7FC00000."""
    bits = np.asarray(x, dtype=np.float32).view(np.uint32)
    return np.where(np.isnan(x), np.uint32(NAN32), bits).astype(np.uint32).view(np.float32)


def _column_sums_fp16(a, w):
    """One K tile in FP16: ``s = +0.0; s = fl32(s + a[:, k] * w[k, :])`` for k in order."""
    a32 = a.astype(np.float32)
    w32 = w.astype(np.float32)
    s = np.zeros((a.shape[0], w.shape[1]), dtype=np.float32)
    with np.errstate(all="ignore"):
        for k in range(a.shape[1]):
            # binary16 x binary16 is exact in binary32; the addition rounds (RNE).
            s = (s + np.outer(a32[:, k], w32[k, :]).astype(np.float32)).astype(np.float32)
    return s


def matmul(a, w, acc_bits: int = 32, *, dtype: str = "int8", rows: int | None = None) -> np.ndarray:
    """``a @ w`` as the array (and the accumulator behind it) computes it.

    ``dtype="int8"``: ``a`` (M x K) and ``w`` (K x N) signed integers (INT8 in
    the array); every sum wrapped to ``acc_bits``; (M x N) int64. ``rows`` is
    irrelevant (integer sums do not depend on the order).

    ``dtype="fp16"``: ``a`` and ``w`` float16; (M x N) float32. K is cut into
    tiles of ``rows`` (default: one tile of K); each tile's column sum starts
    at +0.0 and adds ``np.float32(a) * np.float32(w)`` for k in order with
    binary32 round to nearest even; the tiles' sums are then added in tile
    order, the first stored as is. Every NaN is the canonical ``0x7FC00000``.
    ``acc_bits`` must stay 32.
    """
    if _check_dtype(dtype) == "fp16":
        a = _check_fp16("a", a)
        w = _check_fp16("w", w)
        if a.ndim != 2 or w.ndim != 2 or a.shape[1] != w.shape[0]:
            raise ValueError(f"shapes {a.shape} and {w.shape} do not multiply")
        if acc_bits != 32:
            raise ValueError(f"acc_bits must be 32 for dtype='fp16', not {acc_bits!r}")
        k = a.shape[1]
        step = k if rows is None else rows
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1:
            raise ValueError(f"rows must be a positive integer, not {rows!r}")
        acc = None
        with np.errstate(all="ignore"):
            for k0 in range(0, max(k, 1), step):
                part = _column_sums_fp16(a[:, k0:k0 + step], w[k0:k0 + step, :])
                acc = part if acc is None else (acc + part).astype(np.float32)
        return _canonical(acc)
    a = _check_int("a", a)
    w = _check_int("w", w)
    if a.ndim != 2 or w.ndim != 2 or a.shape[1] != w.shape[0]:
        raise ValueError(f"shapes {a.shape} and {w.shape} do not multiply")
    # int64 is exact while K * max|a*w| < 2^63 (K < 2^48 for INT8 operands).
    return wrap(a @ w, acc_bits)


@dataclass(frozen=True)
class Tile:
    """One weight tile of a tiled product, as the array consumes it.

    ``weights`` is (rows x cols) and ``activations`` (M x rows), zero-padded;
    ``expected`` (M x cols) is what the array streams out for this tile.
    ``k0``/``n0`` locate it in the full product.
    """

    k0: int
    n0: int
    weights: np.ndarray
    activations: np.ndarray
    expected: np.ndarray


def tiles(a, w, rows: int, cols: int, acc_bits: int = 32, *, dtype: str = "int8") -> list[Tile]:
    """Cut ``a @ w`` into array tiles: N tiles outer, K tiles inner.

    Keeping the K tiles of one output block adjacent lets an accumulator next
    to the array sum them as they stream out (as a TPU's accumulators do).
    For FP16 the padding is +0.0: a padded product is +0.0, and adding it to a
    column sum (which starts at +0.0, so is never -0.0) changes nothing.
    """
    fp = _check_dtype(dtype) == "fp16"
    a = _check_fp16("a", a) if fp else _check_int("a", a)
    w = _check_fp16("w", w) if fp else _check_int("w", w)
    kind = np.float16 if fp else np.int64
    m, k = a.shape
    if w.shape[0] != k:
        raise ValueError(f"shapes {a.shape} and {w.shape} do not multiply")
    n = w.shape[1]
    out = []
    for n0 in range(0, n, cols):
        for k0 in range(0, k, rows):
            wt = np.zeros((rows, cols), dtype=kind)
            blk = w[k0:k0 + rows, n0:n0 + cols]
            wt[:blk.shape[0], :blk.shape[1]] = blk
            at = np.zeros((m, rows), dtype=kind)
            at[:, :min(rows, k - k0)] = a[:, k0:k0 + rows]
            expected = matmul(at, wt, dtype="fp16") if fp else matmul(at, wt, acc_bits)
            out.append(Tile(k0, n0, wt, at, expected))
    return out


def weight_beats(tile: Tile, dtype: str = "int8") -> np.ndarray:
    """The weight stream of one tile, beat by beat (``rows x cols``).

    INT8: beat ``j`` is tile row ``j``. FP16: last row first (beat ``j`` is
    tile row ``rows - 1 - j``), because the shift chain leaves the last beat in
    the top PE row, where a column sum starts, and FP16 sums must run in k
    order (docs/SPEC.md "FP16").
    """
    return tile.weights[::-1] if _check_dtype(dtype) == "fp16" else tile.weights


def assemble(parts: list, m: int, n: int, acc_bits: int = 32, *, dtype: str = "int8") -> np.ndarray:
    """Sum per-tile results (``Tile`` objects or ``(tile, result)`` pairs) into
    the (M x N) product, like the accumulators: INT8 wrapping; FP16 in the
    order the parts come (the first part of an output block stored as is,
    later ones added in binary32 with round to nearest even, NaN canonical)."""
    if _check_dtype(dtype) == "fp16":
        acc = np.zeros((m, n), dtype=np.float32)
        seen = np.zeros(n, dtype=bool)
        with np.errstate(all="ignore"):
            for part in parts:
                tile, result = (part, part.expected) if isinstance(part, Tile) else part
                cols = min(np.asarray(result).shape[1], n - tile.n0)
                block = slice(tile.n0, tile.n0 + cols)
                res = np.asarray(result, dtype=np.float32)[:, :cols]
                acc[:, block] = np.where(seen[block], (acc[:, block] + res).astype(np.float32), res)
                seen[block] = True
        return _canonical(acc)
    acc = np.zeros((m, n), dtype=np.int64)
    for part in parts:
        tile, result = (part, part.expected) if isinstance(part, Tile) else part
        cols = min(np.asarray(result).shape[1], n - tile.n0)
        acc[:, tile.n0:tile.n0 + cols] = wrap(acc[:, tile.n0:tile.n0 + cols]
                                              + np.asarray(result, dtype=np.int64)[:, :cols], acc_bits)
    return acc


@dataclass(frozen=True)
class CycleModel:
    """Cycles of an (M x K) @ (K x N) product on a ``rows`` x ``cols`` array.

    ``total = weight_load + steady + load_stall + fill + drain``, counted from
    the cycle the first weight beat is taken to the cycle the last result beat
    leaves, both included.

    * ``weight_load``: the first weight tile (``rows`` beats), before any
      activation may enter; every later tile loads while its predecessor computes.
    * ``steady``: one activation row per cycle, ``tiles * M``.
    * ``load_stall``: cycles the activations wait between tiles because a
      weight tile takes ``rows`` cycles to load: ``(tiles - 1) * max(0, rows - M)``.
    * ``fill``: ``rows`` cycles for an activation wavefront to descend the K rows.
    * ``drain``: ``cols`` cycles to cross the columns and leave de-skewed.
    * ``utilization``: useful MACs / (rows * cols * total);
      ``mapping_efficiency``: K * N / (tiles * rows * cols), the share of PEs a
      tile's weights occupy (padding of partial tiles).
    """

    m: int
    k: int
    n: int
    rows: int
    cols: int
    tiles: int
    weight_load: int
    steady: int
    load_stall: int
    fill: int
    drain: int

    @property
    def total(self) -> int:
        return self.weight_load + self.steady + self.load_stall + self.fill + self.drain

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n

    @property
    def utilization(self) -> float:
        return self.macs / (self.rows * self.cols * self.total)

    @property
    def mapping_efficiency(self) -> float:
        return self.k * self.n / (self.tiles * self.rows * self.cols)

    @property
    def tile_period(self) -> int:
        """Cycles between the starts of consecutive tiles: max(M, rows)."""
        return max(self.m, self.rows)


def cycles(m: int, k: int, n: int, rows: int, cols: int, *, dtype: str = "int8") -> CycleModel:
    """The array's cycle count for ``(m x k) @ (k x n)`` (always-ready streams).

    Tiles run back to back: tile ``t+1``'s weights stream in while tile ``t``
    computes and the swap travels with the first activation of tile ``t+1``,
    so a tile costs ``max(M, rows)`` cycles; the first weight load and one fill
    and drain are exposed. ``dtype="fp16"`` gives the same count: the FP16 PE
    multiplies and adds in one cycle like the INT8 one (docs/SPEC.md "FP16").
    """
    _check_dtype(dtype)
    for name, v in (("m", m), ("k", k), ("n", n), ("rows", rows), ("cols", cols)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, not {v!r}")
    t = math.ceil(k / rows) * math.ceil(n / cols)
    return CycleModel(m, k, n, rows, cols, tiles=t, weight_load=rows, steady=t * m,
                      load_stall=(t - 1) * max(0, rows - m), fill=rows, drain=cols)


def scalesim_ws_cycles(m: int, k: int, n: int, rows: int, cols: int) -> int:
    """SCALE-Sim's weight-stationary estimate (Samajdar et al., ISPASS 2020):
    every fold loads its weights, then streams, fills and drains without
    overlap: ``folds * (2*rows + cols + M - 2)``."""
    folds = math.ceil(k / rows) * math.ceil(n / cols)
    return folds * (2 * rows + cols + m - 2)


def dit_xl2_layers(tokens: int = 256, hidden: int = 1152, mlp: int = 4608,
                   heads: int = 16) -> list[tuple[str, int, int, int, int]]:
    """The matrix products of one DiT-XL/2 transformer block (Peebles & Xie,
    2023; 256 tokens for a 256x256 image with patch 2): ``(name, M, K, N,
    count)``; attention products are per head, ``count`` times per block."""
    d = hidden // heads
    return [
        ("qkv projection", tokens, hidden, 3 * hidden, 1),
        ("attention Q K^T (per head)", tokens, d, tokens, heads),
        ("attention P V (per head)", tokens, tokens, d, heads),
        ("attention output projection", tokens, hidden, hidden, 1),
        ("MLP fc1", tokens, hidden, mlp, 1),
        ("MLP fc2", tokens, mlp, hidden, 1),
    ]
