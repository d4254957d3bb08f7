"""Golden model of the GEMM accelerator (docs/SPEC.md "GEMM core"): commands
in, memories, stream outputs, error codes and the exact cycle count out.

Written from the specification's command semantics and cycle schedule; the
products come from :mod:`golden.systolic` (``matmul`` for values, ``cycles``
for the array's own timing). Nothing here knows the RTL.

Memories (one row per address):

* ``A``: input scratchpad, ROWS INT8 per row. An (M x K) operand sits as K
  tiles: row ``a + kt*M + i`` holds ``A[i, kt*ROWS:(kt+1)*ROWS]``.
* ``W``: weight scratchpad, COLS INT8 per row. Tile (nt, kt) (N tiles outer,
  K tiles inner) is ROWS consecutive rows from ``w + (nt*KT + kt)*ROWS``;
  its row ``j`` holds ``W[kt*ROWS + j, nt*COLS:(nt+1)*COLS]``.
* ``ACC``: accumulator, COLS INT32 per row; N tile ``nt`` of an (M x N)
  result is rows ``acc + nt*M + i``. A bias is one ACC row per N tile.

With ``Config.dtype == "fp16"`` (docs/SPEC.md "GEMM core", "FP16 datapath")
the layouts are the same with binary16 lanes in A and W and binary32 lanes in
ACC; every memory holds bit patterns (unsigned integers), the products follow
the accumulation order of docs/SPEC.md "FP16" (:func:`gemm_fp16`) and the
vector unit is :func:`vector_op_fp16`.

:func:`layout_a`, :func:`layout_w`, :func:`unlayout_acc` and
:func:`unlayout_a` convert between matrices and these row layouts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import fp16 as fp
from .systolic import DTYPES
from .systolic import cycles as array_cycles
from .systolic import matmul, wrap

__all__ = ["Config", "Load", "Store", "Gemm", "Vector", "Unknown", "Accelerator", "Result", "run",
           "requantize", "vector_op", "vector_op_fp16", "gemm_fp16", "layout_a", "layout_w", "unlayout_a",
           "unlayout_acc", "to_bytes", "from_bytes", "command_cycles", "gemm_utilisation", "FIELD_MAX"]

FIELD_MAX = (1 << 16) - 1  # command size and address fields are 16 bits


@dataclass(frozen=True)
class Config:
    rows: int = 16
    cols: int = 16
    a_depth: int = 1024
    w_depth: int = 1024
    acc_depth: int = 1024
    stream_bytes: int = 16
    dtype: str = "int8"

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, not {self.dtype!r}")

    @property
    def fp16(self) -> bool:
        return self.dtype == "fp16"

    def lanes(self, mem: str) -> int:
        return {"A": self.rows, "W": self.cols, "ACC": self.cols}[mem]

    def lane_bytes(self, mem: str) -> int:
        """Bytes per lane: ACC 4 (INT32 / binary32); A and W 1 (INT8) or 2 (binary16)."""
        return 4 if mem == "ACC" else (2 if self.fp16 else 1)

    def lane_bits(self, mem: str) -> int:
        return 8 * self.lane_bytes(mem)

    def depth(self, mem: str) -> int:
        return {"A": self.a_depth, "W": self.w_depth, "ACC": self.acc_depth}[mem]

    def beats_per_row(self, mem: str) -> int:
        return self.lanes(mem) * self.lane_bytes(mem) // self.stream_bytes


@dataclass(frozen=True)
class Load:
    """AXI4-Stream in -> ``rows`` rows of ``mem`` from ``addr``; ``data`` is (rows x lanes)."""
    mem: str
    addr: int
    data: np.ndarray

    @property
    def rows(self) -> int:
        return int(np.asarray(self.data).shape[0])


@dataclass(frozen=True)
class Store:
    """``rows`` rows of ``mem`` ("A" or "ACC") from ``addr`` -> AXI4-Stream out."""
    mem: str
    addr: int
    rows: int


@dataclass(frozen=True)
class Gemm:
    """``ACC[acc..] (+)= A[a..] @ W[w..]`` for an (m x k) @ (k x n) product."""
    m: int
    k: int
    n: int
    a_addr: int
    w_addr: int
    acc_addr: int
    accumulate: bool = False


@dataclass(frozen=True)
class Vector:
    """Accumulator rows -> vector unit -> A scratchpad (``dst_addr``) or AXI4-Stream."""
    m: int
    n: int
    acc_addr: int
    dst_addr: int = 0
    mult: int = 1
    shift: int = 0
    bias: bool = False
    bias_addr: int = 0
    residual: bool = False
    res_addr: int = 0
    relu: bool = False
    clip_lo: int = -128
    clip_hi: int = 127
    to_stream: bool = False
    clip_fp16: int = 0x7C00   # FP16 datapath only: |y| bound, a binary16 pattern (+inf: none)


@dataclass(frozen=True)
class Unknown:
    """A command with an opcode the accelerator does not know."""
    opcode: int


def requantize(acc, mult: int, shift: int) -> np.ndarray:
    """``clamp(round_half_even(acc * mult / 2^shift), -128, 127)`` exactly, on integers."""
    p = np.asarray(acc, dtype=object) * int(mult)
    if shift == 0:
        y = p
    else:
        floor = p // (1 << shift)          # floor division on Python integers
        rem = p - floor * (1 << shift)
        half = 1 << (shift - 1)
        up = (rem > half) | ((rem == half) & (floor % 2 == 1))
        y = floor + up.astype(object)
    return np.clip(y.astype(np.int64), -128, 127)


def vector_op(acc, op: Vector, bias=None, residual=None) -> np.ndarray:
    """The vector unit on (rows x COLS) INT32 sums: bias, requantize, residual,
    ReLU, clip, in that order (docs/SPEC.md "GEMM core", "Vector unit")."""
    x = np.asarray(acc, dtype=np.int64)
    if op.bias:
        x = x + np.asarray(bias, dtype=np.int64)
    q = requantize(x, op.mult, op.shift)
    if op.residual:
        q = np.clip(q + np.asarray(residual, dtype=np.int64), -128, 127)
    if op.relu:
        q = np.maximum(q, 0)
    return np.minimum(np.maximum(q, op.clip_lo), op.clip_hi)


def vector_op_fp16(acc, op: Vector, bias=None, residual=None) -> np.ndarray:
    """The FP16 datapath's vector unit on (rows x COLS) binary32 patterns
    (docs/SPEC.md "GEMM core", "FP16 datapath"), per lane in order:

    1. bias: ``x = fl32(acc + bias)`` (binary32 RNE) if ``bias``;
    2. residual: ``x = fl32(x + fp32(res))`` (the binary16 residual widened
       exactly) if ``residual``;
    3. ``y = fp16(x)``: the one rounding to binary16 (RNE, |x| >= 65520 to
       infinity, NaN canonical 0x7E00);
    4. ReLU: every ``y`` with the sign bit set (-0 included) becomes +0 if ``relu``;
    5. clip: a non-NaN ``y`` with ``|y| > |clip_fp16|`` becomes ``±|clip_fp16|``
       (its own sign): 0x7C00 (the default) clips nothing, 0x7BFF saturates
       at the largest finite value.

    ``mult``, ``shift``, ``clip_lo`` and ``clip_hi`` are INT8-only and ignored.
    Returns binary16 patterns (int64).
    """
    x = np.asarray(acc, dtype=np.int64).astype(np.uint32)
    if op.bias:
        x = fp.fp32_add(x, np.asarray(bias, dtype=np.int64).astype(np.uint32))
    if op.residual:
        x = fp.fp32_add(x, fp.fp16_to_fp32(np.asarray(residual, dtype=np.int64).astype(np.uint16)))
    y = fp.fp32_to_fp16(x).astype(np.int64)
    if op.relu:
        y = np.where(y & 0x8000, 0, y)
    bound = int(op.clip_fp16) & 0x7FFF
    mag = y & 0x7FFF
    nan = mag > 0x7C00
    return np.where(~nan & (mag > bound), (y & 0x8000) | bound, y)


def gemm_fp16(a_bits, w_bits, rows: int, acc_bits=None) -> np.ndarray:
    """(M x K) @ (K x N) on binary16 patterns as the FP16 datapath computes it
    (docs/SPEC.md "FP16"): each K tile of ``rows``'s column sums (from +0.0, k
    in order, binary32 RNE) added in tile order onto ``acc_bits`` (binary32
    patterns, GEMM with ``accumulate``) or, without it, the first tile's sums
    stored as is. Returns binary32 patterns (int64)."""
    a = fp.f16(np.asarray(a_bits, dtype=np.int64) & 0xFFFF)
    w = fp.f16(np.asarray(w_bits, dtype=np.int64) & 0xFFFF)
    acc = None if acc_bits is None else np.asarray(acc_bits, dtype=np.int64).astype(np.uint32)
    for k0 in range(0, a.shape[1], rows):
        part = matmul(a[:, k0:k0 + rows], w[k0:k0 + rows], dtype="fp16").view(np.uint32)
        acc = part if acc is None else fp.fp32_add(acc, part)
    return acc.astype(np.int64)


# --- row layouts ---------------------------------------------------------------

def layout_a(a, rows: int) -> np.ndarray:
    """(M x K) -> A scratchpad rows (K tiles of M rows; K padded to ROWS)."""
    a = np.asarray(a, dtype=np.int64)
    m, k = a.shape
    kt = math.ceil(k / rows)
    pad = np.zeros((m, kt * rows), np.int64)
    pad[:, :k] = a
    return pad.reshape(m, kt, rows).transpose(1, 0, 2).reshape(kt * m, rows)


def unlayout_a(rows_data, m: int, n: int, cols: int) -> np.ndarray:
    """A scratchpad rows written by VECTOR (N tiles of M rows) -> (M x N)."""
    nt = n // cols
    return np.asarray(rows_data).reshape(nt, m, cols).transpose(1, 0, 2).reshape(m, nt * cols)


def layout_w(w, rows: int, cols: int) -> np.ndarray:
    """(K x N) -> W scratchpad rows: tiles N outer, K inner, ROWS rows each."""
    w = np.asarray(w, dtype=np.int64)
    k, n = w.shape
    kt, nt = math.ceil(k / rows), math.ceil(n / cols)
    pad = np.zeros((kt * rows, nt * cols), np.int64)
    pad[:k, :n] = w
    return pad.reshape(kt, rows, nt, cols).transpose(2, 0, 1, 3).reshape(nt * kt * rows, cols)


def unlayout_acc(rows_data, m: int, n: int, cols: int) -> np.ndarray:
    """Accumulator rows (N tiles of M rows) -> (M x N)."""
    return unlayout_a(rows_data, m, n, cols)


def to_bytes(rows_data, lane_bytes: int) -> bytes:
    """Rows of lanes (signed integers or bit patterns) -> the stream's bytes
    (lane 0 first, little-endian lanes; each lane's low ``lane_bytes`` bytes)."""
    mask = (1 << (8 * lane_bytes)) - 1
    dtype = {1: "<u1", 2: "<u2", 4: "<u4"}[lane_bytes]
    return (np.asarray(rows_data, dtype=np.int64) & mask).astype(dtype).tobytes()


def from_bytes(raw: bytes, lanes: int, lane_bytes: int, signed: bool = True) -> np.ndarray:
    """The stream's bytes -> rows of lanes: signed integers, or bit patterns (``signed=False``)."""
    dtype = {1: "<i1", 2: "<i2", 4: "<i4"}[lane_bytes]
    if not signed:
        dtype = dtype.replace("i", "u")
    return np.frombuffer(bytes(raw), dtype=dtype).astype(np.int64).reshape(-1, lanes)


# --- the machine -----------------------------------------------------------------

@dataclass
class Result:
    """What a run produced: stream transfers (bytes, one per STORE or
    VECTOR-to-stream), errors ``(command index, code name)``, the first error
    code, per-command cycles and the run's total (the CYCLES counter)."""

    outputs: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    cycles: list = field(default_factory=list)
    gemm_cycles: list = field(default_factory=list)
    array_busy: int = 0

    @property
    def error_code(self) -> str:
        return self.errors[0][1] if self.errors else "NONE"

    @property
    def total_cycles(self) -> int:
        return sum(self.cycles) + 1


def command_cycles(cmd, cfg: Config) -> int:
    """Cycles a command occupies from its dequeue to the next dequeue
    (always-valid s_axis, always-ready m_axis), per docs/SPEC.md "GEMM core",
    "Cycle schedule": 1 fetch + 1 decode + the execution below.

    * LOAD: one beat per cycle, then the last row's write: ``R*g + 1``.
    * STORE: one read cycle, one serializer fill, then a beat per cycle: ``R*g + 2``.
    * GEMM: the array's own count ``T`` (``golden.systolic.cycles``, first
      weight beat to last result) after one scratchpad read, plus the last
      accumulator write and the completion check: ``T + 3``.
    * VECTOR: read, 3 vector stages, one row per cycle: ``R + 4`` to the A
      scratchpad; to the stream ``R*g + 5`` (``g = COLS * out lane bytes / stream bytes``).
    * A bad command: fetch and decode only (2).

    The FP16 datapath has the same schedule (docs/SPEC.md "FP16 datapath"):
    the array's latency and the vector unit's three stages do not change, the
    accumulator adds in binary32 in the same read-modify-write cycle; only the
    beats per row (``g``) follow the wider lanes.
    """
    if isinstance(cmd, Load):
        return 2 + cmd.rows * cfg.beats_per_row(cmd.mem) + 1
    if isinstance(cmd, Store):
        return 2 + cmd.rows * cfg.beats_per_row(cmd.mem) + 2
    if isinstance(cmd, Gemm):
        return 2 + array_cycles(cmd.m, cmd.k, cmd.n, cfg.rows, cfg.cols).total + 3
    if isinstance(cmd, Vector):
        r = cmd.m * (cmd.n // cfg.cols)
        if cmd.to_stream:
            return 2 + r * (cfg.cols * cfg.lane_bytes("A") // cfg.stream_bytes) + 5
        return 2 + r + 4
    raise TypeError(f"not a command: {cmd!r}")


def gemm_utilisation(cmd: Gemm, cfg: Config, gemm_cycles: int) -> float:
    """Array MAC cycles used / available over a GEMM command's cycles."""
    return cmd.m * cmd.k * cmd.n / (cfg.rows * cfg.cols * gemm_cycles)


class Accelerator:
    """The accelerator's architectural state: three memories, run command by command."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.mem = {name: np.zeros((cfg.depth(name), cfg.lanes(name)), np.int64) for name in ("A", "W", "ACC")}

    def check(self, cmd) -> str:
        """The error code of ``cmd`` ("NONE" when it is good): opcode, then shape, then address."""
        c = self.cfg
        if isinstance(cmd, Unknown):
            return "OPCODE"

        def fits(base, count, mem):
            return base + count <= c.depth(mem)

        if isinstance(cmd, (Load, Store)):
            if cmd.rows == 0 or cmd.rows > FIELD_MAX or (isinstance(cmd, Store) and cmd.mem == "W"):
                return "SHAPE"
            return "NONE" if fits(cmd.addr, cmd.rows, cmd.mem) else "ADDRESS"
        if isinstance(cmd, Gemm):
            if cmd.m == 0 or cmd.k == 0 or cmd.n == 0 or cmd.k % c.rows or cmd.n % c.cols:
                return "SHAPE"
            kt, nt = cmd.k // c.rows, cmd.n // c.cols
            ok = (fits(cmd.a_addr, cmd.m * kt, "A") and fits(cmd.w_addr, kt * nt * c.rows, "W")
                  and fits(cmd.acc_addr, cmd.m * nt, "ACC"))
            return "NONE" if ok else "ADDRESS"
        if isinstance(cmd, Vector):
            if cmd.m == 0 or cmd.n == 0 or cmd.n % c.cols:
                return "SHAPE"
            if (not cmd.to_stream or cmd.residual) and c.rows != c.cols:
                return "SHAPE"
            r = cmd.m * (cmd.n // c.cols)
            ok = (fits(cmd.acc_addr, r, "ACC") and (not cmd.bias or fits(cmd.bias_addr, cmd.n // c.cols, "ACC"))
                  and (not cmd.residual or fits(cmd.res_addr, r, "A"))
                  and (cmd.to_stream or fits(cmd.dst_addr, r, "A")))
            return "NONE" if ok else "ADDRESS"
        raise TypeError(f"not a command: {cmd!r}")

    def execute(self, cmd, result: Result) -> None:
        c = self.cfg
        code = self.check(cmd)
        if code != "NONE":
            result.errors.append((len(result.cycles), code))
            result.cycles.append(2)
            return
        result.cycles.append(command_cycles(cmd, c))
        mem = self.mem
        if isinstance(cmd, Load):
            data = np.asarray(cmd.data, dtype=np.int64)
            bits = c.lane_bits(cmd.mem)
            # INT8 datapath: signed lanes; FP16: bit patterns (unsigned).
            mem[cmd.mem][cmd.addr:cmd.addr + cmd.rows] = data & ((1 << bits) - 1) if c.fp16 else wrap(data, bits)
        elif isinstance(cmd, Store):
            rows = mem[cmd.mem][cmd.addr:cmd.addr + cmd.rows]
            result.outputs.append(to_bytes(rows, c.lane_bytes(cmd.mem)))
        elif isinstance(cmd, Gemm):
            kt, nt = cmd.k // c.rows, cmd.n // c.cols
            a = mem["A"][cmd.a_addr:cmd.a_addr + kt * cmd.m]
            a = a.reshape(kt, cmd.m, c.rows).transpose(1, 0, 2).reshape(cmd.m, cmd.k)
            w = mem["W"][cmd.w_addr:cmd.w_addr + kt * nt * c.rows]
            w = w.reshape(nt, kt, c.rows, c.cols).transpose(1, 2, 0, 3).reshape(cmd.k, cmd.n)
            region = slice(cmd.acc_addr, cmd.acc_addr + nt * cmd.m)
            if c.fp16:
                old = None
                if cmd.accumulate:
                    old = unlayout_acc(mem["ACC"][region], cmd.m, cmd.n, c.cols)
                out = gemm_fp16(a, w, c.rows, old)
                mem["ACC"][region] = out.reshape(cmd.m, nt, c.cols).transpose(1, 0, 2).reshape(nt * cmd.m, c.cols)
            else:
                out = matmul(a, w)
                rows = out.reshape(cmd.m, nt, c.cols).transpose(1, 0, 2).reshape(nt * cmd.m, c.cols)
                mem["ACC"][region] = wrap(mem["ACC"][region] + rows) if cmd.accumulate else rows
            result.gemm_cycles.append(result.cycles[-1] - 2)
            result.array_busy += cmd.m * kt * nt
        elif isinstance(cmd, Vector):
            nt = cmd.n // c.cols
            r = cmd.m * nt
            acc = mem["ACC"][cmd.acc_addr:cmd.acc_addr + r]
            bias = np.repeat(mem["ACC"][cmd.bias_addr:cmd.bias_addr + nt], cmd.m, axis=0) if cmd.bias else None
            res = mem["A"][cmd.res_addr:cmd.res_addr + r] if cmd.residual else None
            out = (vector_op_fp16 if c.fp16 else vector_op)(acc, cmd, bias, res)
            if cmd.to_stream:
                result.outputs.append(to_bytes(out, c.lane_bytes("A")))
            else:
                mem["A"][cmd.dst_addr:cmd.dst_addr + r] = out


def run(commands, cfg: Config, machine: Accelerator | None = None) -> Result:
    """Run ``commands`` (one start of the queue) on ``machine`` (fresh by default)."""
    machine = machine or Accelerator(cfg)
    result = Result()
    for cmd in commands:
        machine.execute(cmd, result)
    return result
