"""Named accelerator configurations: which units, how many, and the part whose
share of the whole each paper reports (``docs/SPEC.md``, "Area estimates").

A configuration is data, not RTL: :mod:`synth.rollup` prices it from per-unit
synthesis results and the reports quote its paper figure. Counts follow each
paper's datapath; buffers are priced separately by the roll-up because the
papers give no buffer sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["AcceleratorConfig", "CONFIGS", "config", "DITTO_PES", "DITTO_CUS", "UNIT_CONFIGS", "unit_config"]

# Ditto (Table III) counts 39,398 A4W8 multiplier lanes at iso-area with 27,648
# A8W8 ones; a ditto_pe has four lanes, grouped 16 to a compute unit, each
# unit fed by one encoder.
DITTO_LANES = 39398
DITTO_PES = -(-DITTO_LANES // 4)
DITTO_CUS = -(-DITTO_PES // 16)


@dataclass(frozen=True)
class AcceleratorConfig:
    """One accelerator: counted units, the overhead part, the paper's figure."""

    name: str
    paper: str
    paper_ratio: float | None  # fraction of the whole, or None where the paper gives none
    parts: dict = field(default_factory=dict)  # unit name -> instance count
    overhead: tuple = ()  # units whose share is reported
    buffers: bool = True  # price the default buffers beside the logic
    # Memories of the design itself, priced by synth.sram: (name, depth, width bits, counts as overhead).
    memories: tuple = ()


CONFIGS: tuple[AcceleratorConfig, ...] = (
    AcceleratorConfig("RADiT", "CCU + DTSM = 0.3 % of RADiT (64x64 array, SRAM about 85 %)", 0.003,
                      {"systolic_array": 1, "ccu_compare": 1, "dtsm": 1}, ("ccu_compare", "dtsm")),
    # The radit_accelerator top as the digits-DiT bench builds it (16x16 array, 16-byte streams,
    # docs/SPEC.md "RADiT accelerator"): its code memory (12 blocks x 256 beats of 16 codes) and
    # reuse memory (12 blocks x 512 beats of 128 bits + tlast) beside the CCU and DTSM.
    AcceleratorConfig("RADiT accelerator", "CCU + DTSM (+ code and reuse memories) of radit_accelerator; "
                      "paper: CCU + DTSM = 0.3 %", 0.003,
                      {"systolic_array": 1, "ccu_compare": 1, "dtsm": 1}, ("ccu_compare", "dtsm"),
                      memories=(("code memory", 3072, 64, True), ("reuse memory", 6144, 129, True))),
    AcceleratorConfig("Ditto", "Defo unit about 0.01 % of Ditto (39,398 A4W8 PE lanes)", 0.0001,
                      {"ditto_compute_unit": DITTO_CUS, "ditto_encoder": DITTO_CUS, "defo_unit": 1},
                      ("defo_unit",)),
    # The ditto_accelerator top as the digits-DiT bench builds it (docs/SPEC.md "Ditto accelerator",
    # sim.accel.ditto_dit.BENCH): 4 compute units of 16 PEs, one encoder, the Defo unit; its own
    # buffers: activations (1,024 x 8 INT8), previous inputs (29,184 x 8 INT8: every layer and attention input of
    # one image) and previous outputs (8,192 rows of 64 INT32, attention included); the difference
    # machinery's share.
    AcceleratorConfig("Ditto accelerator", "Defo unit + previous-input / previous-output buffers of "
                      "ditto_accelerator (bench top); paper: Defo unit about 0.01 %", None,
                      {"ditto_compute_unit": 4, "ditto_encoder": 1, "defo_unit": 1}, ("defo_unit",), buffers=False,
                      memories=(("activation buffer", 1024, 64, False), ("previous-input buffer", 29184, 64, True),
                                ("previous-output buffer", 8192, 2048, True),
                                # TADD's transpose buffer: 64 banks of 64 x 32 bits, priced as one macro.
                                ("transpose buffer", 4096, 32, True))),
    AcceleratorConfig("Ditto encoders", "Encoding units' share of Ditto (no paper figure)", None,
                      {"ditto_compute_unit": DITTO_CUS, "ditto_encoder": DITTO_CUS, "defo_unit": 1},
                      ("ditto_encoder",)),
    AcceleratorConfig("ORBIS", "QE + DATM engine = 2.4 % of ORBIS (systolic array dominates)", 0.024,
                      {"systolic_array": 1, "orbis_qe": 1, "orbis_datm": 1}, ("orbis_qe", "orbis_datm")),
    # The orbis_accelerator top as the digits-DiT bench builds it (docs/SPEC.md "ORBIS accelerator":
    # 16x16 array, 16-byte streams, N = 16 tokens, C = 128, D = 4, 6 layers): its QE and DATM engine at
    # those sizes beside the 16x16 array, and its memories -- feature memory (128 beats of 128 bits),
    # pair memory (6 x 12 pairs of 2 x 4 bits), map memory (6 x 16 x 4 bits), reduce accumulators
    # (16 rows of 16 x 14-bit sums + a 5-bit size) and restore buffer (16 x 128 bits).
    AcceleratorConfig("ORBIS accelerator", "QE + DATM engine (+ feature, pair, map, reduce and restore memories) "
                      "of orbis_accelerator at the bench size; paper: QE + DATM = 2.4 %", 0.024,
                      {"systolic_array__ROWS16_COLS16": 1, "orbis_qe_bench": 1, "orbis_datm_bench": 1},
                      ("orbis_qe_bench", "orbis_datm_bench"),
                      memories=(("feature memory", 128, 128, True), ("pair memory", 72, 8, True),
                                ("map memory", 96, 4, True), ("reduce accumulators", 16, 229, True),
                                ("restore buffer", 16, 128, True))),
)


def config(name: str) -> AcceleratorConfig:
    """The configuration called ``name`` (``ValueError`` naming the known ones otherwise)."""
    for cfg in CONFIGS:
        if cfg.name == name:
            return cfg
    raise ValueError(f"unknown accelerator configuration {name!r} (known: {', '.join(c.name for c in CONFIGS)})")


#: Named unit configurations beyond a unit's defaults: name -> (unit, parameters).
#: ``orbis_datm_n4096``: the DATM engine at a video-DiT token count, with the
#: streaming top-k (a 32-key buffer scanning a key memory) instead of the full-N
#: bitonic network, so logic does not grow with N (docs/SPEC.md "DATM engine").
UNIT_CONFIGS: dict[str, tuple[str, dict]] = {
    "orbis_datm_n4096": ("orbis_datm", {"NUM_TOKENS": 4096, "CHANNELS": 32, "NUM_DST": 16, "CH_LANES": 8,
                                        "TOPK_BUFFER": 32}),
    # The QE and DATM engine of the orbis_accelerator bench top (sim/accel/orbis_dit.py BENCH).
    "orbis_qe_bench": ("orbis_qe", {"NUM_TOKENS": 16, "CHANNELS": 128, "CH_LANES": 16}),
    "orbis_datm_bench": ("orbis_datm", {"NUM_TOKENS": 16, "CHANNELS": 128, "NUM_DST": 4, "CH_LANES": 16}),
}


def unit_config(name: str) -> tuple[str, dict]:
    """``(unit, parameters)`` of the named unit configuration (``ValueError`` otherwise)."""
    if name not in UNIT_CONFIGS:
        raise ValueError(f"unknown unit configuration {name!r} (known: {', '.join(UNIT_CONFIGS)})")
    unit, params = UNIT_CONFIGS[name]
    return unit, dict(params)
