"""The digits DiT sampled through the ORBIS accelerator: sampler hooks that run
every linear layer and the attention products on an accelerator backend (the
golden accelerator, or the RTL replaying a recorded slice), with ORBIS's
output-guided token reduction done by the accelerator's MATCH, reduce and
restore (docs/SPEC.md "ORBIS accelerator").

Per timestep: ``STEP`` (the OGM sequencer decides FC / RC). Per block:

* qkv, proj, fc1, fc2: LOAD A, LOAD W, GEMM, STORE ACC on the core (the W8A8
  product of :class:`workloads.hooks.Int8Hooks`);
* attention: the qkv output, INT8 with one scale per call, is LOADed to A --
  a ``reduce`` LOAD, so in an RC step the reduce unit merges it to N - r
  rows (read back with STORE A); per head S = Q·Kᵀ and O = P·V run on the
  array (K and V through the W scratchpad, P = round(127·softmax) through A;
  the softmax runs on the host), the N - r rows of every head going through
  both;
* the SDPA output, INT8 at the proj layer's scale, goes through the
  accumulator and a VECTOR to the stream: in an FC step a ``capture`` VECTOR
  followed by ``MATCH`` (the engine matches it while the array runs on), in
  an RC step a ``restore`` VECTOR (N rows back). ``guide="input"`` captures
  the attention input instead (the input-guided baseline).

Host work takes no accelerator cycles: the backend keeps one run per
timestep (the host keeps the queue fed), so the match engine overlaps the
array across host round trips and a timestep's CYCLES end when both are done.
"""

from __future__ import annotations

import numpy as np

from golden import accel as g
from golden import orbis as gorb
from golden import orbis_accel as go

__all__ = ["OrbisAccelHooks", "GoldenBackend", "bench_config", "BENCH"]

# The bench top: 16x16 array, 16-byte streams, memories for one image of the digits DiT.
BENCH = {"ROWS": 16, "COLS": 16, "A_DEPTH": 1024, "W_DEPTH": 4096, "ACC_DEPTH": 1024, "QUEUE_DEPTH": 8,
         "STREAM_BYTES": 16, "TOKENS": 16, "CHANNELS": 128, "NUM_DST": 4, "LAYERS": 6, "RC_STEPS": 3,
         "SCALE_FRAC": 8, "TOPK_BUFFER": 0}
P_ADDR = 512            # A rows of the attention probabilities


def bench_config(p=BENCH) -> go.Config:
    gemm = g.Config(rows=p["ROWS"], cols=p["COLS"], a_depth=p["A_DEPTH"], w_depth=p["W_DEPTH"],
                    acc_depth=p["ACC_DEPTH"], stream_bytes=p["STREAM_BYTES"])
    return go.Config(gemm=gemm, tokens=p["TOKENS"], channels=p["CHANNELS"], num_dst=p["NUM_DST"],
                     layers=p["LAYERS"], rc_steps=p["RC_STEPS"], scale_frac=p["SCALE_FRAC"],
                     topk_buffer=p["TOPK_BUFFER"])


class GoldenBackend:
    """The golden accelerator, one continuous run per timestep; records every command."""

    def __init__(self, cfg: go.Config, *, record_steps=()):
        self.cfg = cfg
        self.machine = go.Machine(cfg)
        self.cycles = 0
        self.step_cycles = []
        self.counters = dict.fromkeys(("array_busy", "datm_busy", "exposed", "matches", "dropped"), 0)
        self.late = []
        self.match_done = {}        # (step, layer) -> CYCLES of the step's run when the pairs became valid
        self.tag_cycles = {}        # cycles of the attention runs ("attention") and the linears ("linear")
        self.matches = []           # (step, layer, captured features, DatmResult)
        self.record_steps = set(record_steps)
        self.recorded = {}          # step -> list of commands (the step's one run)
        self._step = None
        self._open = False

    def _count(self, res):
        assert not res.errors, res.errors
        self.cycles += res.total_cycles
        self.step_cycles[-1] += res.total_cycles
        for k in self.counters:
            self.counters[k] += res.counters[k]
        self.late[-1] |= res.late
        for layer, out in res.matches:
            self.matches.append((self._step, layer, self.machine.features().copy(), out))
        for layer, at in res.match_done.items():
            self.match_done[(self._step, layer)] = at

    def run(self, cmds, tag="linear"):
        if self._step in self.record_steps:
            self.recorded.setdefault(self._step, []).extend(cmds)
        res = self.machine.run(cmds, final=False, resume=self._open)
        self._open = True
        self._count(res)
        self.tag_cycles[tag] = self.tag_cycles.get(tag, 0) + res.total_cycles
        return res.outputs

    def begin_step(self, step):
        self.end_step()
        self._step = step
        self.step_cycles.append(0)
        self.late.append(0)
        self.run([go.Step(first=step == 0)], "step")

    def end_step(self):
        if self._open:
            res = self.machine.run([], final=True, resume=True)
            self._count(res)
            self._open = False


def _hooks_base():
    from workloads.hooks import Int8Hooks

    return Int8Hooks


class OrbisAccelHooks(_hooks_base()):
    """W8A8 sampler hooks with every GEMM on ``backend`` and ORBIS reduction of SDPA by ``r`` pairs."""

    def __init__(self, model, scales, backend, cfg: go.Config, r: int, *, guide: str = "output",
                 max_iter: int = 16, eps: int = 655, seed: int = 0):
        super().__init__(model, scales)
        if guide not in ("output", "input"):
            raise ValueError(f"guide must be 'output' or 'input', not {guide!r}")
        self.model, self.backend, self.cfg = model, backend, cfg
        self.r, self.guide, self.max_iter, self.eps, self.seed = r, guide, max_iter, eps, seed
        self.tokens, self.hidden, self.heads = model.cfg.tokens, model.cfg.hidden, model.cfg.heads
        assert self.tokens == cfg.tokens and self.hidden == cfg.channels
        self.pairs = {}             # (step, block) -> pairs used (RC) or made (FC)
        self.layer_end = {}         # (step, block) -> last cycle of the block's fc2 (its FC work) in the step's run
        self.kinds = []

    # --- programs ------------------------------------------------------------------
    def _c(self):
        return self.cfg.gemm

    def _linear_program(self, a, w):
        c = self._c()
        m, k = a.shape
        n = w.shape[1]
        return [g.Load("A", 0, g.layout_a(a, c.rows)), g.Load("W", 0, g.layout_w(w, c.rows, c.cols)),
                g.Gemm(m, k, n, 0, 0, 0), g.Store("ACC", 0, m * (n // c.cols))]

    def _acc(self, frames, m, n):
        c = self._c()
        return g.unlayout_acc(g.from_bytes(b"".join(frames), c.cols, 4), m, n, c.cols)

    def begin_step(self, index, t):
        super().begin_step(index, t)
        self.backend.begin_step(index)
        self.kinds.append("RC" if self.backend.machine.rc else "FC")

    def accumulate(self, block, name, xq):
        import torch

        a = xq[0].numpy().astype(np.int64)
        w = self.w[(block, name)][0].T.numpy().astype(np.int64)
        if name == "qkv":
            self._attn_in = a
        frames = self.backend.run(self._linear_program(a, w))
        if name == "fc2":
            self.layer_end[(self.step, block)] = self.backend.machine.now - 1
        return torch.from_numpy(self._acc(frames, a.shape[0], w.shape[1])).double()[None]

    def sdpa(self, block, q, k, v):
        import torch

        assert q.shape[0] == 1, "the accelerator sees one image at a time"
        c = self._c()
        _, h, n, d = q.shape
        rc = self.kinds[-1] == "RC" and self.r > 0
        qkv = torch.cat([q, k, v], dim=1).permute(0, 2, 1, 3).reshape(n, 3 * h * d).double().numpy()
        s_qkv = max(float(np.abs(qkv).max()) / 127, 1e-12)
        xq = np.clip(np.round(qkv / s_qkv), -128, 127).astype(np.int64)
        load = g.Load("A", 0, g.layout_a(xq, c.rows))
        cmds = [go.Reduce(load, block) if self.r > 0 else load]
        if rc:
            pairs = self.backend.machine.pairs[block]
            m = n - len(pairs)
            self.pairs[(self.step, block)] = pairs
            frames = self.backend.run(cmds + [g.Store("A", 0, m * (3 * h * d // c.rows))], "attention")
            xr = g.unlayout_a(np.frombuffer(b"".join(frames), np.int8).astype(np.int64).reshape(-1, c.rows),
                              m, 3 * h * d, c.rows)
        else:
            m = n
            self.backend.run(cmds, "attention")
            xr = xq
        o = np.zeros((m, h * d))
        pad = -(-m // c.cols) * c.cols
        for hh in range(h):
            qh, kh, vh = (xr[:, (j * h + hh) * d:(j * h + hh + 1) * d] for j in range(3))
            kt = np.zeros((d, pad), np.int64)
            kt[:, :m] = kh.T
            frames = self.backend.run([g.Load("W", 0, g.layout_w(kt, c.rows, c.cols)),
                                       g.Gemm(m, d, pad, (hh * d // c.rows) * m, 0, 0),
                                       g.Store("ACC", 0, m * (pad // c.cols))], "attention")
            logits = self._acc(frames, m, pad)[:, :m] * (s_qkv * s_qkv / np.sqrt(d))
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            pq = np.zeros((m, pad), np.int64)
            pq[:, :m] = np.round(p * 127)
            vp = np.zeros((pad, d), np.int64)
            vp[:m] = vh
            frames = self.backend.run([g.Load("A", P_ADDR, g.layout_a(pq, c.rows)),
                                       g.Load("W", 0, g.layout_w(vp, c.rows, c.cols)),
                                       g.Gemm(m, pad, d, P_ADDR, 0, 0), g.Store("ACC", 0, m * (d // c.cols))],
                                      "attention")
            o[:, hh * d:(hh + 1) * d] = self._acc(frames, m, d) * (s_qkv / 127)
        # The SDPA output at the proj layer's INT8 scale, through the accumulator and a VECTOR.
        s = self.scales[(block, "proj")]
        oq = np.clip(np.round(o / s), -128, 127).astype(np.int64)
        vec = g.Vector(m, h * d, 0, mult=1, shift=0, to_stream=True)
        if rc:
            frames = self.backend.run([g.Load("ACC", 0, g.layout_a(oq, c.cols)),
                                       go.Restore(vec, block)], "attention")
        else:
            src = oq if self.guide == "output" else self._attn_in
            cmds = [g.Load("ACC", 0, g.layout_a(src, c.cols)), go.Capture(vec)]
            if self.r > 0:
                cmds.append(go.Match(block, self.r, max_iter=self.max_iter, eps=self.eps, seed=self.seed))
            self.backend.run(cmds, "attention")
            if self.r > 0:
                self.pairs[(self.step, block)] = self.backend.machine.pairs[block]
            frames = [g.to_bytes(g.layout_a(oq, c.cols), 1)]
        full = g.unlayout_a(np.frombuffer(b"".join(frames), np.int8).astype(np.int64).reshape(-1, c.cols),
                            n, h * d, c.cols)
        out = torch.from_numpy(full * s).float().reshape(1, n, h, d).permute(0, 2, 1, 3)
        return out
