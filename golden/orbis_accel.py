"""Golden model of the ORBIS accelerator (docs/SPEC.md "ORBIS accelerator"):
OGM steps, background matching (QE + DATM) of a captured SDPA output, pair
memory, integer reduce and restore around the GEMM program, error codes and
the exact cycle count with the match engine running beside the array.

Written from ORBIS §3 (Output-Guided Matching: pairs from the FC step's
attention output, reused by the next RC steps; reduce -> attention ->
restore) with the matching done by :func:`golden.orbis.qe` and
:func:`golden.orbis.datm` and the GEMM part by :mod:`golden.accel`. The
engine's time comes from the units' own cycle models
(:func:`golden.orbis.qe_cycles`, :func:`golden.orbis.datm_cycles`). Nothing
here knows the RTL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import accel as ga
from .orbis import datm, datm_cycles, qe

__all__ = ["Config", "Match", "Step", "Capture", "Reduce", "Restore", "Machine", "Result", "run",
           "merge_rows", "reduce_int", "restore_rows", "pair_map", "match_cycles", "ERRORS", "FORWARD_OVERHEAD",
           "EPS_FRAC"]

ERRORS = ("NONE", "OPCODE", "SHAPE", "ADDRESS", "QUEUE_FULL", "SEQUENCE")
FORWARD_OVERHEAD = 10
"""Cycles a forwarded GEMM command adds to the core's own run of it (as the RADiT top):
fetch + decode, six command-word pushes, the start pulse, the done check."""
EPS_FRAC = 16
ITER_MAX = 255
#: Cycles of the match engine beyond the DATM engine's own schedule: the
#: feeder's read, the QE's pass over the matrix (its codes reach the DATM
#: N·CB + 2 cycles later than an ideal source would), the pair writer.
MATCH_EXTRA = 3


@dataclass(frozen=True)
class Config:
    gemm: ga.Config = ga.Config()
    tokens: int = 64
    channels: int = 64
    num_dst: int = 16
    layers: int = 12
    rc_steps: int = 3
    scale_frac: int = 8
    topk_buffer: int = 0

    @property
    def max_pairs(self) -> int:
        return self.tokens - self.num_dst

    @property
    def chunks(self) -> int:
        """Stream beats of one token's channels (the QE's ⌈C/L⌉, L = STREAM_BYTES)."""
        return self.channels // self.gemm.stream_bytes

    @property
    def feature_depth(self) -> int:
        return self.tokens * self.chunks


@dataclass(frozen=True)
class Match:
    """MATCH: QE + DATM on the feature memory; pairs to ``layer``'s region."""
    layer: int
    k: int
    max_iter: int = 16
    eps: int = 655          # ε with EPS_FRAC fraction bits (655 ≈ 0.01)
    seed: int = 0


@dataclass(frozen=True)
class Step:
    """STEP: the next OGM timestep (``first``: the first of a run, an FC step)."""
    first: bool = False


@dataclass(frozen=True)
class Capture:
    """A VECTOR to the stream whose beats also fill the feature memory (FC steps)."""
    cmd: ga.Vector


@dataclass(frozen=True)
class Reduce:
    """A LOAD A whose K tiles of TOKENS rows pass the reduce unit (RC steps):
    ``load.data`` is KT·TOKENS A rows, ``load.addr`` the first row written."""
    load: ga.Load
    layer: int

    @property
    def tiles(self) -> int:
        return int(np.asarray(self.load.data).shape[0])


@dataclass(frozen=True)
class Restore:
    """A VECTOR to the stream (M = TOKENS - r rows per N tile) whose tiles leave as TOKENS rows (RC steps)."""
    cmd: ga.Vector
    layer: int


@dataclass
class Result:
    outputs: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    cycles: list = field(default_factory=list)   # per command, dequeue to next dequeue
    counters: dict = field(default_factory=lambda: dict.fromkeys(
        ("array_busy", "datm_busy", "exposed", "matches", "dropped"), 0))
    late: int = 0
    match_cycles: list = field(default_factory=list)
    total_cycles: int = 0
    matches: list = field(default_factory=list)  # (layer, DatmResult)
    match_done: dict = field(default_factory=dict)   # layer -> CYCLES when its pairs became valid

    @property
    def error_code(self) -> str:
        return self.errors[0][1] if self.errors else "NONE"


# --------------------------------------------------------------------------- reduce / restore on integers

def pair_map(pairs, n: int) -> np.ndarray:
    """Token -> reduced row: kept tokens (never a src) take rows 0.. in token order; a src takes its dst's row."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    is_src = np.zeros(n, bool)
    is_src[pairs[:, 0]] = True
    rank = np.cumsum(~is_src) - 1
    out = rank.copy()
    out[pairs[:, 0]] = rank[pairs[:, 1]]
    return out


def merge_rows(x, pairs) -> np.ndarray:
    """The reduce unit on one tile (N x lanes integers): every group (a kept
    token and the srcs merged into it) becomes floor((2·Σx + n) / (2n)), the
    mean rounded half up (docs/SPEC.md "ORBIS accelerator", "Reduce")."""
    x = np.asarray(x, dtype=np.int64)
    n = x.shape[0]
    rows = pair_map(pairs, n)
    kept = int(rows.max()) + 1
    sums = np.zeros((kept, x.shape[1]), np.int64)
    np.add.at(sums, rows, x)
    size = np.bincount(rows, minlength=kept)[:, None]
    return (2 * sums + size) // (2 * size)


def reduce_int(x, pairs):
    """``golden.orbis.reduce`` with the integer rounding rule: the kept tokens, in order."""
    return merge_rows(x, pairs)


def restore_rows(y, pairs, n: int) -> np.ndarray:
    """The restore unit on one tile: N rows, every src a copy of its dst's row."""
    return np.asarray(y)[pair_map(pairs, n)]


# --------------------------------------------------------------------------- cycle model of the engine

def match_cycles(cfg: Config, iterations: int, kk: int) -> int:
    """Cycles the match engine is busy for one MATCH (launch + 1 to pairs valid):
    the DATM engine's schedule (:func:`golden.orbis.datm_cycles`) fed by the QE
    (its codes arrive N·CB + MATCH_EXTRA cycles after an ideal source's), then
    the map: N rank cycles and kk + 2 fix cycles."""
    n, c, d, cb = cfg.tokens, cfg.channels, cfg.num_dst, cfg.chunks
    dc = datm_cycles(n, c, d, cfg.gemm.stream_bytes, iterations, kk, topk_buffer=cfg.topk_buffer)
    return dc + n * cb + MATCH_EXTRA + n + kk + 2


class Machine:
    """Architectural state: the core's memories, the feature, pair and map
    memories, the per-layer pair counts and valid bits, the OGM phase."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.core = ga.Accelerator(cfg.gemm)
        self.feature = np.zeros((cfg.feature_depth, cfg.gemm.stream_bytes), np.int64)
        self.pairs = [np.zeros((0, 2), np.int64) for _ in range(cfg.layers)]
        self.iterations = [0] * cfg.layers
        self.soft_reset()

    def soft_reset(self):
        """What a soft reset clears: OGM phase, pair-valid bits, capture pointer, engines."""
        self.phase = 0
        self.valid = [False] * self.cfg.layers
        self.cap_ptr = 0

    @property
    def now(self) -> int:
        """Cycles since the current run's start (the CYCLES counter at the next dequeue)."""
        return getattr(self, "_now", 0)

    @property
    def rc(self) -> bool:
        return self.phase != 0

    def features(self) -> np.ndarray:
        """The feature memory as N x C (it holds the tile-major beats of a VECTOR to the stream)."""
        c = self.cfg
        g = c.gemm.cols // c.gemm.stream_bytes
        nt = c.channels // c.gemm.cols
        f = self.feature.reshape(nt, c.tokens, g, c.gemm.stream_bytes)
        return f.transpose(1, 0, 2, 3).reshape(c.tokens, c.channels)

    # --- one run ------------------------------------------------------------------
    def run(self, commands, *, final: bool = True, resume: bool = False) -> Result:
        """One start of ``commands``. ``resume``: the commands continue the
        previous call's run (the host kept the queue fed, so the clock and the
        engine go on); ``final=False``: the run goes on after them (no end
        wait, no closing cycle). A start is ``final=True, resume=False``."""
        res = Result()
        if not resume:
            self._now = 0
            self._engine_free = 0
            self._feeder_free = 0
            self._engine_layer = 0
        start = self._now
        for cmd in commands:
            self._execute(cmd, res)
        if not final:
            res.total_cycles = self._now - start
            return res
        end = max(self._now, self._engine_free)
        if end > self._now:
            res.counters["exposed"] += end - self._now
            res.late |= 1 << self._engine_layer
        res.total_cycles = end + 1 - start
        return res

    def _wait(self, res, t_wait: int, ready_at: int) -> int:
        """The WAIT state from ``t_wait``: cycles spent there (1 + the wait)."""
        w = max(0, ready_at - t_wait)
        if w:
            res.counters["exposed"] += w
            res.late |= 1 << self._engine_layer
        return 1 + w

    def _error(self, res, code, cycles):
        res.errors.append((len(res.cycles), code))
        self._spend(res, cycles)

    def _spend(self, res, cycles):
        res.cycles.append(cycles)
        self._now += cycles

    def _core(self, cmd, res):
        sub = ga.run([cmd], self.cfg.gemm, self.core)
        res.counters["array_busy"] += sub.array_busy
        if sub.errors:
            res.errors.append((len(res.cycles), sub.errors[0][1]))
        return sub

    def _execute(self, cmd, res):
        c = self.cfg
        t0 = self._now
        if isinstance(cmd, Step):
            self.phase = 0 if cmd.first or self.phase == c.rc_steps else self.phase + 1
            return self._spend(res, 2)
        if isinstance(cmd, Match):
            if self.rc:
                res.counters["dropped"] += 1
                return self._spend(res, 2)
            if (not 0 <= cmd.layer < c.layers or cmd.k > c.tokens or not 0 <= cmd.seed < c.tokens
                    or not 0 <= cmd.max_iter <= ITER_MAX):
                return self._error(res, "SHAPE", 2)
            wait = self._wait(res, t0 + 2, self._engine_free)
            tl = t0 + 1 + wait
            q, s = qe(self.features(), c.scale_frac)
            out = datm(q, s, num_dst=c.num_dst, k=cmd.k, eps=cmd.eps / (1 << EPS_FRAC),
                       max_iter=max(1, cmd.max_iter), seed=cmd.seed, fixed=True, scale_frac=c.scale_frac,
                       eps_frac=EPS_FRAC)
            self.pairs[cmd.layer] = out.pairs
            self.iterations[cmd.layer] = out.iterations
            self.valid[cmd.layer] = True
            busy = match_cycles(c, out.iterations, len(out.pairs))
            self._engine_free = tl + 1 + busy
            self._feeder_free = tl + 2 + c.feature_depth
            self._engine_layer = cmd.layer
            self.cap_ptr = 0
            res.counters["matches"] += 1
            res.counters["datm_busy"] += busy
            res.match_cycles.append(busy)
            res.match_done[cmd.layer] = tl + busy   # the engine's last busy cycle
            res.matches.append((cmd.layer, out))
            return self._spend(res, 2 + wait)
        if isinstance(cmd, ga.Unknown):
            return self._error(res, "OPCODE", 2)
        if isinstance(cmd, Capture) and not self.rc:
            if not cmd.cmd.to_stream:
                return self._error(res, "SHAPE", 2)
            wait = self._wait(res, t0 + 2, self._feeder_free)
            sub = self._core(cmd.cmd, res)
            for frame in sub.outputs:
                res.outputs.append(frame)
                beats = np.frombuffer(frame, np.int8).astype(np.int64).reshape(-1, c.gemm.stream_bytes)
                take = beats[:max(0, c.feature_depth - self.cap_ptr)]
                self.feature[self.cap_ptr:self.cap_ptr + len(take)] = take
                self.cap_ptr += len(take)
            return self._spend(res, FORWARD_OVERHEAD + wait + sub.total_cycles)
        if isinstance(cmd, Reduce) and self.rc:
            load = cmd.load
            rows = np.asarray(load.data).shape[0]
            if rows % c.tokens or rows == 0 or not 0 <= cmd.layer < c.layers:
                return self._error(res, "SHAPE", 2)
            wait = self._wait(res, t0 + 2, self._engine_free)
            if not self.valid[cmd.layer]:
                return self._error(res, "SEQUENCE", 2 + wait)
            kt = rows // c.tokens
            pairs = self.pairs[cmd.layer]
            keep = c.tokens - len(pairs)
            if load.addr + kt * keep > c.gemm.a_depth:
                return self._error(res, "ADDRESS", 2 + wait)
            data = np.asarray(load.data, np.int64).reshape(kt, c.tokens, -1)
            merged = np.concatenate([merge_rows(t, pairs) for t in data])
            self._core(ga.Load("A", load.addr, merged), res)
            g = c.gemm.rows // c.gemm.stream_bytes
            core = 2 + kt * (c.tokens * g + keep * g + RED_TILE) + RED_TAIL
            return self._spend(res, FORWARD_OVERHEAD + wait + c.tokens + 1 + core)
        if isinstance(cmd, Restore) and self.rc:
            v = cmd.cmd
            if not v.to_stream or not 0 <= cmd.layer < c.layers:
                return self._error(res, "SHAPE", 2)
            wait = self._wait(res, t0 + 2, self._engine_free)
            if not self.valid[cmd.layer]:
                return self._error(res, "SEQUENCE", 2 + wait)
            pairs = self.pairs[cmd.layer]
            keep = c.tokens - len(pairs)
            if v.m != keep:
                return self._error(res, "SHAPE", 2 + wait)
            sub = self._core(v, res)
            nt = v.n // c.gemm.cols
            g = c.gemm.cols // c.gemm.stream_bytes
            for frame in sub.outputs:
                rows = np.frombuffer(frame, np.int8).reshape(nt, keep, c.gemm.cols)
                full = np.concatenate([restore_rows(t, pairs, c.tokens) for t in rows])
                res.outputs.append(full.astype(np.int8).tobytes())
            core = sub.total_cycles + nt * (c.tokens * g + RES_TILE) + RES_TAIL
            return self._spend(res, FORWARD_OVERHEAD + wait + c.tokens + 1 + core)
        inner = cmd.cmd if isinstance(cmd, (Capture, Restore)) else cmd.load if isinstance(cmd, Reduce) else cmd
        if isinstance(cmd, Reduce):
            # FC step: a plain LOAD of every row.
            inner = cmd.load
        sub = self._core(inner, res)
        res.outputs += sub.outputs
        return self._spend(res, FORWARD_OVERHEAD + sub.total_cycles)


#: Reduce unit, per K tile: N·G accumulate cycles, then the merged rows leave
#: through a 2-stage pipeline (read, divide): (N - r)·G + 2 cycles.
RED_TILE = 2
RED_TAIL = 0
#: Restore unit, per N tile: the core's (N - r)·G beats are taken as they come,
#: then N·G beats leave (+1: the read stage) while the core is held; the last
#: tile's copy-out overlaps the core's own completion by one cycle.
RES_TILE = 1
RES_TAIL = -1


def run(commands, cfg: Config, machine: Machine | None = None) -> Result:
    """Run ``commands`` (one start of the queue) on ``machine`` (fresh by default)."""
    machine = machine or Machine(cfg)
    return machine.run(commands)
