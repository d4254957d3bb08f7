"""ORBIS golden models (ORBIS §3-4; docs/SPEC.md "ORBIS").

quantize_channelwise -- the QE's 4-bit channel-wise symmetric quantization (§3.2-3.3).
qe                   -- the same on integer activations with the QE's fixed-point scales.
fixed_scales, scale_weights -- s_c in fixed point and s_c^2 as the DAU uses it.
qe_fp16, quantize_channelwise_fp16 -- the QE on binary16 input: exact codes and
                        scales normalised to the largest channel's (DAU weights
                        that cannot underflow); qe_cycles its cycle model.
dau_distance         -- the DAU's sum_c w_c (q_src - q_dst)^2 (§3.3).
min_tree             -- nearest dst, ties to the lower index (§3.3).
topk_smallest        -- the k smallest (loss, index) keys (§3.3, bitonic network).
init_dst             -- deterministic dst/src initialisation (stride with a seed).
datm                 -- Distribution-Aware Token Matching (§3.2, Algorithm 1),
                        quantized (integer, bit-exact with the RTL) or float.
datm_cycles          -- cycle model of the ``orbis_datm`` engine's schedule.
bsm                  -- ToMe's bipartite soft matching, the baseline (§2.3).
reduce, restore, pair_loss -- apply index pairs (§2.1 steps 2 and 4).
ogm_schedule, ogm_drive    -- Output-Guided Matching: FC timestep, then 3 RC (§3.1).

Pairs are always an ``(r, 2)`` int64 array of (src token, dst token) indices
into the original token order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

__all__ = ["quantize_channelwise", "qe", "fixed_scales", "scale_weights", "qe_fp16",
           "quantize_channelwise_fp16", "fp16_bits", "fp16_decode", "dropped_channels", "qe_cycles",
           "FP16_MAX_FINITE", "dau_distance",
           "min_tree", "topk_smallest", "init_dst", "DatmResult", "datm", "datm_cycles",
           "bsm", "reduce", "restore", "pair_loss", "merge_error", "ogm_schedule",
           "ogm_drive", "bitonic_latency", "QMAX", "QMIN"]

QMAX = 7
QMIN = -8


# --------------------------------------------------------------------------- QE

def quantize_channelwise(x) -> tuple[np.ndarray, np.ndarray]:
    """4-bit channel-wise symmetric quantization of ``x`` (tokens x channels).

    docs/SPEC.md "Quantization engine": s_c = max|x_c| / 7 (s_c = 1 for an all-zero
    channel), q = clamp(round_half_even(x / s_c), -8, 7). Returns ``(q, s)``:
    int8 codes and float64 scales. ``x / s_c`` is evaluated as ``7 x / max|x_c|``,
    which for integer ``x`` is the exactly rounded quotient, so ties are real
    ties (the QE's comparators reproduce this bit for bit).
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x must be tokens x channels, not shape {x.shape}")
    xf = x.astype(np.float64)
    peak = np.max(np.abs(xf), axis=0)
    zero = peak == 0
    scales = np.where(zero, 1.0, peak / QMAX)
    ratio = np.where(zero, xf, xf * QMAX / np.where(zero, 1.0, peak))
    q = np.clip(np.round(ratio), QMIN, QMAX).astype(np.int8)
    return q, scales


def fixed_scales(scales, scale_frac: int) -> np.ndarray:
    """s_c in unsigned fixed point with ``scale_frac`` fraction bits (round to nearest).

    For integer activations s_c = M/7 and M·2^F/7 is never a tie, so this is
    ``(M·2^F + 3) // 7``, the QE's arithmetic.
    """
    return np.round(np.asarray(scales, dtype=np.float64) * (1 << scale_frac)).astype(np.int64)


def qe(x, scale_frac: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The QE on integer activations: ``(q, S)`` with S the fixed-point scales."""
    x = np.asarray(x)
    if x.dtype.kind not in "iu":
        raise TypeError(f"the QE takes integer activations, not {x.dtype}")
    q, s = quantize_channelwise(x)
    peak = np.max(np.abs(x.astype(np.int64)), axis=0)
    fixed = np.where(peak == 0, 1 << scale_frac, (peak * (1 << scale_frac) + 3) // QMAX)
    assert np.array_equal(fixed, fixed_scales(s, scale_frac))
    return q, fixed.astype(np.int64)


def scale_weights(fixed, scale_frac: int) -> np.ndarray:
    """w_c = s_c^2 in fixed point with ``scale_frac`` bits: round(S_c^2 / 2^F), half up."""
    s = np.asarray(fixed, dtype=np.int64)
    half = (1 << scale_frac) >> 1
    return (s * s + half) >> scale_frac


# --------------------------------------------------------------------------- FP16 QE

#: binary16 magnitude that a non-finite input (exponent field 31: inf, NaN) is read as.
FP16_MAX_FINITE = 0x7BFF


def fp16_bits(x) -> np.ndarray:
    """binary16 bit patterns (uint16): ``x`` as is if it is already uint16, else
    ``x`` rounded to binary16 (round to nearest even, as numpy converts)."""
    x = np.asarray(x)
    if x.dtype == np.uint16:
        return x
    return x.astype(np.float16).view(np.uint16)


def fp16_decode(bits) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fields of binary16 patterns as the FP16 QE reads them.

    Returns ``(sign, mag, sig, exp)``: the sign bit, the 15-bit magnitude with
    a non-finite input (exponent field 31) saturated to ``FP16_MAX_FINITE``,
    and the significand and exponent with |x| = sig·2^(exp - 25): sig = 1024 +
    mantissa, exp = field for normal numbers, sig = mantissa, exp = 1 for zero
    and subnormals. Magnitudes of binary16 numbers order like the integers
    ``mag``, so max|x| is an integer maximum.
    """
    b = np.asarray(bits).astype(np.int64)
    sign = (b >> 15) & 1
    mag = b & 0x7FFF
    mag = np.where((mag >> 10) == 0x1F, FP16_MAX_FINITE, mag)
    field = mag >> 10
    sig = np.where(field == 0, mag & 0x3FF, (mag & 0x3FF) | 0x400)
    exp = np.maximum(field, 1)
    return sign, mag, sig, exp


def _rne_ratio(num, den):
    """round_half_even(num / den) for non-negative integer arrays, den > 0 (exact)."""
    q = num // den
    twice = 2 * (num - q * den)
    up = (twice > den) | ((twice == den) & (q % 2 == 1))
    return q + up


def qe_fp16(x, scale_frac: int = 8) -> tuple[np.ndarray, np.ndarray, bool]:
    """The FP16 QE (docs/SPEC.md "Quantization engine", FP16): ``(q, sigma, nonfinite)``.

    ``x`` is tokens x channels, binary16 bit patterns (uint16) or floats
    (rounded to binary16). Per channel M_c = max|x_c| and M = max_c M_c, all
    exact binary16 values:

    * codes q = clamp(round_half_even(7 x / M_c), -8, 7), the quotient rounded
      exactly (rational arithmetic on significands and exponents, ties to even);
      q = 0 for an all-zero channel; |q| <= 7, so the clamp never acts;
    * normalised scales sigma_c = round(M_c·2^F / M) (ties up) with F =
      ``scale_frac``: the scale relative to the largest channel's, so the
      largest is 2^F; sigma = 0 for an all-zero channel (and every channel of an
      all-zero matrix). The DAU weight is the DATM engine's square of it,
      :func:`scale_weights` (w_c = round(sigma_c^2 / 2^F) ≈ (M_c/M)^2·2^F).
    * inf and NaN (exponent field 31) are read as the largest finite magnitude
      with their sign; ``nonfinite`` says whether the matrix held any.

    s_c = M_c/7 is never formed: the common factor M/7 of every scale does not
    change which dst is nearest, which the normalisation drops.
    """
    bits = fp16_bits(x)
    if bits.ndim != 2:
        raise ValueError(f"x must be tokens x channels, not shape {bits.shape}")
    f = int(scale_frac)
    if f < 0:
        raise ValueError(f"scale_frac must be >= 0, not {scale_frac!r}")
    sign, mag, sig, exp = fp16_decode(bits)
    nonfinite = bool(np.any(((bits.astype(np.int64) >> 10) & 0x1F) == 0x1F))
    peak = mag.max(axis=0)
    _, _, psig, pexp = fp16_decode(peak)
    # Codes: 7|x|/M_c = 7·sig·2^exp / (psig·2^pexp), exp <= pexp.
    d = pexp[None, :] - exp
    zero = peak == 0
    den = np.where(zero, 1, psig)[None, :] << d
    qmag = np.where(zero[None, :], 0, _rne_ratio(7 * sig, den))
    q = np.clip(np.where(sign == 1, -qmag, qmag), QMIN, QMAX).astype(np.int8)
    # Normalised scales: M_c / M = csig·2^cexp / (gsig·2^gexp), cexp <= gexp.
    top = peak.max()
    if top == 0:
        return q, np.zeros(peak.shape, dtype=np.int64), nonfinite
    _, _, gsig, gexp = fp16_decode(top)
    twice = (psig << (f + 1)) // (gsig << (gexp - pexp))
    sigma = (twice + 1) >> 1
    return q, sigma.astype(np.int64), nonfinite


def quantize_channelwise_fp16(x, scale_frac: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """:func:`qe_fp16` without the flag: ``(q, sigma)`` for :func:`datm` with
    ``fixed=True`` and the same ``scale_frac``."""
    q, sigma, _ = qe_fp16(x, scale_frac)
    return q, sigma


def dropped_channels(x, weights) -> int:
    """Channels that carry information (max|x_c| > 0) but weight 0 in the DAU."""
    x = np.asarray(x, dtype=np.float64)
    return int(np.sum((np.max(np.abs(x), axis=0) > 0) & (np.asarray(weights) == 0)))


def qe_cycles(num_tokens: int, channels: int, ch_lanes: int, dtype: str = "int8",
              scale_frac: int = 8) -> int:
    """Cycles of ``orbis_qe`` from its first input beat to its last code beat for
    one matrix, with a source that never idles and sinks that never stall.

    From the unit's schedule (``hdl/orbis/orbis_qe.py``), CB = ⌈C/L⌉: N·CB load
    cycles, then per chunk of scales 1 cycle (int8) or F + 3 (fp16: F + 2
    cycles of the shift-subtract division, then the beat), then the codes, the
    first 3 cycles after the last scale, one per cycle.
    """
    cb = -(-channels // ch_lanes)
    per_chunk = 1 if dtype == "int8" else scale_frac + 3
    return 2 * num_tokens * cb + cb * per_chunk + 2


# --------------------------------------------------------------------------- DAU, min tree, top-k

def dau_distance(src, dst, weights) -> np.ndarray:
    """Σ_c w_c (src_c - dst_c)^2 over the last axis (integers, exact)."""
    d = np.asarray(src, dtype=np.int64) - np.asarray(dst, dtype=np.int64)
    return np.sum(np.asarray(weights, dtype=np.int64) * d * d, axis=-1)


def min_tree(values) -> tuple[np.ndarray, np.ndarray]:
    """Minimum over the last axis and its index; ties go to the lower index."""
    v = np.asarray(values)
    idx = np.argmin(v, axis=-1)  # argmin returns the first occurrence
    return np.take_along_axis(v, idx[..., None], axis=-1)[..., 0], idx


def topk_smallest(losses, k: int, valid=None) -> np.ndarray:
    """Indices of the k smallest ``losses`` among the ``valid`` ones, ascending by
    (loss, index); ``k`` is clamped to the number of valid keys."""
    losses = np.asarray(losses)
    idx = np.arange(losses.shape[0])
    if valid is not None:
        idx = idx[np.asarray(valid, dtype=bool)]
    order = idx[np.lexsort((idx, losses[idx]))]
    return order[:max(0, min(int(k), order.size))]


def bitonic_latency(size: int, register_every: int = 1) -> int:
    """Register stages of a pipelined bitonic network of ``size`` (a power of two)."""
    s = max(0, (size - 1).bit_length())
    stages = s * (s + 1) // 2
    if stages == 0 or not register_every:
        return 0
    return -(-stages // register_every)


# --------------------------------------------------------------------------- DATM

def init_dst(n: int, d: int, seed: int) -> np.ndarray:
    """Initial dst slots: token (seed mod n + slot·⌊n/d⌋) mod n for slot 0..d-1 (distinct)."""
    if not 1 <= d < n:
        raise ValueError(f"num_dst must be in 1..{n - 1}, not {d!r}")
    return (seed % n + np.arange(d, dtype=np.int64) * (n // d)) % n


@dataclass
class DatmResult:
    """Outcome of :func:`datm`.

    pairs      (r, 2) (src, dst) token indices of the top-k merges, ascending (loss, src)
    losses     mean pair loss of every iteration (float, in squared activation units)
    totals     total pair loss of every iteration in the engine's integer units
               (quantized variant; floats for the float variant)
    iterations number of pairing passes
    dst        final dst token of every slot (slot order)
    assign     slot of every token (a dst's own slot for dst tokens)
    token_loss pair loss of every token to its dst (0 for dst tokens)
    converged  True if the ε rule stopped it (False: the iteration cap)
    """

    pairs: np.ndarray
    losses: list
    totals: list
    iterations: int
    dst: np.ndarray
    assign: np.ndarray
    token_loss: np.ndarray
    converged: bool
    history: list = field(default_factory=list)  # dst set used by every iteration


def _pairing(feat, weights, dst):
    """Nearest dst slot and distance of every token (dst tokens: own slot, 0)."""
    wf = feat * weights
    self_norm = np.sum(wf * feat, axis=1)
    cross = wf @ feat[dst].T
    dist = self_norm[:, None] + self_norm[dst][None, :] - 2 * cross
    if dist.dtype.kind == "f":
        dist = np.maximum(dist, 0.0)
    loss, slot = min_tree(dist)
    slot = slot.astype(np.int64)
    slot[dst] = np.arange(dst.size)
    loss = loss.copy()
    loss[dst] = 0
    return slot, loss


def _update(feat, weights, dst, slot):
    """Per group, the member minimising Σ_c w_c (n·x_m - Σ_group x)^2 (ties: lower token)."""
    d = dst.size
    n = np.bincount(slot, minlength=d)
    sums = np.zeros((d, feat.shape[1]), dtype=feat.dtype)
    np.add.at(sums, slot, feat)
    diff = n[slot][:, None] * feat - sums[slot]
    err = np.sum(weights * diff * diff, axis=1)
    tokens = np.arange(feat.shape[0])
    order = np.lexsort((tokens, err, slot))  # by slot, then error, then token
    first = np.ones(order.size, dtype=bool)
    first[1:] = slot[order[1:]] != slot[order[:-1]]
    new = dst.copy()
    new[slot[order[first]]] = order[first]
    return new


def datm(x, scales=None, num_dst: int = 16, k: int = 8, eps: float = 0.01, max_iter: int = 16,
         seed: int = 0, quantized: bool = True, *, scale_frac: int = 8, eps_frac: int = 16,
         fixed: bool = False) -> DatmResult:
    """Distribution-Aware Token Matching (ORBIS §3.2, Algorithm 1; docs/SPEC.md "DATM engine").

    Init: dst slots from :func:`init_dst`, every other token a src. Then repeat:
    pairing (every src to its nearest dst, ties to the lower slot), mean pair
    loss L, stop if |L_prev - L| <= ε·L_prev (from the second iteration) or at
    ``max_iter`` iterations, else dst update (per group the member nearest the
    group mean, found division-free as the member minimising
    Σ_c w_c (n·q_m,c - Σ_group q_c)^2, ties to the lower token index). Finally
    the k srcs with the smallest pair loss (ties: lower index) merge into their dst.

    ``quantized=True``: ``x`` holds 4-bit codes and ``scales`` the per-channel
    scales (floats s_c, or with ``fixed=True`` the QE's fixed-point S_c). The
    arithmetic is the engine's: integer weights w_c = round(S_c^2 / 2^F) and an
    ε of ``eps_frac`` fraction bits (|ΔT|·2^E <= round(ε·2^E)·T_prev on the
    integer total T). ``quantized=False``: ``x`` are float activations, squared
    L2 distances, float ε (``scales`` ignored).
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x must be tokens x channels, not shape {x.shape}")
    n = x.shape[0]
    if int(max_iter) < 1:
        raise ValueError(f"max_iter must be >= 1, not {max_iter!r}")
    dst = init_dst(n, int(num_dst), int(seed))
    if quantized:
        feat = x.astype(np.int64)
        if scales is None:
            weights = np.ones(x.shape[1], dtype=np.int64) << scale_frac
            fixed_s = np.ones(x.shape[1], dtype=np.int64) << scale_frac
        else:
            fixed_s = np.asarray(scales, dtype=np.int64) if fixed else fixed_scales(scales, scale_frac)
            weights = scale_weights(fixed_s, scale_frac)
        eps_q = int(round(eps * (1 << eps_frac)))
        unit = float(1 << scale_frac)
    else:
        feat = x.astype(np.float64)
        weights = np.ones(x.shape[1], dtype=np.float64)
        unit = 1.0
    totals, losses, history = [], [], []
    converged = False
    prev = None
    it = 0
    while True:
        history.append(dst.copy())
        slot, loss = _pairing(feat, weights, dst)
        total = loss.sum()
        totals.append(int(total) if quantized else float(total))
        losses.append(float(total) / unit / (n - dst.size))
        it += 1
        if prev is not None:
            if quantized:
                converged = abs(int(prev) - int(total)) * (1 << eps_frac) <= eps_q * int(prev)
            else:
                converged = abs(prev - total) <= eps * prev
        if converged or it >= max_iter:
            break
        dst = _update(feat, weights, dst, slot)
        prev = total
    is_src = np.ones(n, dtype=bool)
    is_src[dst] = False
    srcs = topk_smallest(loss, k, valid=is_src)
    pairs = np.stack([srcs, dst[slot[srcs]]], axis=1).astype(np.int64).reshape(-1, 2)
    return DatmResult(pairs, losses, totals, it, dst, slot, loss, converged, history)


def datm_cycles(n: int, c: int, d: int, ch_lanes: int, iterations: int, k: int, *,
                topk_register_every: int = 3, topk_buffer: int = 0) -> int:
    """Cycles of ``orbis_datm`` from the cycle it accepts ``cmd`` to its last output
    beat, with sources that never idle and sinks that never stall.

    From the engine's documented schedule (``hdl/orbis/orbis_datm.py``), with
    CB = ⌈C/L⌉, CL = 3 + ⌈log2 L⌉ (DAU datapath), ML = ⌈log2 D⌉ (min tree):
    load scales CB and tokens N·CB, init 1; every iteration copy D·CB + 1,
    pairing N·CB + CL + ML + 2 and its loss beat 1; between iterations sum
    N·CB + 1, select N·CB + CL + 2, update 1. Then, for k' = min(k, N - D) > 0,
    one cycle to hand the keys to the top-k unit, its latency (bitonic
    stages / register_every, + 2) and k' pairs; for k' = 0 the final loss beat
    is the last beat.

    With a streaming top-k (``topk_buffer`` K_B > 0) the keys are selected in
    ⌈k'/K_B⌉ passes, each a scan of the N keys (N + 1 cycles) and min(K_B, keys
    left) pops, the last pair one cycle after its pop.
    """
    cb = -(-c // ch_lanes)
    lg = lambda v: max(0, (v - 1).bit_length())
    cl = 3 + lg(ch_lanes)
    ml = lg(d)
    copy = d * cb + 1
    pair = n * cb + cl + ml + 2
    between = (n * cb + 1) + (n * cb + cl + 2) + 1
    final_loss = cb + n * cb + 1 + iterations * (copy + pair + 1) + (iterations - 1) * between
    kk = max(0, min(int(k), n - d))
    if kk == 0:
        return final_loss
    if topk_buffer:
        passes = -(-kk // int(topk_buffer))
        return final_loss + passes * (n + 1) + kk + 1
    size = 1 << lg(n)
    return final_loss + 1 + bitonic_latency(size, topk_register_every) + 2 + kk


# --------------------------------------------------------------------------- BSM baseline

def bsm(x, r: int) -> np.ndarray:
    """ToMe's bipartite soft matching (Bolya & Hoffman, 2023; ORBIS §2.3, Fig. 4a).

    Even-indexed tokens are srcs, odd-indexed tokens dsts; every src's best
    edge is its most cosine-similar dst (ties: lower dst); the ``r`` srcs with
    the best edges (ties: lower src) merge. Returns (r, 2) (src, dst) pairs.
    """
    x = np.asarray(x, dtype=np.float64)
    a = x[0::2]
    b = x[1::2]
    r = max(0, min(int(r), a.shape[0]))
    an = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    bn = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    sim = an @ bn.T
    best = np.argmax(sim, axis=1)
    score = sim[np.arange(a.shape[0]), best]
    order = np.lexsort((np.arange(a.shape[0]), -score))[:r]
    return np.stack([2 * order, 2 * best[order] + 1], axis=1).astype(np.int64).reshape(-1, 2)


# --------------------------------------------------------------------------- reduce / restore

def _check_pairs(pairs, n):
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    src, dst = pairs[:, 0], pairs[:, 1]
    if pairs.size and (src.min() < 0 or dst.min() < 0 or max(src.max(), dst.max()) >= n):
        raise ValueError("pair index out of range")
    if np.unique(src).size != src.size or np.intersect1d(src, dst).size:
        raise ValueError("every src must appear once and never as a dst")
    return src, dst


def reduce(x, pairs, sizes=None) -> tuple[np.ndarray, np.ndarray]:
    """Merge every src into its dst by size-weighted mean (ToMe's merge; §2.1 step 2).

    Returns ``(y, y_sizes)``: the kept tokens (all but the srcs) in original
    order and their sizes. The mean is formed as dst + Σ s_i (x_i - dst) / Σ s,
    so merging identical tokens is exact.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    src, dst = _check_pairs(pairs, n)
    sizes = np.ones(n) if sizes is None else np.asarray(sizes, dtype=np.float64)
    acc = np.zeros_like(x)
    weight = sizes.copy()
    np.add.at(acc, dst, sizes[src][:, None] * (x[src] - x[dst]))
    np.add.at(weight, dst, sizes[src])
    merged = x + acc / weight[:, None]
    keep = np.ones(n, dtype=bool)
    keep[src] = False
    return merged[keep], weight[keep]


def restore(y, pairs) -> np.ndarray:
    """Full-length tokens from the reduced ``y``: every src copies its dst (§2.1 step 4)."""
    y = np.asarray(y)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    n = y.shape[0] + pairs.shape[0]
    src, dst = _check_pairs(pairs, n)
    keep = np.ones(n, dtype=bool)
    keep[src] = False
    out = np.empty((n,) + y.shape[1:], dtype=y.dtype)
    out[keep] = y
    out[src] = out[dst]
    return out


def pair_loss(x, pairs) -> float:
    """Mean squared L2 distance between every src and its dst (0 for no pairs)."""
    x = np.asarray(x, dtype=np.float64)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if pairs.shape[0] == 0:
        return 0.0
    d = x[pairs[:, 0]] - x[pairs[:, 1]]
    return float(np.mean(np.sum(d * d, axis=1)))


def merge_error(x, pairs) -> float:
    """Mean squared error per token of restore(reduce(x)) against x."""
    x = np.asarray(x, dtype=np.float64)
    y, _ = reduce(x, pairs)
    d = restore(y, pairs) - x
    return float(np.mean(np.sum(d * d, axis=1)))


# --------------------------------------------------------------------------- OGM

def ogm_schedule(timesteps: int, rc_steps: int = 3) -> list[str]:
    """FC/RC kind of every timestep: one FC, then ``rc_steps`` RC reusing its pairs (§3.1)."""
    return ["FC" if t % (rc_steps + 1) == 0 else "RC" for t in range(timesteps)]


def ogm_drive(step: Callable, x0, timesteps: int, match: Callable, *, rc_steps: int = 3) -> list[dict]:
    """Run ``timesteps`` of Output-Guided Matching (§3.1, Fig. 5).

    ``step(x, t, pairs)`` computes one timestep's SDPA output: ``pairs`` is None
    on an FC timestep (full computation) and the FC step's pairs on an RC step
    (reduce -> compute -> restore). ``match(output)`` computes pairs from an FC
    timestep's output (the previous-timestep output guides the next RC steps).
    Returns one record per timestep: ``{"t", "kind", "pairs", "output"}``.
    """
    kinds = ogm_schedule(timesteps, rc_steps)
    pairs = None
    x = x0
    out = []
    for t, kind in enumerate(kinds):
        used = None if kind == "FC" else pairs
        x = step(x, t, used)
        if kind == "FC":
            pairs = np.asarray(match(x), dtype=np.int64).reshape(-1, 2)
        out.append({"t": t, "kind": kind, "pairs": used, "output": x})
    return out
