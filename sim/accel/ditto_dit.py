"""The digits DiT sampled through the Ditto accelerator: sampler hooks that
hand every linear layer (qkv, proj, fc1, fc2 of every block) to an
accelerator backend, the RTL (through the testbench) or the golden model.

One image. Per linear at step i: LOAD A (the layer's INT8 input, ``tokens x
K``), LAYER (its own Defo entry and step min(i, 2), its own P and O regions,
weights resident since step 0) and STORE O (the INT32 product), which the
host dequantises as :class:`workloads.hooks.Int8Hooks` does; the weights are
loaded once, at step 0 (docs/SPEC.md "Ditto accelerator"). Every product is
checked against the plain ``A_q · W_q`` (``bit_exact``). The temporal
difference mix of every layer at every step (whatever Defo chose) is kept
for the class-mix report: these are the real traces.
"""

from __future__ import annotations

import numpy as np

from golden import ditto as gdt
from golden import ditto_accel as gd

__all__ = ["BENCH", "bench_config", "DittoAccelHooks", "GoldenBackend", "StopSampling", "layout"]

# The bench top: 4 compute units of 16 PEs (64 output columns a pass), 8-lane encoder, 8-byte streams,
# buffers for every layer of the digits DiT for one image.
BENCH = {"CUS": 4, "PES": 16, "LANES": 8, "A_DEPTH": 1024, "W_DEPTH": 18432, "O_DEPTH": 2048, "P_DEPTH": 10752,
         "MAX_K": 512, "DEFO_ENTRIES": 32, "QUEUE_DEPTH": 8, "STREAM_BYTES": 8}
BW_LOG2 = 4   # 16 bytes a cycle for the memory model


def bench_config(p=BENCH, bw_log2=BW_LOG2) -> gd.Config:
    return gd.Config(cus=p["CUS"], pes=p["PES"], lanes=p["LANES"], a_depth=p["A_DEPTH"], w_depth=p["W_DEPTH"],
                     o_depth=p["O_DEPTH"], p_depth=p["P_DEPTH"], max_k=p["MAX_K"], defo_entries=p["DEFO_ENTRIES"],
                     stream_bytes=p["STREAM_BYTES"], bw_log2=bw_log2)


class StopSampling(Exception):
    """Raised by the hooks after ``stop_after`` steps (an RTL slice of a longer run)."""


def layout(model, cfg: gd.Config):
    """Per (block, linear): Defo entry and W / O / P bases; weights tile-major (docs/SPEC.md layouts)."""
    from workloads.dit import LINEARS

    hidden, ratio, tokens = model.cfg.hidden, model.cfg.mlp_ratio, model.cfg.tokens
    shapes = {"qkv": (hidden, 3 * hidden), "proj": (hidden, hidden), "fc1": (hidden, ratio * hidden),
              "fc2": (ratio * hidden, hidden)}
    out, w, o, p = {}, 0, 0, 0
    for b in range(model.cfg.depth):
        for j, name in enumerate(LINEARS):
            k, n = shapes[name]
            nt = n // cfg.cols
            out[(b, name)] = {"layer": 4 * b + j, "k": k, "n": n, "w": w, "o": o, "p": p}
            w, o, p = w + nt * k, o + tokens * nt, p + tokens * k // cfg.lanes
    assert w <= cfg.w_depth and o <= cfg.o_depth and p <= cfg.p_depth, (w, o, p)
    return out


class GoldenBackend:
    """The golden accelerator as a backend: ``run(cmds, key)`` -> (stream frames, layer records, CYCLES)."""

    def __init__(self, cfg: gd.Config, queue_depth=8):
        self.cfg, self.queue_depth = cfg, queue_depth
        self.machine = gd.Machine(cfg)
        self.cycles = 0

    def run(self, cmds, key=None):
        outs, layers, cycles = [], [], 0
        for i in range(0, len(cmds), self.queue_depth):
            res = gd.run(cmds[i:i + self.queue_depth], self.cfg, self.machine)
            assert not res.errors, res.errors
            cycles += res.total_cycles
            outs += res.outputs
            layers += res.layers
        self.cycles += cycles
        return outs, layers, cycles


def _hooks_base():
    from workloads.hooks import Int8Hooks

    return Int8Hooks


class DittoAccelHooks(_hooks_base()):
    """W8A8 sampler hooks whose linear products come from the Ditto accelerator ``backend``."""

    def __init__(self, model, scales, backend, cfg: gd.Config, *, stop_after=None):
        super().__init__(model, scales)
        self.backend, self.cfg, self.stop_after = backend, cfg, stop_after
        self.map = layout(model, cfg)
        self.wint = {key: wq.T.numpy().astype(np.int64) for key, (wq, _) in self.w.items()}
        self.prev = {}
        self.layers = []          # one entry per LAYER executed
        self.mix = []             # (step, name, zero, low, full) of the temporal differences
        self.bit_exact = True

    def begin_step(self, index, t):
        if self.stop_after is not None and index >= self.stop_after:
            raise StopSampling(index)
        super().begin_step(index, t)

    def accumulate(self, block, name, xq):
        import torch

        assert xq.shape[0] == 1, "the accelerator sees one image at a time"
        key = (block, name)
        a = xq[0].numpy().astype(np.int64)
        w = self.wint[key]
        e = self.map[key]
        cfg = self.cfg
        m, k, n = a.shape[0], e["k"], e["n"]
        nt = n // cfg.cols
        cmds = []
        if self.step == 0:
            cmds.append(gd.Load("W", e["w"], np.concatenate([w[:, t * cfg.cols:(t + 1) * cfg.cols]
                                                             for t in range(nt)])))
        cmds += [gd.Load("A", 0, a.reshape(-1, cfg.lanes)),
                 gd.Layer(e["layer"], min(self.step, 2), m, k, n, a=0, w=e["w"], o=e["o"], p=e["p"]),
                 gd.Store("O", e["o"], m * nt)]
        frames, layers, run_cycles = self.backend.run(cmds, key)
        rows = np.frombuffer(b"".join(frames), "<i4").astype(np.int64).reshape(nt, m, cfg.cols)
        acc = rows.transpose(1, 0, 2).reshape(m, n)
        ref = a @ w
        self.bit_exact &= bool(np.array_equal(acc, ref))
        rec = layers[-1]
        if key in self.prev:
            c = gdt.class_counts(a - self.prev[key])
            self.mix.append((self.step, name, *map(int, c)))
        self.prev[key] = a
        self.layers.append({"name": f"b{block}.{name}", "step": self.step, "m": m, "k": k, "n": n,
                            "mode": rec.mode, "cycles": rec.cycles, "compute": rec.compute,
                            "memory": rec.memory, "cycles_act": rec.cycles_act, "cycles_diff": rec.cycles_diff,
                            "decision": bool(rec.decision), "counts": [int(x) for x in rec.counts],
                            "run_cycles": int(run_cycles)})
        return torch.from_numpy(acc).double()[None]
