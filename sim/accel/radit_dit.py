"""The digits DiT sampled through the RADiT accelerator: sampler hooks that
hand every DNN operation block (attention, MLP) to an accelerator backend,
either the RTL (through the testbench) or the golden model.

Per sub-block n = 2·block + {0 attention, 1 MLP} at step i: BLOCK_BEGIN with
the sub-block's FP16 input (one image, ``tokens x hidden`` values) and
t = steps − i (the α row; RADiT's α_{T−i}); the backend's decision decides
what happens next. On compute the sub-block runs in the sampler and each of
its linear layers is one GEMM program on the accelerator (LOAD A, LOAD W,
GEMM, STORE ACC: the INT32 product of the W8A8 path of
:class:`workloads.hooks.Int8Hooks`); the last linear's STORE (proj, fc2) is
the block's output and is kept for reuse. On skip BLOCK_END returns that
stored accumulator and the host dequantises it as it did when it was
computed. Layer norm, adaLN modulation, SDPA, GELU, dequantisation and bias
run on the host (docs/SPEC.md "RADiT accelerator", host split).
"""

from __future__ import annotations

import numpy as np

from golden import accel as g
from golden import radit_accel as gr
from golden.radit import alpha_table

__all__ = ["AccelHooks", "GoldenBackend", "bench_config", "BENCH"]

# The bench top: 16x16 array, 16-byte streams, memories for one image of the digits DiT.
BENCH = {"ROWS": 16, "COLS": 16, "A_DEPTH": 512, "W_DEPTH": 4096, "ACC_DEPTH": 512, "QUEUE_DEPTH": 8,
         "STREAM_BYTES": 16, "BLOCKS": 12, "TIMESTEPS": 50, "CODE_DEPTH": 3072, "REUSE_DEPTH": 6144,
         "ALPHA_FRAC": 15}


def bench_config(p=BENCH) -> gr.Config:
    gemm = g.Config(rows=p["ROWS"], cols=p["COLS"], a_depth=p["A_DEPTH"], w_depth=p["W_DEPTH"],
                    acc_depth=p["ACC_DEPTH"], stream_bytes=p["STREAM_BYTES"])
    return gr.Config(gemm=gemm, blocks=p["BLOCKS"], timesteps=p["TIMESTEPS"], code_depth=p["CODE_DEPTH"],
                     reuse_depth=p["REUSE_DEPTH"], alpha_frac=p["ALPHA_FRAC"])


class GoldenBackend:
    """The golden accelerator as a backend (no RTL)."""

    def __init__(self, cfg: gr.Config, schedule: str, steps: int, *, no_skip=False, queue_depth=8):
        self.cfg, self.no_skip, self.queue_depth = cfg, no_skip, queue_depth
        self.machine = gr.Machine(cfg)
        for t, a in enumerate(alpha_table(steps, schedule, cfg.alpha_frac)):
            self.machine.set_alpha(t, int(a))
        self.cycles = 0
        self.counters = dict.fromkeys(("dropped", "a_rows_skipped", "w_rows_skipped", "blocks_skipped"), 0)

    def _run(self, cmds):
        res = gr.run(cmds, self.cfg, self.machine, no_skip=self.no_skip)
        assert not res.errors, res.errors
        self.cycles += res.total_cycles
        for k in self.counters:
            self.counters[k] += res.counters[k]
        return res

    def begin(self, cmd):
        d = self._run([cmd]).decisions[0]
        return {"delta": d.delta, "theta": d.theta if d.theta_valid else -1, "skip": bool(d.skip),
                "dtsm_skip": bool(d.dtsm_skip)}

    def run(self, cmds):
        out = []
        for i in range(0, len(cmds), self.queue_depth):
            out += self._run(cmds[i:i + self.queue_depth]).outputs
        return out


def _hooks_base():
    from workloads.hooks import Int8Hooks

    return Int8Hooks


class AccelHooks(_hooks_base()):
    """W8A8 sampler hooks whose GEMMs and skip decisions come from ``backend``."""

    def __init__(self, model, scales, backend, steps: int, cfg: gr.Config):
        super().__init__(model, scales)
        self.model, self.backend, self.S, self.cfg = model, backend, steps, cfg
        self.tokens, self.hidden = model.cfg.tokens, model.cfg.hidden
        self.in_beats = self.tokens * self.hidden // cfg.lanes
        c = cfg.gemm
        self.out_beats = self.tokens * self.hidden * 4 // c.stream_bytes   # INT32 proj / fc2 output
        self.log = []
        self.last = None

    def begin_step(self, index, t):
        super().begin_step(index, t)
        self.log.append({})

    def attention(self, block, h, compute):
        return self._run(2 * block, block, "proj", h, compute)

    def mlp(self, block, h, compute):
        return self._run(2 * block + 1, block, "fc2", h, compute)

    def _layer(self, block, name):
        blk = self.model.blocks[block]
        return blk.attn.proj if name == "proj" else blk.mlp.fc2

    def _run(self, n, block, last, h, compute):
        import torch

        from workloads.hooks import fp16_bits

        assert h.shape[0] == 1, "the accelerator sees one image at a time"
        bits = fp16_bits(h).reshape(-1, self.cfg.lanes)
        cmd = gr.BlockBegin(n, self.S - self.step, bits, self.out_beats, code_addr=n * self.in_beats,
                            reuse_addr=n * self.out_beats, first=self.step == 0)
        d = self.backend.begin(cmd)
        self.log[-1][n] = d
        if d["skip"]:
            # The host queues the sub-block's program as usual (no data): the accelerator drops it.
            frames = self.backend.run(self._skeleton(block, n % 2) + [gr.BlockEnd()])
            acc = self._acc(frames, self.hidden)
            s, sw = self.scales[(block, last)], self.w[(block, last)][1]
            return (torch.from_numpy(acc).double()[None] * (s * sw)).float() + self._layer(block, last).bias
        self.last = last
        out = compute(h)
        assert self.backend.run([gr.BlockEnd()]) == []
        return out

    def _skeleton(self, block, mlp):
        prog = []
        for name in (("fc1", "fc2") if mlp else ("qkv", "proj")):
            k, n = self.w[(block, name)][0].T.shape
            prog += self._program(np.zeros((self.tokens, k), np.int64), np.zeros((k, n), np.int64),
                                  name in ("proj", "fc2"))
        return prog

    def _program(self, a, w, output):
        return gr.linear_program(a, w, self.cfg.gemm, keep=output)

    def _acc(self, frames, n):
        c = self.cfg.gemm
        raw = b"".join(frames)
        return g.unlayout_acc(g.from_bytes(raw, c.cols, 4), self.tokens, n, c.cols)

    def accumulate(self, block, name, xq):
        import torch

        a = xq[0].numpy().astype(np.int64)
        w = self.w[(block, name)][0].T.numpy().astype(np.int64)
        n = w.shape[1]
        frames = self.backend.run(self._program(a, w, name == self.last))
        return torch.from_numpy(self._acc(frames, n)).double()[None]

    def records(self):
        """``delta``, ``theta``, ``skip`` as (steps, sub-blocks) arrays (-1 where none)."""
        N = len(self.log[0])
        out = {}
        for key in ("delta", "theta", "skip"):
            arr = np.array([[s[n][key] for n in range(N)] for s in self.log])
            out[key] = arr
        out["delta"][0] = -1
        return out
