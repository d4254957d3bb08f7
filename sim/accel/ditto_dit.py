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

__all__ = ["BENCH", "bench_config", "DittoAccelHooks", "GoldenBackend", "StopSampling", "layout",
           "attention_cmds", "attention_regions", "unlayout_o"]

# The bench top: 4 compute units of 16 PEs (64 output columns a pass), 8-lane encoder, 8-byte streams,
# buffers for every layer of the digits DiT for one image.
BENCH = {"CUS": 4, "PES": 16, "LANES": 8, "A_DEPTH": 1024, "W_DEPTH": 20480, "O_DEPTH": 8192, "P_DEPTH": 29184,
         "MAX_K": 512, "DEFO_ENTRIES": 128, "QUEUE_DEPTH": 8, "STREAM_BYTES": 8}
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
    e = 4 * model.cfg.depth
    d = hidden // model.cfg.heads
    wa = w   # one transient region for A_tᵀ, shared by every head
    w += d * -(-tokens // cfg.cols)
    for b in range(model.cfg.depth):
        for h in range(model.cfg.heads):
            for prod, (m, k, n) in (("qk", (tokens, d, tokens)), ("pv", (tokens, tokens, d))):
                reg = attention_regions(cfg, m, k, n, e=e, w=w, o=o, p=p, wa=wa)
                out[(b, h, prod)] = reg
                e, w, o, p = e + 2, reg["w_end"], reg["o_end"], reg["p_end"]
    assert w <= cfg.w_depth and o <= cfg.o_depth and p <= cfg.p_depth and e <= cfg.defo_entries, (w, o, p, e)
    return out


def _pad(x, c):
    return -(-x // c) * c


def attention_regions(cfg: gd.Config, m, k, n, *, e, w, o, p, wa, aa=0):
    """Regions of one S = A·Bᵀ in difference form (A: m x k, B: n x k; m, n padded to C)."""
    c = cfg.cols
    mp, np_ = _pad(m, c), _pad(n, c)
    return {"m": m, "k": k, "n": n, "mp": mp, "np": np_, "e1": e, "e2": e + 1,
            "aa": aa, "ab": aa + mp * k // cfg.lanes, "pa": p, "pb": p + mp * k // cfg.lanes,
            "p_end": p + (mp + np_) * k // cfg.lanes, "wb": w, "w_end": w + k * (np_ // c), "wa": wa,
            "os": o, "orr": o + mp * (np_ // c), "o_end": o + mp * (np_ // c) + np_ * (mp // c)}


def _w_rows(mat, c):
    """(K x N) weights -> W rows, N tiles outer (docs/SPEC.md "Ditto accelerator" layouts)."""
    return np.concatenate([mat[:, j * c:(j + 1) * c] for j in range(mat.shape[1] // c)])


def unlayout_o(frames, rows, n, c):
    """O rows of a LAYER's output (N tiles of ``rows`` rows) -> (rows x n)."""
    data = np.frombuffer(b"".join(frames), "<i4").astype(np.int64).reshape(n // c, rows, c)
    return data.transpose(1, 0, 2).reshape(rows, n)


def attention_cmds(cfg: gd.Config, a, b, step: int, r: dict) -> list:
    """S_t = A_t·B_tᵀ at ``step`` in difference form (docs/SPEC.md "Ditto accelerator", attention):
    S_t = S_{t-1} + ΔA·B_{t-1}ᵀ + (ΔB·A_tᵀ)ᵀ, the second product stored and added transposed
    (TADD); step 0 on activations (S_0 = A_0·B_0ᵀ, P primed with B_0). Rows padded with zeros
    to a multiple of C; ends with STORE O of S (padded)."""
    c = cfg.cols
    A = np.zeros((r["mp"], r["k"]), np.int64)
    B = np.zeros((r["np"], r["k"]), np.int64)
    A[:a.shape[0]], B[:b.shape[0]] = a, b
    mp, np_, k = r["mp"], r["np"], r["k"]
    cmds = [gd.Load("A", r["aa"], A.reshape(-1, cfg.lanes)), gd.Load("A", r["ab"], B.reshape(-1, cfg.lanes))]
    first = gd.Layer(r["e1"], min(step, 1), mp, k, np_, a=r["aa"], w=r["wb"], o=r["os"], p=r["pa"])
    if step == 0:
        cmds += [gd.Load("W", r["wb"], _w_rows(B.T, c)), first,
                 gd.Load("W", r["wa"], _w_rows(A.T, c)),
                 gd.Layer(r["e2"], 0, np_, k, mp, a=r["ab"], w=r["wa"], o=r["orr"], p=r["pb"])]
    else:
        cmds += [first, gd.Load("W", r["wa"], _w_rows(A.T, c)),
                 gd.Layer(r["e2"], 1, np_, k, mp, a=r["ab"], w=r["wa"], o=r["orr"], p=r["pb"], store=True),
                 gd.Tadd(mp, np_, r["orr"], r["os"]), gd.Load("W", r["wb"], _w_rows(B.T, c))]
    return cmds + [gd.Store("O", r["os"], mp * (np_ // c))]


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
        self.attn = []            # one entry per attention product (Q·Kᵀ, P·V of every head)
        self.attn_scale = {}
        self.attn_prev = {}

    def begin_step(self, index, t):
        if self.stop_after is not None and index >= self.stop_after:
            raise StopSampling(index)
        super().begin_step(index, t)

    def _q(self, key, x):
        """INT8 with a scale fixed at the first step (max |x| / 127)."""
        if key not in self.attn_scale:
            peak = float(np.abs(x).max())
            self.attn_scale[key] = peak / 127 if peak > 0 else 1.0
        return np.clip(np.round(x / self.attn_scale[key]), -128, 127).astype(np.int64)

    def sdpa(self, block, q, k, v):
        """The float SDPA for the sampler (the W8A8 path keeps it), and beside it the INT8
        products Q·Kᵀ and P·V of every head on the accelerator in difference form."""
        import torch

        out = super().sdpa(block, q, k, v)
        assert q.shape[0] == 1, "the accelerator sees one image at a time"
        d = q.shape[-1]
        probs = torch.softmax(q[0].double() @ k[0].double().transpose(-1, -2) / d ** 0.5, dim=-1).numpy()
        for h in range(q.shape[1]):
            qi = self._q((block, "q"), q[0, h].double().numpy())
            ki = self._q((block, "k"), k[0, h].double().numpy())
            vi = self._q((block, "v"), v[0, h].double().numpy())
            pi = np.round(probs[h] * 127).astype(np.int64)
            for prod, a, b in (("qk", qi, ki), ("pv", pi, vi.T)):
                r = self.map[(block, h, prod)]
                cmds = attention_cmds(self.cfg, a, b, self.step, r)
                frames, layers, run_cycles = self.backend.run(cmds, (block, h, prod))
                s = unlayout_o(frames, r["mp"], r["np"], self.cfg.cols)[:a.shape[0], :b.shape[0]]
                exact = bool(np.array_equal(s, a @ b.T))
                self.bit_exact &= exact
                key = (block, h, prod)
                if key in self.attn_prev:
                    for nm, x, x0 in (("a", a, self.attn_prev[key][0]), ("b", b, self.attn_prev[key][1])):
                        c = gdt.class_counts(x - x0)
                        self.mix.append((self.step, f"{prod}.{nm}", *map(int, c)))
                self.attn_prev[key] = (a, b)
                c = self.cfg.cols
                tadd = (r["mp"] // c) * (r["np"] // c) * (2 * c + 2) if self.step else 0
                self.attn.append({"name": f"b{block}.h{h}.{prod}", "step": self.step, "exact": exact,
                                  "modes": [x.mode for x in layers], "m": r["mp"], "k": r["k"], "n": r["np"],
                                  "cycles": sum(x.cycles for x in layers) + tadd,
                                  "compute": sum(x.compute for x in layers), "memory": sum(x.memory for x in layers),
                                  "tadd": tadd, "run_cycles": int(run_cycles)})
        return out

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
