"""Golden model of the RADiT accelerator (docs/SPEC.md "RADiT accelerator"):
block commands around GEMM programs, skip-and-reuse decisions, stream
outputs, error codes and the exact cycle count.

Written from RADiT's Algorithm 1 (per block: compress the input, compare with
the previous timestep's codes, skip and reuse the stored output when Δ < θ)
and Algorithm 2 (the dynamic threshold, here one request at a time, the same
steps as :func:`golden.radit.dtsm`), with the GEMM part run by
:mod:`golden.accel`. Nothing here knows the RTL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import accel as ga
from .radit import code_distance, compress_fp16, delta_limit

__all__ = ["Config", "BlockBegin", "BlockEnd", "Output", "Decision", "Machine", "Result", "run", "command_cycles",
           "linear_program", "FORWARD_OVERHEAD", "ERRORS"]

ERRORS = ("NONE", "OPCODE", "SHAPE", "ADDRESS", "QUEUE_FULL", "SEQUENCE")
FORWARD_OVERHEAD = 10
"""Cycles a computed block's GEMM command adds to the core's own run of it:
fetch + decode, six command-word pushes, the start pulse, the done check."""


@dataclass(frozen=True)
class Config:
    gemm: ga.Config = ga.Config()
    blocks: int = 56
    timesteps: int = 250
    code_depth: int = 4096
    reuse_depth: int = 4096
    alpha_frac: int = 15

    @property
    def lanes(self) -> int:
        """FP16 values per input beat."""
        return self.gemm.stream_bytes // 2

    @property
    def max_elements(self) -> int:
        return self.code_depth * self.lanes


@dataclass
class BlockBegin:
    """Open block ``block`` at timestep index ``t``: ``data`` (beats x lanes
    FP16 patterns) is the block's input; ``out_beats`` beats of output are kept."""
    block: int
    t: int
    data: np.ndarray
    out_beats: int
    code_addr: int = 0
    reuse_addr: int = 0
    first: bool = False

    @property
    def beats(self) -> int:
        return int(np.asarray(self.data).shape[0])


@dataclass
class BlockEnd:
    pass


@dataclass
class Output:
    """A STORE or VECTOR-to-stream whose frames are the open block's output
    (the ``output`` bit): kept in the reuse memory when the block computes."""
    cmd: object


@dataclass
class Decision:
    block: int
    delta: int
    theta: int
    theta_valid: bool
    dtsm_skip: bool
    skip: bool


@dataclass
class Result:
    outputs: list = field(default_factory=list)      # frames (bytes), tlast-delimited
    errors: list = field(default_factory=list)
    cycles: list = field(default_factory=list)
    decisions: list = field(default_factory=list)
    counters: dict = field(default_factory=lambda: dict.fromkeys(
        ("array_busy", "blocks_done", "blocks_skipped", "dropped", "a_rows_skipped", "w_rows_skipped"), 0))
    gemm_cycles: list = field(default_factory=list)

    @property
    def error_code(self) -> str:
        return self.errors[0][1] if self.errors else "NONE"

    @property
    def total_cycles(self) -> int:
        return sum(self.cycles) + 1


def command_cycles(cmd, cfg: Config, *, skip: bool = False, out_beats: int = 0, core_run: int = 0,
                   dropped: bool = False) -> int:
    """Cycles from a command's dequeue to the next dequeue (ideal streams),
    docs/SPEC.md "RADiT accelerator", "Cycle schedule":

    * a bad or dropped command (``dropped``): fetch + decode (2);
    * BLOCK_BEGIN: 2 + one input beat a cycle + 3 (Δ, then the DTSM's 2 stages);
    * BLOCK_END: 2, on a skip 2 + one stored beat a cycle + 1;
    * a GEMM command of a computed block: :data:`FORWARD_OVERHEAD` + the
      core's run of it alone (``core_run``, ``golden.accel`` total cycles).
    """
    if dropped:
        return 2
    if isinstance(cmd, BlockBegin):
        return 2 + cmd.beats + 3
    if isinstance(cmd, BlockEnd):
        return 2 + (out_beats + 1 if skip else 0)
    return FORWARD_OVERHEAD + core_run


def linear_program(a, w, cfg: ga.Config, *, keep: bool = False) -> list:
    """The host's program for one linear layer of a computed sub-block
    (docs/SPEC.md "RADiT accelerator", host split): LOAD A (``a``, M x K
    INT8), LOAD W (``w``, K x N INT8), GEMM, STORE ACC (the INT32 product to
    the stream); with ``keep`` (the sub-block's last linear) the STORE is the
    block's :class:`Output`, kept for reuse. A skipped sub-block's host queues
    the same commands (without their data) and the accelerator drops them."""
    a, w = np.asarray(a), np.asarray(w)
    m, n = a.shape[0], w.shape[1]
    store = ga.Store("ACC", 0, m * (n // cfg.cols))
    return [ga.Load("A", 0, ga.layout_a(a, cfg.rows)), ga.Load("W", 0, ga.layout_w(w, cfg.rows, cfg.cols)),
            ga.Gemm(m, a.shape[1], n, 0, 0, 0), Output(store) if keep else store]


class Machine:
    """Architectural state: the GEMM core's memories, the code and reuse
    memories, the DTSM's per-block state and α table, the open block."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.core = ga.Accelerator(cfg.gemm)
        self.codes = np.zeros((cfg.code_depth, cfg.lanes), np.int64)
        self.reuse = [(bytes(cfg.gemm.stream_bytes), False)] * cfg.reuse_depth
        self.alphas = np.zeros(cfg.timesteps + 1, np.int64)
        # DTSM state: θ, Δ_prev, θ valid, dd_prev negative (zeroed by `first`).
        self.theta = np.zeros(cfg.blocks, np.int64)
        self.prev = np.zeros(cfg.blocks, np.int64)
        self.theta_valid = np.zeros(cfg.blocks, bool)
        self.dd_neg = np.zeros(cfg.blocks, bool)
        self.soft_reset()

    def soft_reset(self):
        """What a soft reset clears: the open block (memories keep their contents)."""
        self.in_block = False
        self.skip = False
        self.block = None

    def set_alpha(self, t: int, value: int):
        self.alphas[t] = value

    # Algorithm 2, one request: update, then decide (docs/SPEC.md "DTSM").
    def _dtsm(self, n: int, t: int, delta: int, first: bool) -> tuple[int, bool, bool]:
        if first:
            self.theta[n], self.prev[n], self.theta_valid[n], self.dd_neg[n] = 0, 0, False, False
            return 0, False, False
        dd = delta - int(self.prev[n])
        local_min = self.theta_valid[n] and self.dd_neg[n] and dd > 0
        updated = int(self.prev[n]) + ((int(self.alphas[t]) * dd) >> self.cfg.alpha_frac)
        theta = delta if not self.theta_valid[n] else (updated if local_min else int(self.theta[n]))
        self.dd_neg[n] = bool(self.theta_valid[n] and dd < 0)
        self.theta[n], self.prev[n], self.theta_valid[n] = theta, delta, True
        return theta, True, delta < theta

    def check(self, cmd) -> str:
        c = self.cfg
        if isinstance(cmd, Output):
            cmd = cmd.cmd
        if isinstance(cmd, BlockBegin):
            if self.in_block:
                return "SEQUENCE"
            if (cmd.block >= c.blocks or cmd.t > c.timesteps or cmd.beats == 0 or cmd.out_beats == 0
                    or cmd.beats > ga.FIELD_MAX or cmd.out_beats > ga.FIELD_MAX):
                return "SHAPE"
            if cmd.code_addr + cmd.beats > c.code_depth or cmd.reuse_addr + cmd.out_beats > c.reuse_depth:
                return "ADDRESS"
            return "NONE"
        if isinstance(cmd, BlockEnd):
            return "NONE" if self.in_block else "SEQUENCE"
        if isinstance(cmd, ga.Unknown):
            return "OPCODE"
        return "NONE" if self.in_block else "SEQUENCE"

    def execute(self, cmd, result: Result, *, no_skip: bool = False) -> None:
        c = self.cfg
        sb = c.gemm.stream_bytes
        code = self.check(cmd)
        if code != "NONE":
            result.errors.append((len(result.cycles), code))
            result.cycles.append(command_cycles(cmd, c, dropped=True))
            return
        cnt = result.counters
        if isinstance(cmd, BlockBegin):
            data = np.asarray(cmd.data, dtype=np.int64) & 0xFFFF
            cur = compress_fp16(data.astype(np.uint16)).astype(np.int64)
            region = slice(cmd.code_addr, cmd.code_addr + cmd.beats)
            prev = np.zeros_like(cur) if cmd.first else self.codes[region]
            delta = code_distance(prev, cur, limit=delta_limit(c.max_elements))
            self.codes[region] = cur   # reference "previous": the new codes always become the reference
            theta, valid, dtsm_skip = self._dtsm(cmd.block, cmd.t, delta, cmd.first)
            self.skip = dtsm_skip and not no_skip
            self.in_block, self.block = True, cmd
            self._captured = 0
            result.decisions.append(Decision(cmd.block, delta, theta, valid, dtsm_skip, self.skip))
            cnt["blocks_skipped"] += self.skip
            result.cycles.append(command_cycles(cmd, c))
            return
        if isinstance(cmd, BlockEnd):
            b = self.block
            cycles = command_cycles(cmd, c, skip=self.skip, out_beats=b.out_beats)
            if self.skip:
                beats = self.reuse[b.reuse_addr:b.reuse_addr + b.out_beats]
                frame = b""
                for data, last in beats:
                    frame += data
                    if last:
                        result.outputs.append(frame)
                        frame = b""
                if frame:
                    result.outputs.append(frame)
            cnt["blocks_done"] += 1
            self.in_block = False
            result.cycles.append(cycles)
            return
        keep = isinstance(cmd, Output)
        cmd = cmd.cmd if keep else cmd
        if self.skip:
            cnt["dropped"] += 1
            if isinstance(cmd, ga.Load) and cmd.mem in ("A", "W"):
                cnt[f"{cmd.mem.lower()}_rows_skipped"] += cmd.rows
            result.cycles.append(command_cycles(cmd, c, dropped=True))
            return
        sub = ga.run([cmd], c.gemm, self.core)
        result.cycles.append(command_cycles(cmd, c, core_run=sub.total_cycles))
        cnt["array_busy"] += sub.array_busy
        result.gemm_cycles += sub.gemm_cycles
        if sub.errors:
            result.errors.append((len(result.cycles) - 1, sub.errors[0][1]))
        b = self.block
        for frame in sub.outputs:
            result.outputs.append(frame)
            if not keep:
                continue
            n = len(frame) // sb
            for i in range(n):
                if self._captured < b.out_beats:
                    self.reuse[b.reuse_addr + self._captured] = (frame[i * sb:(i + 1) * sb], i == n - 1)
                    self._captured += 1


def run(commands, cfg: Config, machine: Machine | None = None, *, no_skip: bool = False) -> Result:
    """Run ``commands`` (one start of the queue) on ``machine`` (fresh by default)."""
    machine = machine or Machine(cfg)
    result = Result()
    for cmd in commands:
        machine.execute(cmd, result, no_skip=no_skip)
    return result
