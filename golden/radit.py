"""RADiT golden models (Park et al., RADiT, §III-B).

compress_fp16 -- the CCU's FP16 -> 4-bit compression (§III-B3, Fig. 6b).
code_distance -- the CCU's comparison: Δ = Σ popcount(code XOR code') (§III-B3, Fig. 6c).
alpha_float / alpha_table -- the α_t schedules of Eq. 3 (sign fixed) and Eq. 4.
dtsm -- dynamic threshold scaling, Algorithm 2 plus Algorithm 1's decision (§III-B2).
redundancy_aware_run -- Algorithm 1 driven by Algorithm 2 on a DiT-like stack (§III-B1).
ToyDiT / dit_trajectory -- a seeded DiT-like block stack and its block inputs.
"""

from __future__ import annotations

import numpy as np

__all__ = ["compress_fp16", "CODE_SATURATED", "code_distance", "delta_bits", "delta_limit",
           "alpha_float", "alpha_table", "dtsm", "THETA_UNSET", "ToyDiT", "RunResult",
           "redundancy_aware_run", "dit_trajectory"]

CODE_SATURATED = 0b0111


def compress_fp16(bits, saturate: bool = True) -> np.ndarray:
    """4-bit CCU code of each FP16 bit pattern in ``bits`` (uint8 array, same shape).

    The first two exponent bits (x[14:13]) are the indicator (Fig. 6b):

    * 00 -- code {0, x[14:12]}: 0000 below 2^-11, 0001 for 2^-11 .. 2^-7;
    * 01 -- code x[13:10]: one code per octave from 2^-7 to 2^1 (1000..1111);
    * 10 -- code x[12:9] + 0010: half-octave steps from 2 to 16 (0010..0111);
    * 11 -- >= 2^9, inf, NaN: 0111 (docs/SPEC.md).

    The paper only defines |x| < 16. With ``saturate`` (docs/SPEC.md default) the
    indicator-10 magnitudes of 16 and above (exponent >= 19) take the largest
    code 0111; without it the literal sum wraps modulo 16. The sign is ignored.
    """
    x = np.asarray(bits)
    if x.dtype.kind not in "ui":
        raise TypeError(f"bits must be an integer array of FP16 patterns, not {x.dtype}")
    x = x.astype(np.uint32) & 0xFFFF
    indicator = (x >> 13) & 0b11
    case1 = (x >> 12) & 0b111           # {0, x[14:12]}
    case2 = (x >> 10) & 0b1111          # x[13:10]
    case3 = (((x >> 9) & 0b1111) + 0b0010) & 0b1111
    if saturate:
        exponent = (x >> 10) & 0x1F
        case3 = np.where(exponent >= 19, CODE_SATURATED, case3)
    code = np.select([indicator == 0, indicator == 1, indicator == 2],
                     [case1, case2, case3], default=CODE_SATURATED)
    return code.astype(np.uint8)


# ---------------------------------------------------------------------------
# CCU compare (§III-B3, Fig. 6c; docs/SPEC.md "CCU: compare")
# ---------------------------------------------------------------------------

_POPCOUNT4 = np.array([bin(v).count("1") for v in range(16)], dtype=np.int64)


def delta_bits(max_elements: int) -> int:
    """Width of the Δ counter for blocks of up to ``max_elements`` FP16 values.

    Δ ≤ 4 bits x ``max_elements``, so the counter needs the bit length of
    ``4 * max_elements`` bits (21 for DiT-XL/2's 256 x 1152 feature map).
    """
    if max_elements < 1:
        raise ValueError(f"max_elements must be >= 1, not {max_elements!r}")
    return (4 * max_elements).bit_length()


def delta_limit(max_elements: int) -> int:
    """Value the saturating Δ counter sticks at: all ones of :func:`delta_bits`."""
    return (1 << delta_bits(max_elements)) - 1


def code_distance(prev_codes, cur_codes, *, limit: int | None = None) -> int:
    """Δ between two timesteps' 4-bit codes of one block input: Σ popcount(XOR).

    Fig. 6c: the compressed current input is compared bit by bit with the
    compressed input of the previous timestep, differing bits count 1, and
    their sum is the difference Δx_t. ``limit`` clamps the sum the way the
    hardware's saturating counter does (docs/SPEC.md); ``None`` gives the exact sum.
    """
    a = np.asarray(prev_codes)
    b = np.asarray(cur_codes)
    if a.shape != b.shape:
        raise ValueError(f"code arrays differ in shape: {a.shape} vs {b.shape}")
    total = int(_POPCOUNT4[(a.astype(np.int64) ^ b.astype(np.int64)) & 0xF].sum())
    return total if limit is None else min(total, int(limit))


# ---------------------------------------------------------------------------
# α schedules (§III-B2, Eq. 3 and 4)
# ---------------------------------------------------------------------------

def alpha_float(T: int, schedule: str = "linear") -> np.ndarray:
    """α_t for t = 0..T (index t) as float64.

    α rises from 0 at t = T to 1 at t = 0 (the paper's text). Linear: Eq. 3
    with its sign fixed, α_t = (T − t)/T (as printed, (t − T)/T, it would be
    negative). Cosine: Eq. 4, α_t = ½(1 − cos(π (T − t)/T)).
    """
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"T must be a positive integer, not {T!r}")
    frac = (T - np.arange(T + 1, dtype=np.float64)) / T
    if schedule == "linear":
        return frac
    if schedule == "cosine":
        return 0.5 * (1.0 - np.cos(np.pi * frac))
    raise ValueError(f"schedule must be 'linear' or 'cosine', not {schedule!r}")


def alpha_table(T: int, schedule: str = "linear", frac_bits: int = 15) -> np.ndarray:
    """The host's α table: α_t for t = 0..T as unsigned fixed point (int64).

    Entry t is round-half-up(α_t · 2^frac_bits) = floor(α_t · 2^frac_bits + ½),
    so α = 1 is 2^frac_bits; the table needs frac_bits + 1 bits per entry.
    """
    if frac_bits < 0:
        raise ValueError(f"frac_bits must be >= 0, not {frac_bits!r}")
    return np.floor(alpha_float(T, schedule) * (1 << frac_bits) + 0.5).astype(np.int64)


# ---------------------------------------------------------------------------
# DTSM: Algorithm 2 (threshold update) + the skip decision of Algorithm 1
# ---------------------------------------------------------------------------

THETA_UNSET = -1
"""Threshold reported by :func:`dtsm` (fixed-point mode) where θ was still unset."""


def dtsm(deltas, alphas, *, alpha_frac: int | None = 15, decide_before_update: bool = False):
    """Dynamic threshold scaling over ``S`` measured timesteps of ``N`` blocks.

    Parameters
    ----------
    deltas : (S, N) integer array
        Measured Δ of every block at ``S`` consecutive timesteps, in execution
        order (t = T−1 down to ...; the run's first timestep has no Δ and is
        not part of this array).
    alphas : (S,) array
        α of each of those timesteps: unsigned fixed point with ``alpha_frac``
        fractional bits (integers, :func:`alpha_table`), or floats when
        ``alpha_frac`` is ``None``.
    alpha_frac : int or None
        Fixed-point α (default 15, the hardware's ``ALPHA_FRAC``), or ``None``
        for the float version of the same algorithm.
    decide_before_update : bool
        Compare Δ_t with the threshold in force before this timestep's update
        (``True``) or after it (``False``, the default: Fig. 7 updates first).

    Returns
    -------
    thresholds : (S, N) array
        θ in force when each decision was made (int64 in fixed point with
        :data:`THETA_UNSET` where θ was unset; float64 with NaN otherwise).
    skip : (S, N) bool array
        Skip-and-reuse: θ was set and Δ_t < θ.

    Per block n and timestep (docs/SPEC.md "DTSM", Algorithm 2):

    1. θ unset: θ := Δ_t (initialise);
    2. else dd := Δ_t − Δ_prev; if dd > 0 and dd_prev is valid and negative
       (Δ_prev was a local minimum): θ := Δ_prev + α_t · dd, in fixed point
       Δ_prev + floor(α_t · dd / 2^alpha_frac) (an arithmetic shift, so a
       negative product would round towards −∞; with dd > 0 and α ≥ 0 the
       product is never negative); otherwise θ is kept;
    3. skip := θ valid and Δ_t < θ (with θ after or before step 2);
    4. Δ_prev := Δ_t; dd_prev := dd (still invalid after step 1).
    """
    d = np.asarray(deltas)
    if d.ndim != 2:
        raise ValueError(f"deltas must be an (S, N) array, not shape {d.shape}")
    S, N = d.shape
    a = np.asarray(alphas)
    if a.shape != (S,):
        raise ValueError(f"alphas must have shape ({S},), not {a.shape}")
    fixed = alpha_frac is not None
    if fixed:
        if d.dtype.kind not in "ui" or a.dtype.kind not in "ui":
            raise TypeError("fixed-point dtsm needs integer deltas and alphas")
        if np.any(a < 0) or np.any(d < 0):
            raise ValueError("deltas and fixed-point alphas must be non-negative")
        d = d.astype(np.int64)
        a = a.astype(np.int64)
        kind, unset = np.int64, THETA_UNSET
    else:
        d = d.astype(np.float64)
        a = a.astype(np.float64)
        kind, unset = np.float64, np.nan
    theta = np.zeros(N, dtype=kind)
    theta_set = np.zeros(N, dtype=bool)
    prev = np.zeros(N, dtype=kind)
    dd_prev = np.zeros(N, dtype=kind)
    dd_prev_set = np.zeros(N, dtype=bool)
    thresholds = np.empty((S, N), dtype=kind)
    skip = np.empty((S, N), dtype=bool)
    for s in range(S):
        cur = d[s]
        dd = cur - prev
        local_min = theta_set & dd_prev_set & (dd_prev < 0) & (dd > 0)
        if fixed:
            updated = prev + ((a[s] * dd) >> alpha_frac)  # floor, also for negatives
        else:
            updated = prev + a[s] * dd
        new_theta = np.where(theta_set, np.where(local_min, updated, theta), cur)
        if decide_before_update:
            in_force, in_force_set = theta, theta_set
        else:
            in_force, in_force_set = new_theta, np.ones(N, dtype=bool)
        skip[s] = in_force_set & (cur < in_force)
        thresholds[s] = np.where(in_force_set, in_force, unset)
        dd_prev = dd
        dd_prev_set = theta_set.copy()  # dd exists only where θ (hence Δ_prev) was set
        theta = new_theta
        theta_set = np.ones(N, dtype=bool)
        prev = cur
    return thresholds, skip


# ---------------------------------------------------------------------------
# A DiT-like block stack and Algorithm 1 (§II-A, §III-A, §III-B1)
# ---------------------------------------------------------------------------

def _layer_norm(h: np.ndarray) -> np.ndarray:
    mu = h.mean(axis=-1, keepdims=True)
    var = h.var(axis=-1, keepdims=True)
    return (h - mu) / np.sqrt(var + 1e-6)


class ToyDiT:
    """A seeded DiT-like stack of ``blocks`` DNN operation blocks.

    Not a trained model, but shaped like one where RADiT looks (§II-A, Fig. 1,
    Fig. 3): tokens x channels activations on a residual stream, each DNN
    operation block (even n: self-attention, odd n: MLP, so DiT's transformer
    block is two of them) fed through adaptive layer norm whose scale and
    shift come from the timestep embedding, a gated residual add of its
    output, and an x0-predicting head. A DDIM-style deterministic sampler
    (:meth:`step`) turns the prediction into the next latent, so consecutive
    timesteps' block inputs are similar and drift as t falls. Block inputs are
    FP16 and mostly within (−16, 16) (per-channel adaLN gains spread them over
    the CCU's code range). Matrices are low rank (``rank``) to keep large
    stacks fast in NumPy.
    """

    def __init__(self, *, blocks: int = 56, tokens: int = 256, channels: int = 1152,
                 rank: int = 32, seed: int = 0):
        for name, v in (("blocks", blocks), ("tokens", tokens), ("channels", channels), ("rank", rank)):
            if v < 1:
                raise ValueError(f"{name} must be >= 1, not {v!r}")
        self.blocks, self.tokens, self.channels = blocks, tokens, channels
        rng = np.random.default_rng(seed)
        C, r = channels, min(rank, channels)
        f32 = np.float32
        self.rank = r
        self.temb_dim = 16
        self.pos = (0.5 * rng.standard_normal((tokens, C))).astype(f32)
        self.w_in = (rng.standard_normal((C, C)) / np.sqrt(C)).astype(f32) if C <= 256 else None
        self.gain = np.exp(rng.uniform(np.log(0.5), np.log(5.0), size=(blocks, C))).astype(f32)
        self.mod = (0.3 * rng.standard_normal((blocks, 2, self.temb_dim, C)) / np.sqrt(self.temb_dim)).astype(f32)
        self.u = (rng.standard_normal((blocks, 4, C, r)) / np.sqrt(C)).astype(f32)
        self.v = (rng.standard_normal((blocks, 4, r, C)) / np.sqrt(r)).astype(f32)
        self.gate = (0.4 * rng.uniform(0.5, 1.0, size=blocks)).astype(f32)
        self.head_u = (rng.standard_normal((C, r)) / np.sqrt(C)).astype(f32)
        self.head_v = (rng.standard_normal((r, C)) / np.sqrt(r)).astype(f32)

    # -- one timestep of the network -----------------------------------------
    def temb(self, t: float, T: int) -> np.ndarray:
        k = np.arange(self.temb_dim // 2)
        ang = (t / T) * np.pi * (0.5 + 0.25 * k)  # smooth in t, like a sinusoidal embedding's low bands
        return np.concatenate([np.sin(ang), np.cos(ang)]).astype(np.float32)

    def embed(self, x: np.ndarray) -> np.ndarray:
        h = x if self.w_in is None else x @ self.w_in
        return (h + self.pos).astype(np.float32)

    def block_input(self, n: int, h: np.ndarray, temb: np.ndarray) -> np.ndarray:
        """adaLN of the residual stream in front of block n, as FP16 (the CCU's input)."""
        scale = temb @ self.mod[n, 0]
        shift = temb @ self.mod[n, 1]
        y = _layer_norm(h) * (self.gain[n] * (1.0 + scale)) + shift
        return y.astype(np.float16)

    def block(self, n: int, x16: np.ndarray) -> np.ndarray:
        """F(x) of DNN operation block n (gated; added to the residual stream)."""
        x = x16.astype(np.float32) / self.gain[n]
        u, v = self.u[n], self.v[n]
        if n % 2 == 0:  # self-attention, one head in the rank-r space
            q = x @ u[0]
            k = x @ u[1]
            val = x @ u[2]
            s = q @ k.T / np.sqrt(self.rank)
            s = np.exp(s - s.max(axis=1, keepdims=True))
            s /= s.sum(axis=1, keepdims=True)
            out = (s @ val) @ v[2]
        else:  # MLP
            hid = np.maximum(x @ u[0], 0.0) @ v[0]
            out = np.tanh(hid @ u[1]) @ v[1]
        return (self.gate[n] * out).astype(np.float32)

    def head(self, h: np.ndarray) -> np.ndarray:
        """Predicted clean latent x̂0."""
        return (2.0 * np.tanh(_layer_norm(h) @ self.head_u @ self.head_v)).astype(np.float32)

    # -- sampler ---------------------------------------------------------------
    @staticmethod
    def alpha_bar(t: int, T: int) -> float:
        """Cumulative signal fraction ᾱ at timestep t of T (cosine schedule, ᾱ_T ≈ 0.004)."""
        s = 0.008
        f = np.cos(0.5 * np.pi * (t / T * 0.98 + s) / (1 + s)) ** 2
        f0 = np.cos(0.5 * np.pi * s / (1 + s)) ** 2
        return float(f / f0)

    def step(self, x: np.ndarray, x0_hat: np.ndarray, t: int, T: int) -> np.ndarray:
        """Deterministic DDIM step from timestep t to t − 1."""
        ab, ab_prev = self.alpha_bar(t, T), self.alpha_bar(t - 1, T)
        eps = (x - np.sqrt(ab) * x0_hat) / np.sqrt(1.0 - ab)
        return (np.sqrt(ab_prev) * x0_hat + np.sqrt(1.0 - ab_prev) * eps).astype(np.float32)

    def latent(self, seed: int = 1) -> np.ndarray:
        """A seeded Gaussian starting latent x_T (tokens x channels)."""
        return np.random.default_rng(seed).standard_normal((self.tokens, self.channels)).astype(np.float32)


class RunResult:
    """Outcome of :func:`redundancy_aware_run` (arrays are (T, N), row i = timestep T − i).

    ``skip`` -- skip-and-reuse decisions (row 0, the first timestep, never skips);
    ``delta`` -- measured Δ (row 0 is −1: no previous codes); ``theta`` -- θ in
    force at each decision (:data:`THETA_UNSET` where unset; the fixed threshold
    for a fixed policy); ``output`` -- the final latent x_0; ``reference`` -- x_0
    of the run that computes every block; ``error`` -- ‖output − reference‖ /
    ‖reference‖; ``saved`` -- fraction of block computations skipped;
    ``inputs`` -- the FP16 block inputs (T, N, tokens, channels) if requested.
    """

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def __repr__(self):
        return f"RunResult(saved={self.saved:.3f}, error={self.error:.3g})"


def _run(model: ToyDiT, x: np.ndarray, T: int, decide, *, reference: str, limit, keep_inputs: bool):
    """Algorithm 1 over t = T..1 with ``decide(row, deltas_row)`` -> (theta_row, skip_row)."""
    N = model.blocks
    codes_ref = [None] * N
    cached = [None] * N
    skip = np.zeros((T, N), dtype=bool)
    delta = np.full((T, N), -1, dtype=np.int64)
    theta = np.full((T, N), THETA_UNSET, dtype=np.int64)
    inputs = np.empty((T, N, model.tokens, model.channels), dtype=np.float16) if keep_inputs else None
    x = x.astype(np.float32)
    for row, t in enumerate(range(T, 0, -1)):
        temb = model.temb(t, T)
        h = model.embed(x)
        for n in range(N):
            inp = model.block_input(n, h, temb)
            if keep_inputs:
                inputs[row, n] = inp
            codes = _code_lut()[inp.view(np.uint16)]  # = compress_fp16, as a 64 K-entry table lookup
            if row > 0:
                delta[row, n] = code_distance(codes_ref[n], codes, limit=limit)
                th, sk = decide(row, n, int(delta[row, n]))
                theta[row, n] = th
                skip[row, n] = sk
            if skip[row, n]:
                out = cached[n]  # Reuse: F(x_t^n) <- F(x_{t+1}^n)
            else:
                out = cached[n] = model.block(n, inp)  # Compute
            if reference == "previous" or not skip[row, n]:
                codes_ref[n] = codes
            h = h + out
        x = model.step(x, model.head(h), t, T)
    return skip, delta, theta, x, inputs


_LUT = None


def _code_lut() -> np.ndarray:
    global _LUT
    if _LUT is None:
        _LUT = compress_fp16(np.arange(1 << 16, dtype=np.uint32).astype(np.uint16))
    return _LUT


class _Dtsm:
    """Algorithm 2 state for one run, one (t, n) at a time (same rules as :func:`dtsm`)."""

    def __init__(self, N, alphas_by_row, alpha_frac, decide_before_update):
        self.a = alphas_by_row
        self.frac = alpha_frac
        self.dbu = decide_before_update
        self.rows = [[] for _ in range(N)]

    def __call__(self, row, n, delta):
        # Replays block n's Δ history through the vectorised model: exact by construction.
        self.rows[n].append(delta)
        d = np.array(self.rows[n], dtype=np.int64)[:, None]
        th, sk = dtsm(d, np.asarray(self.a[1:row + 1], dtype=np.int64), alpha_frac=self.frac,
                      decide_before_update=self.dbu)
        return int(th[-1, 0]), bool(sk[-1, 0])


def redundancy_aware_run(x, blocks: ToyDiT, *, T: int, schedule: str | None = "linear",
                         fixed_threshold: int | None = None, alpha_frac: int = 15,
                         decide_before_update: bool = False, reference: str = "previous",
                         max_elements: int | None = None, keep_inputs: bool = False,
                         full: "RunResult | None" = None) -> RunResult:
    """Algorithm 1 (redundancy-aware computing) with Algorithm 2's thresholds.

    For t = T down to 1 and blocks n = 1..N (§III-B1): compress the FP16 block
    input x_t^n to 4-bit codes, Δ = :func:`code_distance` against the
    reference codes of block n, and if Δ < θ^n reuse F(x_{t+1}^n), otherwise
    compute F(x_t^n). The first timestep has no previous codes and computes
    every block (docs/SPEC.md).

    Parameters
    ----------
    x : (tokens, channels) float array
        The starting latent x_T.
    blocks : ToyDiT
        The block stack (DNN operation blocks, adaLN, head, sampler).
    T : int
        Denoising timesteps (t = T..1).
    schedule : "linear", "cosine" or None
        α schedule of the dynamic threshold (Eq. 3 / Eq. 4), fixed point with
        ``alpha_frac`` bits as the DTSM computes it. ``None`` with no
        ``fixed_threshold`` computes every block.
    fixed_threshold : int or None
        Use one fixed θ for every block instead (Fig. 4/5a's baseline).
    decide_before_update : bool
        See :func:`dtsm`.
    reference : "previous" or "computed"
        Codes the next timestep is compared with after a skip: the skipped
        timestep's own codes (Algorithm 1 as printed: x_{t+1}) or those of the
        last computed timestep.
    max_elements : int or None
        Saturate Δ like a counter sized for this many elements (None: exact).
    full : RunResult or None
        A previous all-compute run of the same model and latent (saves one run).
    """
    if reference not in ("previous", "computed"):
        raise ValueError(f"reference must be 'previous' or 'computed', not {reference!r}")
    x = np.asarray(x, dtype=np.float32)
    limit = None if max_elements is None else delta_limit(max_elements)
    N = blocks.blocks
    if fixed_threshold is not None:
        th = int(fixed_threshold)
        decide = lambda row, n, d: (th, d < th)  # noqa: E731
    elif schedule is None:
        decide = lambda row, n, d: (THETA_UNSET, False)  # noqa: E731
    else:
        table = alpha_table(T, schedule, alpha_frac)
        by_row = [int(table[t]) for t in range(T, 0, -1)]
        decide = _Dtsm(N, by_row, alpha_frac, decide_before_update)
    skip, delta, theta, out, inputs = _run(blocks, x, T, decide, reference=reference, limit=limit,
                                           keep_inputs=keep_inputs)
    if full is None and (fixed_threshold is not None or schedule is not None):
        full = redundancy_aware_run(x, blocks, T=T, schedule=None, max_elements=max_elements)
    ref = out if full is None else full.output
    err = float(np.linalg.norm(out - ref) / max(np.linalg.norm(ref), 1e-30))
    return RunResult(skip=skip, delta=delta, theta=theta, output=out, reference=ref, error=err,
                     saved=float(skip.mean()), inputs=inputs, T=T, blocks=N)


def dit_trajectory(T: int = 24, blocks: int = 8, tokens: int = 16, channels: int = 32, *,
                   seed: int = 0, rank: int = 16) -> np.ndarray:
    """Block inputs of a ``blocks``-deep :class:`ToyDiT` over ``T`` DDIM timesteps.

    Returns a (T, blocks, tokens, channels) float16 array: row i holds the
    inputs at timestep T − i of the run that computes every block. Seeded:
    the same arguments give the same array.
    """
    model = ToyDiT(blocks=blocks, tokens=tokens, channels=channels, rank=rank, seed=seed)
    run = redundancy_aware_run(model.latent(seed + 1), model, T=T, schedule=None, keep_inputs=True)
    return run.inputs
