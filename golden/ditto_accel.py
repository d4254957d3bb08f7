"""Golden model of the Ditto accelerator (docs/SPEC.md "Ditto accelerator"):
LOAD / STORE / LAYER / VECTOR commands, Defo decisions, the memory model,
stream outputs, error codes and the exact cycle count.

Written from Ditto §IV-A (difference processing: A_t·W = A_{t-1}·W + ΔA·W),
§IV-B (Defo: timestep 1 on activations, timestep 2 on differences, the
cheaper one from then on; Ditto+ spatial differences), §V-B (encoding unit,
A4W8 compute units) and docs/SPEC.md's packing rule and schedule, with the
unit models of :mod:`golden.ditto`. Nothing here knows the RTL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import ditto as gd
from .accel import requantize

__all__ = ["Config", "Load", "Store", "Layer", "Vector", "Tadd", "Unknown", "Machine", "Result", "LayerRecord",
           "run", "memory_bytes", "memory_cycles", "encoder_cycles", "layer_entries", "ERRORS",
           "LAYER_OVERHEAD", "ITC_OVERHEAD"]

ERRORS = ("NONE", "OPCODE", "SHAPE", "ADDRESS", "QUEUE_FULL")
MEMS = ("A", "W", "O", "P")
LAYER_OVERHEAD = 7
"""Cycles of a LAYER command besides max(compute, memory): Defo query (1) and
its answer (2), the memory check (1), Defo record (1) and its answer (2)."""
CU_LATENCY = 3   # a row's last packed cycle to its sums at the summation stage (weight read, products, tree)
ITC_OVERHEAD = 0


@dataclass(frozen=True)
class Config:
    cus: int = 4
    pes: int = 16
    lanes: int = 8
    a_depth: int = 1024
    w_depth: int = 1152
    o_depth: int = 1024
    p_depth: int = 1024
    max_k: int = 1152
    defo_entries: int = 512
    stream_bytes: int = 8
    bw_log2: int = 4          # memory model: 2^bw_log2 bytes per cycle (register MEMORY)
    mem_enable: bool = True

    @property
    def cols(self) -> int:
        return self.cus * self.pes

    @property
    def enc_queue(self) -> int:
        """The encoding unit's element queue (the top sizes it from LANES)."""
        q = 32
        while q < 2 * (self.lanes + 1):
            q *= 2
        return q

    def row_bytes(self, mem: str) -> int:
        return {"A": self.lanes, "P": self.lanes, "W": self.cols, "O": 4 * self.cols}[mem]

    def depth(self, mem: str) -> int:
        return {"A": self.a_depth, "P": self.p_depth, "W": self.w_depth, "O": self.o_depth}[mem]

    def beats_per_row(self, mem: str) -> int:
        return self.row_bytes(mem) // self.stream_bytes


@dataclass
class Load:
    """``data`` rows (row_bytes(mem) lanes each: INT8, INT32 for O) into ``mem`` from ``addr``."""
    mem: str
    addr: int
    data: np.ndarray

    @property
    def rows(self) -> int:
        return int(np.asarray(self.data).shape[0])


@dataclass
class Store:
    mem: str
    addr: int
    rows: int


@dataclass
class Layer:
    """O = A·W on Defo entry ``layer`` at ``step`` (0 first timestep, 1 second, 2 later)."""
    layer: int
    step: int
    m: int
    k: int
    n: int
    a: int = 0
    w: int = 0
    o: int = 0
    p: int = 0
    spatial: bool = False
    store: bool = False       # temporal differences: O := ΔA·W (a partial product), not O + ΔA·W


@dataclass
class Tadd:
    """Transposed add: the (n x m) partial ``R`` at O ``r`` (a LAYER's output layout, N = m)
    added transposed to the (m x n) sum at O ``o``: ``S[i, j] += R[j, i]``."""
    m: int
    n: int
    r: int
    o: int


@dataclass
class Vector:
    """``rows`` O rows from ``addr`` requantized (``mult``, ``shift``, ``relu``) to the stream."""
    addr: int
    rows: int
    mult: int = 1
    shift: int = 0
    relu: bool = False


@dataclass(frozen=True)
class Unknown:
    opcode: int


@dataclass
class LayerRecord:
    """One LAYER's execution: what the DECISION / *_CYCLES / class registers read after it."""
    layer: int
    step: int
    use_diff: bool
    mode: str                 # "act", "temporal" or "spatial"
    compute: int
    memory: int
    cycles: int               # max(compute, memory): what Defo records (saturated there at 0xFFFF)
    decision: bool
    cycles_act: int
    cycles_diff: int
    counts: np.ndarray        # zero, low, full over every N tile's pass
    packed: int               # packed cycles (BUSY_CYCLES)


@dataclass
class Result:
    outputs: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    cycles: list = field(default_factory=list)
    layers: list = field(default_factory=list)

    @property
    def error_code(self) -> str:
        return self.errors[0][1] if self.errors else "NONE"

    @property
    def total_cycles(self) -> int:
        return 1 + sum(2 + c for c in self.cycles)

    @property
    def busy_cycles(self) -> int:
        return sum(r.packed for r in self.layers)


# ---------------------------------------------------------------------------
# Memory model and encoder timing
# ---------------------------------------------------------------------------

def memory_bytes(m: int, k: int, n: int, mode: str, store: bool = False) -> int:
    """Bytes a LAYER moves in ``mode`` (docs/SPEC.md "Ditto accelerator", memory model):
    every mode reads A (M·K) and W (K·N) and writes the INT32 outputs (4·M·N);
    temporal differences also read and write the previous inputs (2·M·K) and,
    unless ``store``, read the previous outputs (4·M·N)."""
    base = m * k + k * n + 4 * m * n
    return base + (2 * m * k + (0 if store else 4 * m * n) if mode == "temporal" else 0)


def memory_cycles(m: int, k: int, n: int, mode: str, cfg: Config, store: bool = False) -> int:
    if not cfg.mem_enable:
        return 0
    bw = 1 << cfg.bw_log2
    return -(-memory_bytes(m, k, n, mode, store) // bw)


def _row_cycles(cls_row):
    """(need, pop, closes) of each packed cycle of a row (docs/SPEC.md packing rule):
    a cycle needs its ``n_placed`` elements and the entry that closes it in the
    queue and pops ``n_placed`` (+1 for the row-end marker)."""
    out = []
    occ, placed = 0, 0
    for c in cls_row[cls_row != gd.ZERO]:
        mask = gd._place(occ, int(c))
        if mask is None:
            out.append((placed + 1, placed))
            occ, placed = 0, 0
            mask = gd._place(0, int(c))
        occ |= mask
        placed += 1
    out.append((placed + 1, placed + 1))
    return out


def layer_entries(classes, lanes: int):
    """Per beat: queue entries pushed (non-zero elements + the row-end marker on a
    row's last beat); per packed cycle: (need, pop, closes_layer). ``classes``:
    (M x K) of one N tile's pass; the pass's last row closes the layer."""
    cls = np.asarray(classes)
    m, k = cls.shape
    nz = (cls != gd.ZERO).reshape(m, k // lanes, lanes).sum(axis=2)
    nz[:, -1] += 1
    push = nz.reshape(-1)
    cycles = []
    for i in range(m):
        rc = _row_cycles(cls[i])
        for j, (need, pop) in enumerate(rc):
            cycles.append((need, pop, i == m - 1 and j == len(rc) - 1))
    return push, cycles


def encoder_cycles(classes, lanes: int, tiles: int, queue: int) -> int:
    """Cycle (from the layer's start, 0-based) of the last packed cycle leaving
    the encoding unit, for ``tiles`` passes over the (M x K) ``classes``.

    The feeder offers beat j from cycle 1 on, a beat a cycle while taken (the
    scratchpad read port is its stage register); the encoder takes a beat
    while its queue holds at most ``queue − lanes − 1`` entries, the entries
    count from the next cycle; a packed cycle leaves when its closing entry is
    in the queue, one a cycle, except that a pass's closing cycle waits a
    cycle if the previous cycle closed a pass (the statistics beat)."""
    push1, cyc1 = layer_entries(classes, lanes)
    push = np.tile(push1, tiles)
    cycles = cyc1 * tiles
    limit = queue - lanes - 1
    count = 0
    b, j, t = 0, 0, 1
    nb, nc = len(push), len(cycles)
    last_close = -2
    last_emit = -1
    while j < nc:
        popped = 0
        need, pop, closes = cycles[j]
        if count >= need and not (closes and last_close == t - 1):
            popped = pop
            if closes:
                last_close = t
            last_emit = t
            j += 1
        pushed = 0
        if b < nb and count <= limit:
            pushed = int(push[b])
            b += 1
        count += pushed - popped
        t += 1
    return last_emit


def _classes(d, mode):
    if mode == "act":
        return np.full(d.shape, gd.FULL, dtype=np.int8)
    return gd.classify(d)


# ---------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------

class Machine:
    """Memories, the Defo table and the run state, carried across runs."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.mem = {"A": np.zeros((cfg.a_depth, cfg.lanes), np.int64),
                    "P": np.zeros((cfg.p_depth, cfg.lanes), np.int64),
                    "W": np.zeros((cfg.w_depth, cfg.cols), np.int64),
                    "O": np.zeros((cfg.o_depth, cfg.cols), np.int64)}
        self.table = gd.DefoTable(cfg.defo_entries)

    def check(self, cmd) -> str:
        cfg = self.cfg
        if isinstance(cmd, Load):
            if cmd.rows == 0:
                return "SHAPE"
            return "ADDRESS" if cmd.addr + cmd.rows > cfg.depth(cmd.mem) else "NONE"
        if isinstance(cmd, Store):
            if cmd.rows == 0 or cmd.mem == "W":
                return "SHAPE"
            return "ADDRESS" if cmd.addr + cmd.rows > cfg.depth(cmd.mem) else "NONE"
        if isinstance(cmd, Vector):
            if cmd.rows == 0:
                return "SHAPE"
            return "ADDRESS" if cmd.addr + cmd.rows > cfg.o_depth else "NONE"
        if isinstance(cmd, Tadd):
            if cmd.m == 0 or cmd.n == 0 or cmd.m % cfg.cols or cmd.n % cfg.cols:
                return "SHAPE"
            if cmd.r + cmd.m // cfg.cols * cmd.n > cfg.o_depth or cmd.o + cmd.n // cfg.cols * cmd.m > cfg.o_depth:
                return "ADDRESS"
            return "NONE"
        if isinstance(cmd, Layer):
            if (cmd.m == 0 or cmd.k == 0 or cmd.k % cfg.lanes or cmd.k > cfg.max_k or cmd.n == 0
                    or cmd.n % cfg.cols or cmd.layer >= cfg.defo_entries or cmd.step not in (0, 1, 2)):
                return "SHAPE"
            kb, nt = cmd.k // cfg.lanes, cmd.n // cfg.cols
            if (cmd.a + cmd.m * kb > cfg.a_depth or cmd.w + nt * cmd.k > cfg.w_depth
                    or cmd.o + cmd.m * nt > cfg.o_depth or cmd.p + cmd.m * kb > cfg.p_depth):
                return "ADDRESS"
            return "NONE"
        return "OPCODE"

    def _operand(self, mem, base, m, k):
        kb = k // self.cfg.lanes
        return self.mem[mem][base:base + m * kb].reshape(m, k)

    def layer(self, cmd: Layer) -> LayerRecord:
        cfg = self.cfg
        m, k, n = cmd.m, cmd.k, cmd.n
        kb, nt, cols = k // cfg.lanes, n // cfg.cols, cfg.cols
        use_diff = bool(self.table.execution(cmd.layer, cmd.step))
        mode = ("spatial" if cmd.spatial else "temporal") if use_diff else "act"
        a = self._operand("A", cmd.a, m, k)
        prev = self._operand("P", cmd.p, m, k)
        d = gd.differences(a, prev, mode, offset=k) if mode != "act" else a.copy()
        cls = _classes(d, mode)
        w = self.mem["W"]
        o = self.mem["O"]
        for t in range(nt):
            wt = w[cmd.w + t * k: cmd.w + (t + 1) * k]
            prod = gd.matmul(d, wt)
            rows = slice(cmd.o + t * m, cmd.o + (t + 1) * m)
            if mode == "temporal":
                new = prod if cmd.store else o[rows] + prod
            elif mode == "spatial":
                new = np.cumsum(prod, axis=0)
            else:
                new = prod
            o[rows] = (new + (1 << 31)) % (1 << 32) - (1 << 31)
        if not cmd.spatial and (use_diff or cmd.step == 0):
            self.mem["P"][cmd.p:cmd.p + m * kb] = a.reshape(m * kb, cfg.lanes)
        last = encoder_cycles(cls, cfg.lanes, nt, cfg.enc_queue)
        compute = last + CU_LATENCY + 1
        memory = memory_cycles(m, k, n, mode, cfg, cmd.store)
        cycles = max(compute, memory)
        self.table.record(cmd.layer, cmd.step, cycles)
        counts = (np.bincount(cls.reshape(-1), minlength=3)[:3] * nt).astype(np.int64)
        packed = nt * int(np.sum(gd.pack_cycles(cls)))
        e = cmd.layer
        return LayerRecord(layer=e, step=cmd.step, use_diff=use_diff, mode=mode, compute=compute, memory=memory,
                           cycles=cycles, decision=bool(self.table.decision[e]),
                           cycles_act=int(self.table.act[e]), cycles_diff=int(self.table.diff[e]),
                           counts=counts, packed=packed)

    def execute(self, cmd, result: Result) -> None:
        cfg = self.cfg
        code = self.check(cmd)
        if code != "NONE":
            result.errors.append((len(result.cycles), code))
            result.cycles.append(0)
            return
        if isinstance(cmd, Load):
            data = np.asarray(cmd.data, dtype=np.int64).reshape(cmd.rows, -1)
            self.mem[cmd.mem][cmd.addr:cmd.addr + cmd.rows] = data
            result.cycles.append(cmd.rows * cfg.beats_per_row(cmd.mem) + 1)
        elif isinstance(cmd, Store):
            rows = self.mem[cmd.mem][cmd.addr:cmd.addr + cmd.rows]
            result.outputs.append(_to_bytes(rows, 4 if cmd.mem == "O" else 1))
            result.cycles.append(cmd.rows * cfg.beats_per_row(cmd.mem) + 2)
        elif isinstance(cmd, Vector):
            rows = self.mem["O"][cmd.addr:cmd.addr + cmd.rows]
            q = requantize(rows, cmd.mult, cmd.shift)
            if cmd.relu:
                q = np.maximum(q, 0)
            result.outputs.append(_to_bytes(q, 1))
            result.cycles.append(cmd.rows * cfg.beats_per_row("W") + 5)
        elif isinstance(cmd, Tadd):
            c = cfg.cols
            r = self.mem["O"][cmd.r:cmd.r + cmd.m // c * cmd.n].reshape(cmd.m // c, cmd.n, c)
            part = r.transpose(1, 0, 2).reshape(cmd.n, cmd.m)          # R (n x m)
            rows = self.mem["O"][cmd.o:cmd.o + cmd.n // c * cmd.m]
            s = rows.reshape(cmd.n // c, cmd.m, c).transpose(1, 0, 2).reshape(cmd.m, cmd.n) + part.T
            s = (s + (1 << 31)) % (1 << 32) - (1 << 31)
            rows[:] = s.reshape(cmd.m, cmd.n // c, c).transpose(1, 0, 2).reshape(-1, c)
            result.cycles.append((cmd.m // c) * (cmd.n // c) * (2 * c + 2))   # C x C blocks via the transpose buffer
        else:
            rec = self.layer(cmd)
            result.layers.append(rec)
            result.cycles.append(rec.cycles + LAYER_OVERHEAD)


def _to_bytes(rows, lane_bytes):
    dtype = {1: "<i1", 4: "<i4"}[lane_bytes]
    return np.asarray(rows, dtype=np.int64).astype(dtype).tobytes()


def run(commands, cfg: Config | None = None, machine: Machine | None = None) -> Result:
    """Run ``commands`` (one start) on ``machine`` (a fresh one by default)."""
    cfg = cfg or (machine.cfg if machine else Config())
    machine = machine or Machine(cfg)
    result = Result()
    for cmd in commands:
        machine.execute(cmd, result)
    return result
