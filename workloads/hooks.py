"""Sampler hooks: tracing, the plain INT8 path, and the three accelerators'
golden models running inside the DiT.

Every class here is a :class:`workloads.dit.Hooks`; pass one to
:func:`workloads.dit.sample`. Each technique hook, with its technique
disabled, computes exactly what the plain sampler computes (bit for bit), and
the Ditto hook with its technique enabled computes exactly what the plain INT8
hook computes: tests check both.

* :class:`Recorder` -- max-abs calibration and FP16 / INT8 traces of a run.
* :class:`Int8Hooks` -- W8A8 linear layers: INT8 activations with one scale
  per layer fixed over the run (calibrated max-abs / 127), INT8 weights with
  one scale per output channel, exact integer accumulation, dequantisation.
* :class:`RaditHooks` -- RADiT (§III-B, Algorithms 1 + 2): before each
  attention / MLP sub-block the golden CCU codes its FP16 input
  (:func:`golden.radit.compress_fp16`), Δ = :func:`golden.radit.code_distance`
  against the previous timestep's codes, and the golden DTSM
  (:func:`golden.radit.dtsm`, fixed-point α of :func:`golden.radit.alpha_table`)
  decides whether to reuse the previous timestep's sub-block output.
* :class:`DittoHooks` -- Ditto (§IV-A/B): every linear layer of the INT8 path
  computed by :func:`golden.ditto.linear_step` on INT8 temporal differences,
  with Defo's per-layer decision (:func:`golden.ditto.defo`) from the packed
  cycles (:func:`golden.ditto.pack_cycles`) of the first two timesteps.
* :class:`OrbisHooks` -- ORBIS (§3.1 OGM): on a full-computation (FC) step the
  SDPA output of every block is matched (golden DATM on the FP16 QE's 4-bit
  codes and normalised weights, float DATM, or BSM); the next ``rc_steps``
  reduced-computation (RC) steps reduce
  q, k, v with those pairs before SDPA and restore its output after it.

The accelerators see one image at a time; with a batch of images every hook
keeps its state and decisions per image.
"""

from __future__ import annotations

import numpy as np

from ._torch import require_torch

torch = require_torch()

from golden import ditto, orbis, radit  # noqa: E402

from .dit import LINEARS, Hooks  # noqa: E402

__all__ = ["Recorder", "Int8Hooks", "RaditHooks", "DittoHooks", "OrbisHooks", "fp16_bits",
           "quantize_act", "SUBBLOCKS"]

#: The DNN operation blocks of one transformer block, RADiT's n = 2·block + index.
SUBBLOCKS = ("attn", "mlp")

QMIN, QMAX = -128, 127


def fp16_bits(x) -> np.ndarray:
    """IEEE binary16 bit patterns (uint16) of a tensor, rounded to nearest even."""
    return x.detach().to(torch.float16).cpu().numpy().view(np.uint16)


def quantize_act(x, scale: float):
    """INT8 codes (as a float tensor) clamp(round_half_even(x / scale), -128, 127)."""
    return torch.clamp(torch.round(x / scale), QMIN, QMAX)


# --------------------------------------------------------------------------- recording

class Recorder(Hooks):
    """Records activations of a plain run without changing it.

    ``maxabs[(block, name)]`` is the largest |x| seen at every hooked linear
    input (calibration). With ``trace`` set, per step it keeps the first
    ``trace_samples`` images' FP16 ``attn_in``, ``mlp_in``, ``sdpa`` and, with
    ``scales``, the INT8 inputs ``<linear>_in`` of every linear layer.
    """

    FP16 = ("attn_in", "mlp_in", "sdpa")

    def __init__(self, depth: int, *, trace: bool = False, trace_samples: int | None = None,
                 scales: dict | None = None):
        self.depth = depth
        self.trace = trace
        self.k = trace_samples
        self.scales = scales
        self.maxabs: dict[tuple[int, str], float] = {}
        self.steps: list[dict[str, list]] = []

    def begin_step(self, index, t):
        if self.trace:
            names = list(self.FP16) + ([f"{n}_in" for n in LINEARS] if self.scales else [])
            self.steps.append({n: [None] * self.depth for n in names})

    def _keep(self, x):
        return x if self.k is None else x[: self.k]

    def observe(self, block, name, x):
        if self.trace:
            self.steps[-1][name][block] = self._keep(x).detach().to(torch.float16).numpy()

    def linear(self, block, name, x, layer):
        key = (block, name)
        self.maxabs[key] = max(self.maxabs.get(key, 0.0), float(x.detach().abs().max()))
        if self.trace and self.scales:
            q = quantize_act(self._keep(x), self.scales[key])
            self.steps[-1][f"{name}_in"][block] = q.numpy().astype(np.int8)
        return layer(x)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every traced quantity as one array (steps, blocks, samples, tokens, channels)."""
        return {name: np.stack([np.stack(s[name]) for s in self.steps]) for name in self.steps[0]}

    def scales_from_maxabs(self) -> dict[tuple[int, str], float]:
        """Per-layer INT8 scales: max|x| / 127 (1.0 for an all-zero input)."""
        return {k: (v / QMAX if v > 0 else 1.0) for k, v in self.maxabs.items()}


# --------------------------------------------------------------------------- INT8 path

class Int8Hooks(Hooks):
    """The plain W8A8 path.

    Activations: q = clamp(round_half_even(x / s_l), -128, 127) with the
    per-layer scale s_l fixed over the run. Weights: per output channel o,
    s_w[o] = max|W[o]| / 127, W_q = round_half_even(W / s_w). The product
    A_q · W_qᵀ is exact (float64 holds every partial sum of int8 products
    over ≤ 512 inputs); y = acc · (s_l · s_w) + bias in float32.
    Subclasses replace :meth:`accumulate` (the integer product only).
    """

    def __init__(self, model, scales: dict):
        self.scales = {tuple(k): float(v) for k, v in scales.items()}
        self.w = {}
        for b, blk in enumerate(model.blocks):
            for name in LINEARS:
                layer = blk.attn.qkv if name == "qkv" else blk.attn.proj if name == "proj" else \
                    blk.mlp.fc1 if name == "fc1" else blk.mlp.fc2
                w = layer.weight.detach().double()
                peak = w.abs().amax(dim=1)
                sw = torch.where(peak > 0, peak / QMAX, torch.ones_like(peak))
                wq = torch.round(w / sw[:, None])
                self.w[(b, name)] = (wq, sw)

    def begin_step(self, index, t):
        self.step = index

    def accumulate(self, block: int, name: str, xq):
        """Exact integer A_q · W_qᵀ (float64 tensor, (..., out))."""
        return xq.double() @ self.w[(block, name)][0].T

    def linear(self, block, name, x, layer):
        s = self.scales[(block, name)]
        xq = quantize_act(x, s)
        acc = self.accumulate(block, name, xq)
        sw = self.w[(block, name)][1]
        return (acc * (s * sw)).float() + layer.bias


# --------------------------------------------------------------------------- RADiT

class RaditHooks(Hooks):
    """RADiT skip-and-reuse (Algorithm 1) with the DTSM's thresholds (Algorithm 2).

    Parameters
    ----------
    steps : int
        Denoising steps of the run (RADiT's T); step i has α_{T-i}.
    schedule : "linear", "cosine", "fixed" or None
        α schedule of the DTSM, a fixed θ (``fixed_threshold``) for every block
        (Fig. 4/5a's baseline), or None: never skip (the technique disabled;
        Δ and the L2 change are still measured).
    fixed_threshold : int
        θ for ``schedule="fixed"``.
    alpha_frac, decide_before_update : see :func:`golden.radit.dtsm`.
    reference : "previous" or "computed"
        Codes compared after a skip: the skipped step's (Algorithm 1 as
        printed, docs/SPEC.md default) or the last computed step's.

    Records per (step, sub-block n = 2·block + {0 attn, 1 mlp}, image): ``delta``
    (-1 at step 0), ``skip``, ``theta`` and ``l2`` (‖x_t − x_{t+1}‖₂ of the FP32
    sub-block input).
    """

    def __init__(self, steps: int, schedule: str | None = "linear", *, fixed_threshold: int | None = None,
                 alpha_frac: int = 15, decide_before_update: bool = False, reference: str = "previous"):
        if schedule not in ("linear", "cosine", "fixed", None):
            raise ValueError(f"schedule must be 'linear', 'cosine', 'fixed' or None, not {schedule!r}")
        if schedule == "fixed" and fixed_threshold is None:
            raise ValueError("schedule='fixed' needs fixed_threshold")
        if reference not in ("previous", "computed"):
            raise ValueError(f"reference must be 'previous' or 'computed', not {reference!r}")
        self.S = steps
        self.schedule = schedule
        self.theta_fixed = fixed_threshold
        self.frac = alpha_frac
        self.dbu = decide_before_update
        self.reference = reference
        if schedule in ("linear", "cosine"):
            table = radit.alpha_table(steps, schedule, alpha_frac)
            self.alphas = np.array([table[steps - i] for i in range(steps)], dtype=np.int64)
        self.state: dict[int, dict] = {}
        self.log: list[dict] = []

    def begin_step(self, index, t):
        self.step = index
        self.log.append({})

    def attention(self, block, h, compute):
        return self._run(2 * block, h, compute)

    def mlp(self, block, h, compute):
        return self._run(2 * block + 1, h, compute)

    def _run(self, n, h, compute):
        b = h.shape[0]
        codes = radit.compress_fp16(fp16_bits(h)).reshape(b, -1)
        st = self.state.get(n)
        out = compute(h)
        if st is None:  # first timestep: no previous codes, always computed
            self.state[n] = {"codes": codes, "out": out, "x": h, "deltas": []}
            self.log[-1][n] = {"delta": np.full(b, -1), "skip": np.zeros(b, bool),
                               "theta": np.full(b, -1), "l2": np.full(b, np.nan)}
            return out
        delta = np.array([radit.code_distance(st["codes"][i], codes[i]) for i in range(b)], dtype=np.int64)
        st["deltas"].append(delta)
        if self.schedule in ("linear", "cosine"):
            th, sk = radit.dtsm(np.stack(st["deltas"]), self.alphas[1:self.step + 1], alpha_frac=self.frac,
                            decide_before_update=self.dbu)
            theta, skip = th[-1], sk[-1]
        elif self.schedule == "fixed":
            theta, skip = np.full(b, int(self.theta_fixed)), delta < int(self.theta_fixed)
        else:
            theta, skip = np.full(b, -1), np.zeros(b, bool)
        l2 = torch.linalg.vector_norm((h - st["x"]).reshape(b, -1), dim=1).double().numpy()
        if skip.any():
            mask = torch.from_numpy(skip)[:, None, None]
            out = torch.where(mask, st["out"], out)
        keep = skip if self.reference == "computed" else np.zeros(b, bool)
        st["codes"] = np.where(keep[:, None], st["codes"], codes)
        st["out"], st["x"] = out, h
        self.log[-1][n] = {"delta": delta, "skip": skip.astype(bool), "theta": theta, "l2": l2}
        return out

    def records(self) -> dict[str, np.ndarray]:
        """``delta``, ``skip``, ``theta``, ``l2`` as (steps, sub-blocks, images) arrays."""
        n = len(self.log[0])
        return {k: np.stack([np.stack([s[i][k] for i in range(n)]) for s in self.log])
                for k in ("delta", "skip", "theta", "l2")}


# --------------------------------------------------------------------------- Ditto

class DittoHooks(Int8Hooks):
    """The INT8 path with every linear layer computed by the Ditto golden model.

    Step 0 runs on activations (``act``), step 1 on temporal differences, and
    from step 2 on each image's layer follows Defo's decision from its cycles
    of steps 0 and 1 (``defo=False``: differences on every later step;
    ``enabled=False``: activations on every step). The integer result is
    exactly A_q·W_q whatever the mode, so the outputs equal :class:`Int8Hooks`'.

    Cycles of one image's layer on a compute unit of ``pes`` PEs: Σ over its
    token rows of :func:`golden.ditto.pack_cycles`, times ⌈out / pes⌉ passes;
    the A8W8 baseline: :func:`golden.ditto.itc_cycles` times the same passes.

    ``stats`` holds per (step, block, linear): ``counts_temporal`` and
    ``counts_act`` ([zero, low, full] per image), ``cycles_temporal``,
    ``cycles_act``, ``cycles_itc`` (per image) and ``mode`` (1 = differences).
    """

    def __init__(self, model, scales: dict, *, defo: bool = True, enabled: bool = True, pes: int = 16):
        super().__init__(model, scales)
        self.use_defo = defo
        self.enabled = enabled
        self.pes = pes
        self.wint = {k: wq.T.numpy().astype(np.int64) for k, (wq, _) in self.w.items()}
        self.prev: dict = {}
        self.decision: dict = {}
        self.first_cycles: dict = {}
        self.stats: list[dict] = []

    def begin_step(self, index, t):
        super().begin_step(index, t)
        self.stats.append({})

    def _cycles(self, d, passes):
        b, n, k = d.shape
        return ditto.pack_cycles(ditto.classify(d.reshape(b * n, k))).reshape(b, n).sum(axis=1) * passes

    def accumulate(self, block, name, xq):
        key = (block, name)
        b, n, k = xq.shape
        cur = xq.numpy().astype(np.int64)
        w = self.wint[key]
        passes = -(-w.shape[1] // self.pes)
        prev = self.prev.get(key)
        counts = {}
        d_act = cur
        cyc_act = self._cycles(d_act, passes)
        counts["counts_act"] = np.stack([ditto.class_counts(d_act[i]) for i in range(b)])
        if prev is None:
            mode = np.zeros(b, dtype=np.int64)
            cyc_tmp = np.full(b, -1)
            counts["counts_temporal"] = np.full((b, 3), -1)
        else:
            d_tmp = ditto.differences(cur, prev[0], "temporal")
            cyc_tmp = self._cycles(d_tmp, passes)
            counts["counts_temporal"] = np.stack([ditto.class_counts(d_tmp[i]) for i in range(b)])
            if not self.enabled:
                mode = np.zeros(b, dtype=np.int64)
            elif self.step == 1 or not self.use_defo:
                mode = np.ones(b, dtype=np.int64)
                if self.step == 1:
                    self.decision[key] = np.asarray(ditto.defo(self.first_cycles[key], cyc_tmp), dtype=np.int64)
            else:
                mode = self.decision[key]
        if self.step == 0:
            self.first_cycles[key] = cyc_act
        out = np.empty((b * n, w.shape[1]), dtype=np.int64)
        rows_mode = np.repeat(mode, n)
        flat = cur.reshape(b * n, k)
        for m, label in ((0, "act"), (1, "temporal")):
            sel = rows_mode == m
            if not sel.any():
                continue
            p_in = None if prev is None else prev[0].reshape(b * n, k)[sel]
            p_out = None if prev is None else prev[1][sel]
            out[sel], _ = ditto.linear_step(p_in, flat[sel], w, p_out, label)
        self.prev[key] = (cur, out)
        self.stats[-1][key] = {**counts, "cycles_act": cyc_act, "cycles_temporal": cyc_tmp,
                               "cycles_itc": np.full(b, ditto.itc_cycles(n, k) * passes), "mode": mode}
        return torch.from_numpy(out.reshape(b, n, -1)).double()


# --------------------------------------------------------------------------- ORBIS

class OrbisHooks(Hooks):
    """ORBIS output-guided token reduction of SDPA (§3.1 OGM, §3.2 DATM).

    Step i is FC when i % (rc_steps + 1) == 0, otherwise RC. On FC steps SDPA
    runs on all tokens and its output (tokens x channels, heads concatenated)
    is matched per image and block by ``method``:

    * ``"datm"``: the FP16 QE (:func:`golden.orbis.quantize_channelwise_fp16`
      on the output rounded to binary16: 4-bit codes and scales normalised to
      the largest channel's with ``qe_frac`` fraction bits) then the 4-bit
      :func:`golden.orbis.datm` (the DATM engine's arithmetic, weights
      round(sigma_c^2 / 2^qe_frac)); ``qe_frac`` = 16 keeps every channel of
      the digits DiT's SDPA outputs (the weakest is about 2^-8 of the largest
      in amplitude, 2^-16 in weight; docs/SPEC.md "Quantization engine");
    * ``"datm-float"``: DATM on the float activations;
    * ``"bsm"``: :func:`golden.orbis.bsm` (ToMe's bipartite soft matching).

    On RC steps the rows of q, k and v (all heads) are merged with
    :func:`golden.orbis.reduce` (size-weighted mean), SDPA runs on the
    N − ``r`` kept tokens, and :func:`golden.orbis.restore` copies each merged
    output back to its srcs. ORBIS reduces only SDPA (§3.1), so the qkv and
    proj linears run on all tokens. ``r = 0`` is the plain sampler.

    Records ``pairs[(step, block)]`` (per image (r, 2) arrays, FC steps only),
    ``iterations[(step, block)]`` and ``dropped[(step, block)]`` (per image,
    DATM iterations and channels with max|x_c| > 0 but DAU weight 0; ``"datm"``
    only) and ``kinds`` (FC/RC per step).
    """

    def __init__(self, r: int, method: str = "datm", *, rc_steps: int = 3, num_dst: int = 8,
                 eps: float = 0.01, max_iter: int = 16, seed: int = 0, qe_frac: int = 16):
        if method not in ("datm", "datm-float", "bsm"):
            raise ValueError(f"method must be 'datm', 'datm-float' or 'bsm', not {method!r}")
        if r < 0:
            raise ValueError(f"r must be >= 0, not {r!r}")
        self.r = r
        self.method = method
        self.rc_steps = rc_steps
        self.num_dst = num_dst
        self.eps = eps
        self.max_iter = max_iter
        self.seed = seed
        self.qe_frac = qe_frac
        self.current: dict[int, list] = {}
        self.pairs: dict = {}
        self.iterations: dict = {}
        self.dropped: dict = {}
        self.kinds: list[str] = []

    def begin_step(self, index, t):
        self.step = index
        self.kinds.append("FC" if index % (self.rc_steps + 1) == 0 else "RC")

    def match(self, x: np.ndarray) -> np.ndarray:
        """Pairs for one image's SDPA output ``x`` (tokens x channels)."""
        if self.method == "bsm":
            return orbis.bsm(x, self.r)
        if self.method == "datm":
            q, sigma = orbis.quantize_channelwise_fp16(x, self.qe_frac)
            res = orbis.datm(q, sigma, num_dst=self.num_dst, k=self.r, eps=self.eps, max_iter=self.max_iter,
                              seed=self.seed, quantized=True, fixed=True, scale_frac=self.qe_frac)
            weights = orbis.scale_weights(sigma, self.qe_frac)
            self.dropped.setdefault((self.step, self._block), []).append(orbis.dropped_channels(x, weights))
        else:
            res = orbis.datm(x, None, num_dst=self.num_dst, k=self.r, eps=self.eps, max_iter=self.max_iter,
                             seed=self.seed, quantized=False)
        self.iterations.setdefault((self.step, self._block), []).append(res.iterations)
        return res.pairs

    def observe(self, block, name, x):
        if name == "sdpa" and self.r > 0 and self.kinds[-1] == "FC":
            self._block = block
            xs = x.detach().double().numpy()
            self.current[block] = [self.match(xs[i]) for i in range(xs.shape[0])]
            self.pairs[(self.step, block)] = self.current[block]

    def sdpa(self, block, q, k, v):
        if self.r == 0 or self.kinds[-1] == "FC" or block not in self.current:
            return super().sdpa(block, q, k, v)
        b, h, n, d = q.shape
        qkv = torch.cat([q, k, v], dim=1).permute(0, 2, 1, 3).reshape(b, n, 3 * h * d).double().numpy()
        red = np.stack([orbis.reduce(qkv[i], self.current[block][i])[0] for i in range(b)])
        m = red.shape[1]
        red = torch.from_numpy(red).float().reshape(b, m, 3 * h, d).permute(0, 2, 1, 3)
        qr, kr, vr = red[:, :h], red[:, h:2 * h], red[:, 2 * h:]
        o = super().sdpa(block, qr.contiguous(), kr.contiguous(), vr.contiguous())  # (b, h, m, d)
        o = o.permute(0, 2, 1, 3).reshape(b, m, h * d).numpy()
        full = np.stack([orbis.restore(o[i], self.current[block][i]) for i in range(b)])
        return torch.from_numpy(full).reshape(b, n, h, d).permute(0, 2, 1, 3)

    def sdpa_fraction(self, tokens: int) -> float:
        """SDPA work of the run relative to full computation ((N−r)² per RC step)."""
        rc = sum(k == "RC" for k in self.kinds) if self.r else 0
        s = len(self.kinds)
        return ((s - rc) * tokens ** 2 + rc * (tokens - self.r) ** 2) / (s * tokens ** 2)
