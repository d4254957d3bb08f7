"""The RADiT accelerator top as the system model prices it (docs/SPEC.md
"System model", validation; "RADiT accelerator", host split and cycle
schedule): :func:`golden.system.model.radit_run` with ``top=RaditTop(cfg)``
composes these pieces instead of the paper-scale array and CCU, so that at
the top's own configuration the run's cycles are the sum of the CYCLES
counters of the host's runs and its DRAM bytes are the bytes the host
interface moved.

Every figure comes from the golden top (:func:`golden.radit_accel.command_cycles`
on :func:`golden.accel.command_cycles`) applied to the host's program
(:func:`golden.radit_accel.linear_program`) in the host's runs:

* a sub-block at a step opens with a run of BLOCK_BEGIN alone (its FP16
  input in), after which the host reads the decision;
* computed: a run per linear layer (LOAD A, LOAD W, GEMM, STORE ACC), then a
  run of BLOCK_END alone;
* skipped: the sub-block's program without data and BLOCK_END, in runs of at
  most ``queue_depth`` commands: every command of the program is dropped
  (fetch and decode), BLOCK_END streams the stored output back;
* each run costs one cycle more than its commands (the start);
* SDPA, layer norm, modulation and the rest run on the host and take no
  accelerator cycles (attention products price at zero).

Imports golden.* only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from golden import accel as ga
from golden import radit_accel as gr

from .configs import Layer
from .model import Cost

__all__ = ["RaditTop"]

RUN_START = 1   # a run's CYCLES include the cycle of its start (golden.radit_accel.Result.total_cycles)


@dataclass(frozen=True)
class RaditTop:
    """Costs of the RADiT top's host runs: ``cfg`` the golden top's
    configuration, ``queue_depth`` the command queue (the longest run)."""

    cfg: gr.Config
    queue_depth: int = 8

    def __post_init__(self):
        if not isinstance(self.cfg, gr.Config):
            raise TypeError(f"cfg must be a golden.radit_accel.Config, not {type(self.cfg).__name__}")
        if not isinstance(self.queue_depth, int) or isinstance(self.queue_depth, bool):
            raise TypeError(f"queue_depth must be an int, not {type(self.queue_depth).__name__}")
        if self.queue_depth < 2:
            raise ValueError(f"queue_depth must be at least 2, not {self.queue_depth}")

    @property
    def stream_bytes(self) -> int:
        return self.cfg.gemm.stream_bytes

    def on_top(self, layer: Layer) -> bool:
        """Whether ``layer`` runs on the accelerator (the linears; SDPA is the host's)."""
        return layer.kind == "linear"

    def program(self, layer: Layer, *, keep: bool = False) -> list:
        """The host's program of ``layer`` (zero data of the layer's shapes)."""
        return gr.linear_program(np.zeros((layer.m, layer.k), np.int64), np.zeros((layer.k, layer.n), np.int64),
                                 self.cfg.gemm, keep=keep)

    def _command(self, cmd) -> int:
        inner = cmd.cmd if isinstance(cmd, gr.Output) else cmd
        return gr.command_cycles(inner, self.cfg, core_run=ga.command_cycles(inner, self.cfg.gemm) + RUN_START)

    def layer(self, layer: Layer):
        """A computed linear: one run of its program; LOAD data in, the STORE out."""
        if not self.on_top(layer):
            return Cost()
        prog = self.program(layer)
        g = self.cfg.gemm
        cycles = layer.count * (sum(self._command(c) for c in prog) + RUN_START)
        a_in, w_in = (c.data.size * g.lane_bytes(c.mem) for c in prog[:2])
        out = prog[3].rows * g.beats_per_row("ACC") * self.stream_bytes
        dram = {"act_in": layer.count * a_in, "weights": layer.count * w_in, "act_out": layer.count * out}
        return Cost(cycles=cycles, compute=cycles, macs=layer.macs, dram=dram)

    def out_beats(self, layers: list[Layer]) -> int:
        """Beats of the sub-block's output (its last linear's accumulator), kept for reuse."""
        last = [lay for lay in layers if self.on_top(lay)][-1]
        return self.program(last)[3].rows * self.cfg.gemm.beats_per_row("ACC")

    def detect(self, elements: int):
        """The BLOCK_BEGIN run: the sub-block's ``elements`` FP16 values in,
        compressed, compared and decided."""
        beats = -(-int(elements) // self.cfg.lanes)
        cycles = gr.command_cycles(gr.BlockBegin(0, 0, np.zeros((beats, self.cfg.lanes)), 1), self.cfg) + RUN_START
        return Cost(cycles=cycles, compute=cycles, dram={"block_in": beats * self.stream_bytes})

    def computed_end(self):
        """The BLOCK_END run of a computed sub-block."""
        cycles = gr.command_cycles(gr.BlockEnd(), self.cfg) + RUN_START
        return Cost(cycles=cycles, compute=cycles)

    def skipped(self, layers: list[Layer]):
        """A skipped sub-block after its BLOCK_BEGIN: the dropped program and
        BLOCK_END replaying the stored output, in runs of ``queue_depth``."""
        dropped = sum(len(self.program(lay)) * lay.count for lay in layers if self.on_top(lay))
        beats = self.out_beats(layers)
        runs = -(-(dropped + 1) // self.queue_depth)
        cycles = (dropped * gr.command_cycles(None, self.cfg, dropped=True)
                  + gr.command_cycles(gr.BlockEnd(), self.cfg, skip=True, out_beats=beats) + runs * RUN_START)
        return Cost(cycles=cycles, compute=cycles, dram={"reuse_out": beats * self.stream_bytes})
