"""System model: cycles, DRAM bytes and energy of a whole DiT run on each
paper's accelerator, composed from the units' cycle models (docs/SPEC.md
"System model").

What is composed, and nothing else:

* compute cycles of a product on a weight-stationary array:
  ``golden.systolic.cycles(...).total`` (the RTL systolic array matches it
  cycle for cycle), or any other cycle model passed as ``cycle_model`` (the
  seam for the accelerator tops' golden models and RTL counters);
* Ditto compute cycles: ``golden.ditto.pack_cycles`` per row (the encoder RTL
  matches it) and ``golden.ditto.itc_cycles`` for the A8W8 baseline;
* ORBIS matching: ``golden.orbis.datm_cycles`` (the DATM engine RTL matches it);
* RADiT skip decisions: a (steps x sub-blocks) matrix, from
  ``golden.radit.redundancy_aware_run`` or any other source;
* DRAM: every layer reads its inputs and weights and writes its output
  (layer-by-layer dataflow, no fusion across layers), in whole bursts
  (:class:`golden.system.dram.Dram`); a layer takes max(compute, DRAM) cycles
  (double-buffered: transfers overlap compute);
* energy: MACs, SRAM bits, register-file bits, DRAM bits and the techniques'
  own units, priced by :class:`golden.system.energy.EnergyTable`.

Costs are :class:`Cost` objects that add; ``compute`` counts the units'
cycles alone, ``cycles`` the layer times (with DRAM stalls and exposed
overheads).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from golden.accel import Config as GemmConfig
from golden.accel import Gemm
from golden.accel import command_cycles as gemm_command_cycles
from golden.ditto import FULL, LOW, ZERO, classify, differences, itc_cycles, pack_cycles
from golden.orbis import datm_cycles, ogm_schedule
from golden.systolic import cycles as systolic_cycle_model

from .configs import CU_PES, Accelerator, Layer, Workload
from .energy import EnergyTable

__all__ = ["Cost", "systolic_cycles", "array_compute_cycles", "array_layer", "DittoRowStats", "row_stats",
           "mix_row_stats", "ditto_layer", "itc_layer", "radit_run", "ditto_run", "orbis_run", "energy_table",
           "expand_skip", "validate_cycles", "gemm_top_cycles", "ACC_BITS"]

ACC_BITS = 32  # INT32 / FP32 partial sums (docs/SPEC.md "Systolic array", "FP16")

CycleModel = Callable[[int, int, int, int, int], int]


def systolic_cycles(m: int, k: int, n: int, rows: int, cols: int) -> int:
    """The default cycle model: ``golden.systolic.cycles(...).total``."""
    return systolic_cycle_model(int(m), int(k), int(n), int(rows), int(cols)).total


def gemm_top_cycles(m: int, k: int, n: int, rows: int, cols: int) -> int:
    """The GEMM accelerator top's cycles for one product: its GEMM command's
    execution (the ``GEMM_CYCLES`` counter, docs/SPEC.md "GEMM core", "Cycle
    schedule"), K and N zero-padded to whole tiles as the host pads them.

    The RTL is held to this model in co-simulation (tests/test_accel_gemm.py
    with :func:`validate_cycles`); passed as ``cycle_model`` it runs the system
    model on the top instead of the bare array (fetch, decode, the first
    scratchpad read and the accumulator write-back included)."""
    rows, cols = int(rows), int(cols)
    cmd = Gemm(int(m), -(-int(k) // rows) * rows, -(-int(n) // cols) * cols, 0, 0, 0)
    # command_cycles counts the command's fetch and decode; GEMM_CYCLES does not.
    return gemm_command_cycles(cmd, GemmConfig(rows=rows, cols=cols)) - 2


def energy_table(acc: Accelerator) -> EnergyTable:
    """The energy table at ``acc``'s node with its DRAM's figure."""
    return EnergyTable.at(acc.node_nm, acc.dram.pj_per_bit, acc.dram.source)


@dataclass
class Cost:
    """Accumulated cost: ``cycles`` (layer times), ``compute`` (unit cycles
    alone), ``macs``, DRAM bytes and energy (pJ) by category."""

    cycles: float = 0
    compute: float = 0
    macs: float = 0
    dram: dict = field(default_factory=dict)
    energy: dict = field(default_factory=dict)

    def add(self, other: "Cost", times: float = 1) -> "Cost":
        self.cycles += times * other.cycles
        self.compute += times * other.compute
        self.macs += times * other.macs
        for mine, theirs in ((self.dram, other.dram), (self.energy, other.energy)):
            for key, v in theirs.items():
                mine[key] = mine.get(key, 0) + times * v
        return self

    @property
    def dram_bytes(self) -> float:
        return sum(self.dram.values())

    @property
    def energy_pj(self) -> float:
        return sum(self.energy.values())

    def seconds(self, clock_hz: float) -> float:
        return self.cycles / clock_hz

    def summary(self, clock_hz: float) -> dict:
        return {"cycles": self.cycles, "compute_cycles": self.compute, "seconds": self.seconds(clock_hz),
                "macs": self.macs, "dram_bytes": self.dram_bytes, "energy_j": self.energy_pj * 1e-12,
                "dram_by_kind": dict(self.dram), "energy_j_by_kind": {k: v * 1e-12 for k, v in self.energy.items()}}


def _moved(acc: Accelerator, nbytes_each: int, count: int) -> int:
    return acc.dram.moved(int(nbytes_each)) * int(count)


def _finish(acc: Accelerator, table: EnergyTable, compute: int, dram: dict, macs: float, mac_pj: float,
            sram_bits: float, rf_bits: float, extra: dict | None = None, local: tuple = (0, 1)) -> Cost:
    """A layer's cost: time = max(compute, DRAM cycles); energy by category.

    ``sram_bits`` are priced at the global memory's size (DRAM fills and
    drains included), ``local`` = (bits, capacity) at a PE-local memory's."""
    total = sum(dram.values())
    stall = acc.dram.cycles(total, acc.clock_hz)
    energy = {"mac": macs * mac_pj, "sram": (sram_bits + 8 * total) * table.sram_bit(acc.sram_bytes)
              + local[0] * table.sram_bit(local[1]),
              "rf": rf_bits * table.rf_bit, "dram": acc.dram.energy_pj(total)}
    for key, v in (extra or {}).items():
        energy[key] = energy.get(key, 0) + v
    return Cost(cycles=max(compute, stall), compute=compute, macs=macs, dram=dict(dram), energy=energy)


# --------------------------------------------------------------------------- systolic arrays

def array_compute_cycles(layer: Layer, acc: Accelerator, *, m: int | None = None, k: int | None = None,
                         n: int | None = None, cycle_model: CycleModel = systolic_cycles) -> int:
    """Cycles of ``layer`` (all ``count`` copies) on ``acc.instances`` arrays.

    One array: ``count`` x the cycle model. Several: copies are dealt out
    whole when there are at least as many copies as arrays (the slowest array
    gets ceil(count / instances)); otherwise each copy's N columns are split
    over instances // count arrays (weights partitioned, inputs broadcast).
    """
    m = layer.m if m is None else m
    k = layer.k if k is None else k
    n = layer.n if n is None else n
    rows, cols = acc.array
    inst = acc.instances
    if inst == 1:
        return layer.count * cycle_model(m, k, n, rows, cols)
    if layer.count >= inst:
        return -(-layer.count // inst) * cycle_model(m, k, n, rows, cols)
    return cycle_model(m, k, -(-n // (inst // layer.count)), rows, cols)


def array_layer(layer: Layer, acc: Accelerator, table: EnergyTable, *, m: int | None = None,
                k: int | None = None, n: int | None = None, cycle_model: CycleModel = systolic_cycles) -> Cost:
    """One layer on the accelerator's systolic arrays (one timestep).

    DRAM: input M x K (and, for attention, the second operand K x N) read,
    weights K x N read, output M x N written, each copy in whole bursts.
    SRAM: DRAM fills and drains, every weight once into the array, every
    activation row once per column tile, every partial sum read and written
    once per K tile. Registers: per MAC the weight, activation and partial sum.
    """
    m = layer.m if m is None else m
    k = layer.k if k is None else k
    n = layer.n if n is None else n
    rows, cols = acc.array
    compute = array_compute_cycles(layer, acc, m=m, k=k, n=n, cycle_model=cycle_model)
    a, w, o = acc.act_bytes, acc.weight_bytes, acc.out_bytes
    c = layer.count
    dram = {"act_in": _moved(acc, m * k * a, c), "act_out": _moved(acc, m * n * o, c)}
    if layer.kind == "linear":
        dram["weights"] = _moved(acc, k * n * w, c)
    else:
        dram["act_in"] += _moved(acc, k * n * a, c)
    tk, tn = math.ceil(k / rows), math.ceil(n / cols)
    sram_bits = c * (k * n * 8 * w + m * k * 8 * a * tn + 2 * m * n * ACC_BITS * tk)
    macs = c * m * k * n
    rf_bits = macs * (8 * w + 8 * a + ACC_BITS)
    return _finish(acc, table, compute, dram, macs, table.mac[acc.mac], sram_bits, rf_bits)


# --------------------------------------------------------------------------- Ditto compute units

@dataclass(frozen=True)
class DittoRowStats:
    """Per-row packing statistics of one reduction length K and one operand
    kind: mean packed cycles per row (``golden.ditto.pack_cycles``) and mean
    multiplier-lane operations per element (low = 1, full = 2, zero = 0)."""

    k: int
    cycles_per_row: float
    lane_ops_per_element: float
    mix: tuple = ()   # (zero, low, full) fractions behind it
    source: str = ""


def row_stats(classes, source: str = "") -> DittoRowStats:
    """Statistics of real rows: ``classes`` (rows x K) from ``golden.ditto.classify``."""
    cls = np.asarray(classes)
    cls = cls.reshape(-1, cls.shape[-1])
    cyc = pack_cycles(cls)
    counts = np.bincount(cls.reshape(-1).astype(np.int64), minlength=3)[:3]
    frac = counts / counts.sum()
    return DittoRowStats(cls.shape[1], float(np.mean(cyc)), float(frac[LOW] + 2 * frac[FULL]),
                         tuple(float(v) for v in frac), source)


def mix_row_stats(k: int, mix, *, rows: int = 256, seed: int = 0, source: str = "") -> DittoRowStats:
    """Statistics of rows whose classes are drawn i.i.d. from ``mix`` =
    (zero, low, full) fractions (a class mix measured elsewhere, applied to a
    layer of reduction length ``k``; runs of zeros in real data pack a little
    better than i.i.d. ones)."""
    p = np.asarray(mix, dtype=np.float64)
    if p.shape != (3,) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError(f"mix must be three non-negative fractions (zero, low, full), not {mix!r}")
    p = p / p.sum()
    rng = np.random.default_rng(seed)
    cls = rng.choice(np.array([ZERO, LOW, FULL]), size=(rows, int(k)), p=p)
    st = row_stats(cls, source)
    return DittoRowStats(int(k), st.cycles_per_row, float(p[LOW] + 2 * p[FULL]), tuple(float(v) for v in p),
                         source)


@functools.lru_cache(maxsize=None)
def full_width_stats(k: int) -> DittoRowStats:
    """docs/SPEC.md "Ditto accelerator": activation mode runs at full 8-bit
    width, every element two lanes, no zero skipped (all elements full)."""
    return row_stats(np.full((1, int(k)), FULL), "activation mode at full width (docs/SPEC.md)")


def ditto_layer(layer: Layer, acc: Accelerator, table: EnergyTable, stats: DittoRowStats, mode: str, *,
                m: int | None = None) -> Cost:
    """One layer on Ditto's compute units in ``mode`` "act", "temporal" or "spatial".

    A compute unit takes one encoded row at a time and its 16 PEs produce 16
    output columns, so a layer is ``count * M * ceil(N / 16)`` row passes of
    ``stats.cycles_per_row`` cycles dealt over the units. Attention in
    temporal mode is two difference products (A_t ΔB + ΔA B_{t+1}, Ditto
    §IV-A), twice the passes. DRAM: input and weights read and output
    written (8-bit); temporal mode also reads the previous input and
    previous output and writes the new output at accumulator width
    (``out_bytes``) for the next step's summation; spatial mode needs neither
    (Ditto §IV-B, Defo+).
    """
    if mode not in ("act", "temporal", "spatial"):
        raise ValueError(f"mode must be 'act', 'temporal' or 'spatial', not {mode!r}")
    m = layer.m if m is None else m
    k, n, c = layer.k, layer.n, layer.count
    products = 2 if (mode == "temporal" and layer.kind == "attention") else 1
    passes = -(-n // CU_PES)
    row_passes = c * m * passes * products
    compute = math.ceil(row_passes * stats.cycles_per_row / acc.compute_units)
    dram = {"act_in": _moved(acc, m * k, c), "act_out": _moved(acc, m * n, c)}
    if layer.kind == "linear":
        dram["weights"] = _moved(acc, k * n, c)
    else:
        dram["act_in"] += _moved(acc, k * n, c)
    if mode == "temporal":
        dram["prev_in"] = _moved(acc, m * k, c) * (2 if layer.kind == "attention" else 1)
        dram["prev_out"] = 2 * _moved(acc, m * n * acc.out_bytes, c)   # read previous, write new
    # An encoded row is broadcast to every unit that holds some of its
    # output columns: each element is read (with its previous value in
    # temporal mode) and encoded once, each weight goes once into its PE's
    # local weight memory, each output is written once.
    elements = c * m * k * products
    lane_ops = elements * passes * stats.lane_ops_per_element * CU_PES
    sram_bits = elements * 8 * (2 if mode == "temporal" else 1) + c * k * n * 8 * products + c * m * n * ACC_BITS
    rf_bits = lane_ops * (5 + 8 + ACC_BITS)
    return _finish(acc, table, compute, dram, lane_ops, table.mac["A4W8"], sram_bits, rf_bits,
                   {"encoder": elements * table.encode_element},
                   local=(lane_ops * 8, acc.params["local_weight_bytes"]))


def itc_layer(layer: Layer, acc: Accelerator, table: EnergyTable) -> Cost:
    """One layer on the ITC baseline: A8W8 PEs, four 8x8 lanes, no skipping
    (``golden.ditto.itc_cycles`` per row), 16 PEs per unit as for Ditto."""
    m, k, n, c = layer.m, layer.k, layer.n, layer.count
    passes = -(-n // CU_PES)
    compute = math.ceil(c * itc_cycles(m, k) * passes / acc.compute_units)
    dram = {"act_in": _moved(acc, m * k, c), "act_out": _moved(acc, m * n, c)}
    if layer.kind == "linear":
        dram["weights"] = _moved(acc, k * n, c)
    else:
        dram["act_in"] += _moved(acc, k * n, c)
    lanes = c * itc_cycles(m, k) * passes * CU_PES * 4
    sram_bits = c * m * k * 8 + c * k * n * 8 + c * m * n * ACC_BITS   # rows broadcast as for Ditto
    return _finish(acc, table, compute, dram, lanes, table.mac["INT8"], sram_bits, lanes * (8 + 8 + ACC_BITS),
                   local=(lanes * 8, acc.params["local_weight_bytes"]))


# --------------------------------------------------------------------------- RADiT

def expand_skip(per_block, steps: int, sub_blocks: int) -> np.ndarray:
    """A (steps x sub_blocks) expected-skip matrix from per-block skip ratios
    measured on another stack: block n takes the ratio of the measured block
    at the same relative depth; the first step computes everything."""
    r = np.asarray(per_block, dtype=np.float64).reshape(-1)
    idx = np.minimum((np.arange(sub_blocks) * len(r)) // sub_blocks, len(r) - 1)
    out = np.tile(r[idx], (steps, 1))
    out[0] = 0.0
    return out


def radit_run(workload: Workload, acc: Accelerator, skip, *, cycle_model: CycleModel = systolic_cycles,
              top=None) -> dict:
    """A whole run with and without RADiT skip-and-reuse.

    ``skip`` is (steps x 2·depth): 1 (or an expected fraction) where the
    sub-block n = 2·block + (0 attention, 1 MLP) reuses its previous output.
    The baseline computes everything. RADiT adds per sub-block and step the
    CCU: the block input compressed at ``ccu_lanes`` values per cycle before
    the decision (exposed cycles, every step), its 4-bit codes written (every
    step) and the previous codes read (every step but the first). A skipped
    sub-block issues no GEMM, weight or activation traffic (docs/SPEC.md
    "RADiT accelerator").

    ``top`` (a :class:`golden.system.radit_top.RaditTop`) prices the pieces
    on the RADiT accelerator top instead (docs/SPEC.md "System model",
    validation): a computed sub-block's linears as the top's runs and its
    BLOCK_END run, the detection as the BLOCK_BEGIN run, a skipped sub-block
    as its dropped program and the replay of its stored output; the codes
    stay in the top's code memory; the baseline (the top with ``no_skip``)
    still runs the detection. Cycles and host-interface bytes only (no
    energy); the composition is the same.
    """
    table = energy_table(acc)
    S, N = workload.steps, 2 * workload.depth
    skip = np.asarray(skip, dtype=np.float64)
    if skip.shape != (S, N):
        raise ValueError(f"skip must be ({S}, {N}) for {workload.name}, not {skip.shape}")
    if np.any(skip[0] != 0):
        raise ValueError("skip: the first step has no previous codes and must compute every sub-block")
    sub_cost = [Cost() for _ in range(N)]
    sub_layers = [[] for _ in range(N)]
    for b, layer in workload.layers():
        n = 2 * b + (0 if layer.sub == "attn" else 1)
        sub_layers[n].append(layer)
        sub_cost[n].add(top.layer(layer) if top is not None
                        else array_layer(layer, acc, table, cycle_model=cycle_model))
    elements = workload.tokens * workload.hidden
    ccu = Cost()
    if top is None:
        skipped = [Cost() for _ in range(N)]
        lanes, code_bits = acc.params["ccu_lanes"], acc.params["code_bits"]
        code_bytes = acc.dram.moved(math.ceil(elements * code_bits / 8))
        # CCU: S writes of codes, S - 1 reads, S compressions per sub-block.
        ccu.dram["codes"] = N * (2 * S - 1) * code_bytes
        ccu.cycles = ccu.compute = N * S * math.ceil(elements / lanes)
        ccu.energy = {"ccu": N * S * elements * table.ccu_element, "dram": acc.dram.energy_pj(ccu.dram["codes"]),
                      "sram": 8 * ccu.dram["codes"] * table.sram_bit(acc.sram_bytes)}
    else:
        skipped = [top.skipped(sub_layers[n]) for n in range(N)]
        ccu.add(top.detect(elements), N * S)
        for c in sub_cost:
            c.add(top.computed_end())
    base, radit = Cost(), Cost()
    for n in range(N):
        skipped_steps = float(skip[:, n].sum())
        base.add(sub_cost[n], S)
        radit.add(sub_cost[n], S - skipped_steps).add(skipped[n], skipped_steps)
    radit.add(ccu)
    if top is not None:
        base.add(ccu)
    return {"base": base, "radit": radit, "ccu": ccu, "skip_ratio": float(skip.mean()),
            "sub_block_cost": sub_cost}


# --------------------------------------------------------------------------- Ditto

def _ditto_costs(layer, acc, table, stats, act_stats, spatial_stats):
    s = stats(layer)
    out = {"act": ditto_layer(layer, acc, table, act_stats(layer), "act"),
           "temporal": ditto_layer(layer, acc, table, s, "temporal")}
    if spatial_stats is not None:
        out["spatial"] = ditto_layer(layer, acc, table, spatial_stats(layer), "spatial")
    return out


def ditto_run(workload: Workload, acc: Accelerator, baseline: Accelerator, temporal: Callable,
              *, act: Callable | None = None, spatial: Callable | None = None) -> dict:
    """A whole run on Ditto (Defo) and Ditto+ (Defo+) against the ITC baseline.

    ``temporal(layer)``, ``act(layer)`` and ``spatial(layer)`` give the
    :class:`DittoRowStats` of a layer's input in each mode (default ``act``:
    full width, docs/SPEC.md "Ditto accelerator"). Step 1 runs on
    activations, step 2 on temporal differences, and Defo keeps for every
    later step the cheaper of the two by layer time (compute or memory,
    whichever binds; docs/SPEC.md "Ditto accelerator"). Ditto+ replaces the
    activation executions (step 1 and Defo's activation layers) by spatial
    differences. Attention products have no previous output to sum in
    spatial mode, so they stay on activations in Ditto+.
    """
    table = energy_table(acc)
    btable = energy_table(baseline)
    act = act or (lambda layer: full_width_stats(layer.k))
    S = workload.steps
    base, ditto, plus = Cost(), Cost(), Cost()
    decisions = []
    for _, layer in workload.layers():
        base.add(itc_layer(layer, baseline, btable), S)
        c = _ditto_costs(layer, acc, table, temporal, act, spatial)
        use_diff = c["temporal"].cycles < c["act"].cycles      # Defo from steps 1 and 2
        decisions.append(bool(use_diff))
        later = c["temporal"] if use_diff else c["act"]
        ditto.add(c["act"]).add(c["temporal"], 1 if S > 1 else 0).add(later, max(0, S - 2))
        if spatial is not None:
            first = c["spatial"] if layer.kind == "linear" else c["act"]
            later_p = c["temporal"] if use_diff else first
            plus.add(first).add(c["temporal"], 1 if S > 1 else 0).add(later_p, max(0, S - 2))
    return {"base": base, "ditto": ditto, "ditto_plus": plus if spatial is not None else None,
            "defo_diff_share": float(np.mean(decisions))}


# --------------------------------------------------------------------------- ORBIS

def orbis_run(workload: Workload, acc: Accelerator, ratio: float, *, iterations: int,
              cycle_model: CycleModel = systolic_cycles) -> dict:
    """A whole run with and without ORBIS output-guided token reduction.

    The OGM schedule (``golden.orbis.ogm_schedule``: one FC step, then
    ``rc_steps`` RC steps) reduces every attention sequence of ``seq`` tokens
    to ``seq - r`` (r = round(ratio · seq), at most seq - num_dst) in the SDPA
    products on RC steps: Q K^T becomes (seq-r) x d x (seq-r), P V
    (seq-r) x (seq-r) x d. On FC steps the DATM engine matches every layer's
    SDPA output (``golden.orbis.datm_cycles`` with ``iterations``); it runs
    beside the arrays, and only what exceeds the block's array time is
    exposed. Pairs (``pair_bytes`` each) are written on FC and read on RC
    steps; reduce costs one FP16 add per merged q, k and v element.
    """
    if not 0 <= ratio < 1:
        raise ValueError(f"ratio must be in [0, 1), not {ratio!r}")
    table = energy_table(acc)
    p = acc.params
    kinds = ogm_schedule(workload.steps, p["rc_steps"])
    n_fc = kinds.count("FC")
    n_rc = len(kinds) - n_fc
    base, full_step, rc_step, extra = Cost(), Cost(), Cost(), Cost()
    datm_exposed = datm_total = 0
    for b in range(workload.depth):
        block_full, block_rc = Cost(), Cost()
        seq = None
        for layer in workload.block_layers(b):
            block_full.add(array_layer(layer, acc, table, cycle_model=cycle_model))
            if layer.kind == "attention":
                seq = layer.m
                r = min(round(ratio * seq), max(0, seq - p["num_dst"]))
                s2 = seq - r
                if layer.name.startswith("attention Q"):
                    block_rc.add(array_layer(layer, acc, table, m=s2, n=s2, cycle_model=cycle_model))
                else:
                    block_rc.add(array_layer(layer, acc, table, m=s2, k=s2, cycle_model=cycle_model))
            else:
                block_rc.add(array_layer(layer, acc, table, cycle_model=cycle_model))
        groups = workload.tokens // seq
        r = min(round(ratio * seq), max(0, seq - p["num_dst"]))
        pairs = acc.dram.moved(r * p["pair_bytes"]) * groups
        dcyc = datm_cycles(seq, workload.hidden, p["num_dst"], p["ch_lanes"], iterations, r) if r else 0
        # Sequences of one layer are matched one after another on the layer's engine.
        dcyc *= groups
        exposed = max(0, dcyc - block_full.cycles)
        datm_total += dcyc
        datm_exposed += exposed
        full_step.add(block_full)
        rc_step.add(block_rc)
        dau_ops = groups * iterations * seq * p["num_dst"] * workload.hidden if r else 0
        fc_extra = Cost(cycles=exposed, dram={"pairs": pairs},
                        energy={"datm": dau_ops * table.dau_op, "dram": acc.dram.energy_pj(pairs)})
        rc_extra = Cost(dram={"pairs": pairs},
                        energy={"reduce": 3 * groups * r * workload.hidden * table.mac["FP16"] / 2,
                                "dram": acc.dram.energy_pj(pairs)})
        extra.add(fc_extra, n_fc).add(rc_extra, n_rc)
    base.add(full_step, workload.steps)
    orbis = Cost().add(full_step, n_fc).add(rc_step, n_rc).add(extra)
    return {"base": base, "orbis": orbis, "fc_steps": n_fc, "rc_steps": n_rc,
            "datm_cycles_per_fc_step": datm_total, "datm_exposed_per_fc_step": datm_exposed,
            "array_cycles_per_step": full_step.cycles}


# --------------------------------------------------------------------------- seam for the tops

def validate_cycles(cycle_model: CycleModel, measured: Iterable[tuple], *, rows: int, cols: int) -> list[dict]:
    """Compare a cycle model with measured cycle counts.

    ``measured`` holds ``(m, k, n, cycles)`` tuples, e.g. an accelerator
    top's performance counters read over AXI4-Lite after each GEMM command.
    Returns the mismatches (empty when the model predicts every count).
    This holds one product's cycle model to the RTL; whole runs on a top are
    held to it through the run functions' ``top=`` (docs/SPEC.md "System
    model", validation).
    """
    bad = []
    for m, k, n, cyc in measured:
        want = cycle_model(m, k, n, rows, cols)
        if want != cyc:
            bad.append({"m": m, "k": k, "n": n, "model": want, "measured": cyc})
    return bad
