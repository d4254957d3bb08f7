"""Ditto golden models (Kim et al., "Ditto: Accelerating Diffusion Model via
Temporal Value Similarity"; §III–V, and docs/SPEC.md "Ditto").

Difference processing (§IV-A): the first timestep runs a linear layer on the
INT8 activations, later ones on the temporal differences d = A_t − A_{t+1}
(9-bit), and add the previous output: A_t·W = A_{t+1}·W + ΔA·W.

* :func:`classify`, :func:`split` -- the Encoding Unit's zero / low / full
  classes and the hi/lo split of full differences (§V-B, docs/SPEC.md);
* :func:`differences` -- d for the act / temporal / spatial modes;
* :func:`pack`, :func:`pack_cycles` -- docs/SPEC.md's lane-packing rule and its
  cycle model, :func:`encode` the encoder's output beats, :func:`itc_cycles`
  the A8W8 baseline's cycles;
* :func:`pe_step` -- one PE beat (four lane products, hi lanes shifted by 4);
* :func:`linear_step`, :func:`attention_step` -- one timestep of a linear
  layer and of QK / PV with the paper's two difference products (§IV-A);
* :func:`defo`, :class:`DefoTable` -- the Defo decision and table (§IV-B, §V-B);
* :func:`run_network` -- T timesteps of a chain of linear layers with Defo;
* :func:`trajectory` -- a generated INT8 activation trajectory.

Conventions fixed here where docs/SPEC.md is silent (RTL and tests follow them):

* Packing works on *rows*: a row is one reduction vector (the K inputs of one
  output row of A·W). A row's end closes the packed cycle, since the PEs emit
  one result per row; a row without any non-zero element still costs one
  empty cycle that carries the row's end (the PEs must report its zero result).
* A packed cycle is four lanes; :func:`pack` names the element in each lane
  (−1 for an empty lane). A full element sits in an even/odd lane pair with
  its hi part in the even lane and its lo part in the odd one.
* Spatial mode (Ditto+, §IV-B): the previous value of element p is the
  current value of element p − offset (offset = one row of K elements for the
  row-wise differences of FC layers); the first ``offset`` elements of a
  layer use 0 (they are encoded as activations).

This module imports nothing from ``hdl/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "ZERO", "LOW", "FULL", "MODES", "LANES", "CYCLE_MAX",
    "classify", "split", "differences", "lane_operands", "pack", "pack_cycles", "encode",
    "itc_cycles", "pe_step", "linear_step", "attention_step", "class_counts",
    "defo", "DefoTable", "run_network", "trajectory", "matmul",
]

ZERO, LOW, FULL = 0, 1, 2
MODES = ("act", "temporal", "spatial")
LANES = 4            # multipliers per PE = lanes per packed cycle (§V-B, Fig. 12)
CYCLE_MAX = 0xFFFF   # Defo's 16-bit cycle fields saturate here (§V-B, docs/SPEC.md)


def matmul(a, b) -> np.ndarray:
    """Exact integer product (int64), the reference every step must equal."""
    return np.asarray(a, dtype=np.int64) @ np.asarray(b, dtype=np.int64)


# ---------------------------------------------------------------------------
# Encoding Unit (§V-B, Fig. 11)
# ---------------------------------------------------------------------------

def classify(diff) -> np.ndarray:
    """Class of each difference: 0 zero, 1 low (−8 ≤ d ≤ 7: one 4-bit signed
    lane), 2 full (two lanes). The paper's two comparators test the high part
    (d >> 3, all-sign) and the whole value for zero (§V-B); this is the same."""
    d = np.asarray(diff, dtype=np.int64)
    return np.where(d == 0, ZERO, np.where((d >= -8) & (d <= 7), LOW, FULL)).astype(np.int8)


def split(diff) -> tuple[np.ndarray, np.ndarray]:
    """(hi, lo) of full differences: hi = d >> 4 (arithmetic) in [−16, 15],
    lo = d & 0xF in [0, 15], so d = 16·hi + lo exactly (docs/SPEC.md)."""
    d = np.asarray(diff, dtype=np.int64)
    return d >> 4, d & 0xF


def differences(cur, prev=None, mode: str = "temporal", offset: int | None = None) -> np.ndarray:
    """d = cur − prev for ``mode`` (int64, same shape as ``cur``).

    ``act``: prev = 0. ``temporal``: prev is the previous timestep's input.
    ``spatial``: prev of element p is cur[p − offset] over the flattened array
    (0 for p < offset); ``offset`` defaults to one row (the last axis).
    """
    cur = np.asarray(cur, dtype=np.int64)
    if mode == "act":
        return cur.copy()
    if mode == "temporal":
        if prev is None:
            raise ValueError("temporal mode needs prev")
        return cur - np.asarray(prev, dtype=np.int64)
    if mode == "spatial":
        off = cur.shape[-1] if offset is None else int(offset)
        flat = cur.reshape(-1)
        shifted = np.zeros_like(flat)
        if off < flat.size:
            shifted[off:] = flat[:flat.size - off]
        return (flat - shifted).reshape(cur.shape)
    raise ValueError(f"mode must be one of {MODES}, not {mode!r}")


def class_counts(diff) -> np.ndarray:
    """[zero, low, full] element counts of ``diff``."""
    c = classify(diff).reshape(-1)
    return np.bincount(c, minlength=3)[:3].astype(np.int64)


# Packing state machine (docs/SPEC.md rule). State = occupied lanes (4-bit mask).
def _place(occ: int, cls: int):
    """Lane mask an element takes in a cycle with occupancy ``occ``, or None."""
    if cls == LOW:
        for lane in range(LANES):
            if not occ >> lane & 1:
                return 1 << lane
        return None
    for even in range(0, LANES, 2):
        if not occ >> even & 3:
            return 3 << even
    return None


_NEXT = np.zeros((16, 3), dtype=np.int64)   # occupancy after the element
_OPEN = np.zeros((16, 3), dtype=np.int64)   # 1 where the element opens a new cycle
for _occ in range(16):
    _NEXT[_occ, ZERO] = _occ
    for _cls in (LOW, FULL):
        _m = _place(_occ, _cls)
        if _occ == 0 or _m is None:
            _NEXT[_occ, _cls] = _place(0, _cls)
            _OPEN[_occ, _cls] = 1
        else:
            _NEXT[_occ, _cls] = _occ | _m


def pack(classes) -> tuple[np.ndarray, int]:
    """docs/SPEC.md's packing rule on one row: ``(lanes, cycles)``.

    Elements leave in order and zeros are dropped; a low element takes the
    lowest free lane, a full element the lowest free even lane whose odd
    partner is free (hi even, lo odd); a cycle closes at the first element
    that does not fit, and at the end of the row. ``lanes`` is a
    ``(cycles, 4)`` int array of element indices (−1: empty lane). A row
    without a non-zero element is one empty cycle (see the module notes).
    """
    cls = np.asarray(classes).reshape(-1)
    rows: list[list[int]] = []
    occ = 0
    cur = [-1] * LANES
    for idx in np.flatnonzero(cls != ZERO):
        c = int(cls[idx])
        mask = _place(occ, c)
        if mask is None:
            rows.append(cur)
            occ, cur = 0, [-1] * LANES
            mask = _place(0, c)
        occ |= mask
        for lane in range(LANES):
            if mask >> lane & 1:
                cur[lane] = int(idx)
    rows.append(cur)  # the row's end closes the last (or the only, empty) cycle
    lanes = np.array(rows, dtype=np.int64)
    return lanes, len(rows)


def pack_cycles(classes) -> int | np.ndarray:
    """Packed cycles of a row (1-D ``classes``) or of every row (2-D, last
    axis = row; returns an array). Same rule as :func:`pack`, vectorised over
    rows with the occupancy state machine."""
    cls = np.asarray(classes, dtype=np.int64)
    one = cls.ndim == 1
    cls = cls.reshape(1, -1) if one else cls.reshape(-1, cls.shape[-1])
    occ = np.zeros(cls.shape[0], dtype=np.int64)
    cycles = np.zeros(cls.shape[0], dtype=np.int64)
    for k in range(cls.shape[1]):
        c = cls[:, k]
        cycles += _OPEN[occ, c]
        occ = _NEXT[occ, c]
    cycles = np.maximum(cycles, 1)
    return int(cycles[0]) if one else cycles


def itc_cycles(rows: int, k: int) -> int:
    """Cycles of the A8W8 ITC baseline PE (four 8×8 multipliers, no skipping)."""
    return int(rows) * -(-int(k) // LANES)


def lane_operands(diff) -> np.ndarray:
    """5-bit signed operands of a row's differences as laid out by :func:`pack`:
    ``(operand, hi)`` arrays of shape (cycles, 4); hi is 1 on hi lanes."""
    d = np.asarray(diff, dtype=np.int64).reshape(-1)
    lanes, _ = pack(classify(d))
    hi_part, lo_part = split(d)
    cls = classify(d)
    ops = np.zeros(lanes.shape, dtype=np.int64)
    hi = np.zeros(lanes.shape, dtype=np.int64)
    valid = lanes >= 0
    idx = np.where(valid, lanes, 0)
    full = valid & (cls[idx] == FULL)
    even = (np.arange(LANES) % 2 == 0)[None, :]
    ops = np.where(valid & ~full, d[idx], ops)
    ops = np.where(full & even, hi_part[idx], ops)
    ops = np.where(full & ~even, lo_part[idx], ops)
    hi = np.where(full & even, 1, hi)
    return ops, hi


def encode(diff) -> list[dict]:
    """The Encoding Unit's output beats for one row of differences.

    Each beat: ``operand`` (4 signed 5-bit lane operands), ``index`` (element
    index, 0 in empty lanes), ``valid`` (lane holds a part), ``hi`` (hi flags
    of lanes 0 and 2) and ``last`` (the row's final beat).
    """
    d = np.asarray(diff, dtype=np.int64).reshape(-1)
    lanes, cycles = pack(classify(d))
    ops, hi = lane_operands(d)
    beats = []
    for c in range(cycles):
        valid = lanes[c] >= 0
        beats.append({
            "operand": ops[c].copy(),
            "index": np.where(valid, lanes[c], 0),
            "valid": valid.astype(np.int64),
            "hi": np.array([hi[c, 0], hi[c, 2]], dtype=np.int64),
            "last": int(c == cycles - 1),
        })
    return beats


# ---------------------------------------------------------------------------
# Compute Unit (§V-B, Fig. 12)
# ---------------------------------------------------------------------------

def pe_step(operands, hi, weights) -> np.ndarray:
    """Adder-tree output of PE beats: Σ_lane (operand · weight) << (4 if hi).

    ``operands``, ``weights``: (..., 4); ``hi``: (..., 2) flags of lanes 0, 2.
    """
    a = np.asarray(operands, dtype=np.int64)
    w = np.asarray(weights, dtype=np.int64)
    h = np.asarray(hi, dtype=np.int64)
    shift = np.zeros(a.shape, dtype=np.int64)
    shift[..., 0] = 4 * h[..., 0]
    shift[..., 2] = 4 * h[..., 1]
    return ((a * w) << shift).sum(axis=-1)


def linear_step(a_prev, a_cur, w, out_prev=None, mode: str = "temporal"):
    """One timestep of a linear layer (§IV-A, Fig. 7): ``(out, counts)``.

    ``act``: out = A_t·W. ``temporal``: out = out_prev + (A_t − A_{t+1})·W
    (the third stage sums with the previous output). ``spatial`` (Ditto+):
    row differences A_t[r] − A_t[r−1] times W, summed down the rows.
    ``counts`` = [zero, low, full] of the encoded operand, the cycles that
    follow from it are :func:`pack_cycles`.
    """
    a_cur = np.asarray(a_cur, dtype=np.int64)
    d = differences(a_cur, a_prev, mode)
    if mode == "act":
        out = matmul(d, w)
    elif mode == "temporal":
        if out_prev is None:
            raise ValueError("temporal mode needs out_prev")
        out = np.asarray(out_prev, dtype=np.int64) + matmul(d, w)
    else:
        out = np.cumsum(matmul(d, w), axis=0)
    return out, class_counts(d)


def attention_step(a_prev, a_cur, b_prev, b_cur, out_prev):
    """A_t·B_t for QK (A = Q, B = Kᵀ) and PV (A = P, B = V) from the previous
    product with the paper's two difference products (§IV-A):

        A_t·B_t = A_{t+1}·B_{t+1} + A_t·ΔB + ΔA·B_{t+1}

    (A_t and B_{t+1} act as weights). Returns ``(out, counts_a, counts_b)``:
    the product and the class counts of ΔA and ΔB.
    """
    a_prev, a_cur = np.asarray(a_prev, dtype=np.int64), np.asarray(a_cur, dtype=np.int64)
    b_prev, b_cur = np.asarray(b_prev, dtype=np.int64), np.asarray(b_cur, dtype=np.int64)
    da = a_cur - a_prev
    db = b_cur - b_prev
    out = np.asarray(out_prev, dtype=np.int64) + matmul(a_cur, db) + matmul(da, b_prev)
    return out, class_counts(da), class_counts(db)


# ---------------------------------------------------------------------------
# Defo (§IV-B, §V-B)
# ---------------------------------------------------------------------------

def defo(cycles_act, cycles_diff):
    """Defo decision: execute with differences iff cycles_diff < cycles_act,
    both first saturated to 16 bits (docs/SPEC.md; the paper's sentence is inverted)."""
    act = np.minimum(np.asarray(cycles_act, dtype=np.int64), CYCLE_MAX)
    diff = np.minimum(np.asarray(cycles_diff, dtype=np.int64), CYCLE_MAX)
    out = diff < act
    return bool(out) if out.ndim == 0 else out


@dataclass
class DefoTable:
    """The Defo Unit's 512 × 33-bit table: cycles of timestep 1, of timestep 2
    and the decision bit per layer (§V-B). Steps: 0 = first timestep (act),
    1 = second (differences), 2 = any later one (follows the decision)."""

    entries: int = 512
    act: np.ndarray = field(default=None)
    diff: np.ndarray = field(default=None)
    decision: np.ndarray = field(default=None)

    def __post_init__(self):
        self.act = np.zeros(self.entries, dtype=np.int64)
        self.diff = np.zeros(self.entries, dtype=np.int64)
        self.decision = np.zeros(self.entries, dtype=np.int64)

    def record(self, layer: int, step: int, cycles: int) -> None:
        """A layer finished at ``step`` after ``cycles`` cycles (saturated)."""
        cycles = min(int(cycles), CYCLE_MAX)
        if step == 0:  # a new run: the entry starts over
            self.act[layer], self.diff[layer], self.decision[layer] = cycles, 0, 0
        elif step == 1:
            self.diff[layer] = cycles
            self.decision[layer] = int(defo(self.act[layer], cycles))

    def execution(self, layer: int, step: int) -> int:
        """1 = differences, 0 = activations, for ``layer`` at ``step``."""
        if step == 0:
            return 0
        if step == 1:
            return 1
        return int(self.decision[layer])


# ---------------------------------------------------------------------------
# Whole run
# ---------------------------------------------------------------------------

def requantize(acc, shift: int) -> np.ndarray:
    """INT32 layer output to the next layer's INT8 input: ReLU, arithmetic
    shift, clip (a non-linear function, so differences are re-taken after it)."""
    return np.clip(np.maximum(np.asarray(acc, dtype=np.int64), 0) >> shift, -128, 127)


def run_network(inputs, weights, shifts=None, use_defo: bool = True) -> dict:
    """T timesteps of a chain of linear layers with the Ditto algorithm.

    ``inputs``: (T, M, K0) INT8 network inputs, one per timestep in execution
    order; ``weights``: list of INT8 (K_l, K_{l+1}) matrices. The first
    timestep runs every layer on activations, the second on temporal
    differences; Defo then fixes each layer's execution type from the two
    timesteps' packed cycles (with ``use_defo`` False every later step uses
    differences). Between layers: :func:`requantize`. Cycles are compute
    cycles per PE from :func:`pack_cycles`; activation steps go through the
    encoder's ``act`` mode (docs/SPEC.md: zeros skipped, small values in one lane),
    and the memory traffic that motivates Defo in the paper is not modelled.

    Returns ``outputs[t][l]`` (exact layer outputs), ``reference`` (plain
    INT8 matmuls), ``modes``, ``counts`` and ``cycles`` per step and layer,
    the ITC baseline's cycles and the :class:`DefoTable`.
    """
    inputs = np.asarray(inputs, dtype=np.int64)
    n_layers = len(weights)
    shifts = shifts if shifts is not None else [8] * n_layers
    table = DefoTable(max(512, n_layers))
    prev_in = [None] * n_layers
    prev_out = [None] * n_layers
    res = {"outputs": [], "reference": [], "modes": [], "counts": [], "cycles": [], "itc_cycles": [],
           "table": table}
    for t in range(inputs.shape[0]):
        x = inputs[t]
        ref_x = inputs[t]
        outs, refs, modes, counts, cycles, itc = [], [], [], [], [], []
        for layer, w in enumerate(weights):
            step = min(t, 2)
            use_diff = table.execution(layer, step) if use_defo else int(t > 0)
            mode = "temporal" if use_diff else "act"
            out, cnt = linear_step(prev_in[layer], x, w, prev_out[layer], mode)
            cyc = int(np.sum(pack_cycles(classify(differences(x, prev_in[layer], mode)))))
            table.record(layer, step, cyc)
            ref = matmul(ref_x, w)
            prev_in[layer], prev_out[layer] = x, out
            outs.append(out)
            refs.append(ref)
            modes.append(mode)
            counts.append(cnt)
            cycles.append(cyc)
            itc.append(itc_cycles(x.shape[0], x.shape[1]))
            x = requantize(out, shifts[layer])
            ref_x = requantize(ref, shifts[layer])
        for key, val in (("outputs", outs), ("reference", refs), ("modes", modes), ("counts", counts),
                         ("cycles", cycles), ("itc_cycles", itc)):
            res[key].append(val)
    return res


def trajectory(rng: np.random.Generator, steps: int, shape, *, step_lsb: float = 0.75,
               jump_prob: float = 0.05, jump_lsb: float = 30.0, clip_sigma: float = 4.0) -> np.ndarray:
    """A generated INT8 activation trajectory ``(steps, *shape)``.

    A latent x_T ~ N(0, 1) drifts by small Gaussian steps (standard deviation
    ``step_lsb`` quantisation steps) plus rare larger jumps (probability
    ``jump_prob`` per element and step, ``jump_lsb`` steps: the outliers behind
    full-width differences), as activations do across denoising timesteps
    (§III-A); every step is quantised symmetrically to INT8 with a fixed clip
    range of ``clip_sigma`` (a static per-layer scale). The defaults put the
    temporal-difference mix near the paper's 44.48 / 51.52 / 3.99 % (§III-B).
    """
    shape = tuple(np.atleast_1d(shape))
    scale = clip_sigma / 127.0
    x = rng.standard_normal(shape)
    out = np.empty((steps, *shape), dtype=np.int64)
    for t in range(steps):
        out[t] = np.clip(np.rint(x / scale), -128, 127)
        jump = rng.random(shape) < jump_prob
        x = x + scale * (step_lsb * rng.standard_normal(shape) + jump_lsb * jump * rng.standard_normal(shape))
    return out
