"""The papers' accelerators and workloads as data (docs/SPEC.md "System model").

Each figure names its source: a paper section, the workload model's own
published configuration, or "assumed" where neither gives it. The RTL-side
configurations (unit counts for the area roll-ups) live in
``hdl.accel.configs``; golden code may not import ``hdl``, so the one shared
fact, Ditto's 39,398 A4W8 lanes, is repeated here and a test holds the two
equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from golden.systolic import dit_xl2_layers

from .dram import HBM2_A100, HBM2_A100_40GB, LPDDR3_X64, Dram

__all__ = ["Layer", "Workload", "Accelerator", "DIT_XL2", "LATTE_XL2", "LATTE_XL2_DDIM20", "COGVIDEOX_5B",
           "HUNYUAN_VIDEO", "RADIT", "DITTO", "ITC", "ORBIS", "DITTO_LANES", "ITC_LANES", "PE_LANES",
           "CU_PES", "compute_units"]

MB = 1024 * 1024

# Ditto Table III: 39,398 A4W8 PEs against 27,648 A8W8 ones (ITC) in one area.
# A Ditto PE (Fig. 12) and the ITC PE both have four multiplier lanes; a
# compute unit is 16 PEs sharing one encoded stream (hdl.accel.configs).
DITTO_LANES = 39398
ITC_LANES = 27648
PE_LANES = 4
CU_PES = 16


def compute_units(lanes: int) -> int:
    """Compute units of ``CU_PES`` four-lane PEs that hold ``lanes`` lanes (rounded up)."""
    pes = -(-lanes // PE_LANES)
    return -(-pes // CU_PES)


@dataclass(frozen=True)
class Layer:
    """One matrix product of a transformer block: (M x K) @ (K x N), ``count``
    times per block. ``sub`` is RADiT's DNN operation block ("attn" or "mlp"),
    ``kind`` "linear" (K x N weights) or "attention" (both operands are
    activations: Q K^T and P V per head and attention sequence)."""

    name: str
    m: int
    k: int
    n: int
    count: int
    sub: str
    kind: str

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n * self.count


@dataclass(frozen=True)
class Workload:
    """A DiT: tokens per image or video, block shape, depth and sampler steps.

    ``attn_seqs`` cycles over the blocks: the tokens one attention sequence
    spans (all tokens for DiT; Latte alternates spatial blocks over the 256
    tokens of one frame and temporal blocks over the 16 frames of one patch).
    """

    name: str
    tokens: int
    hidden: int
    depth: int
    heads: int
    mlp: int
    steps: int
    attn_seqs: tuple = ()
    source: str = ""

    def block_layers(self, block: int) -> list[Layer]:
        """The products of transformer block ``block``, from
        :func:`golden.systolic.dit_xl2_layers` (linears on every token,
        attention per head and per attention sequence)."""
        seq = (self.attn_seqs or (self.tokens,))[block % len(self.attn_seqs or (self.tokens,))]
        groups = self.tokens // seq
        lin = dit_xl2_layers(self.tokens, self.hidden, self.mlp, self.heads)
        att = dit_xl2_layers(seq, self.hidden, self.mlp, self.heads)
        out = []
        for (name, m, k, n, count), (_, am, ak, an, acount) in zip(lin, att):
            if name.startswith("attention Q") or name.startswith("attention P"):
                out.append(Layer(name, am, ak, an, acount * groups, "attn", "attention"))
            else:
                out.append(Layer(name, m, k, n, count, "mlp" if name.startswith("MLP") else "attn", "linear"))
        return out

    def layers(self) -> list[tuple[int, Layer]]:
        """(block, layer) for the whole network, block by block."""
        return [(b, lay) for b in range(self.depth) for lay in self.block_layers(b)]

    def macs_per_step(self) -> int:
        return sum(lay.macs for _, lay in self.layers())


DIT_XL2 = Workload(
    "DiT-XL/2, 256x256", tokens=256, hidden=1152, depth=28, heads=16, mlp=4608, steps=250,
    source="DiT-XL/2 (Peebles & Xie 2023): 32x32 latent, patch 2 -> 256 tokens, 28 blocks, hidden 1152, "
           "16 heads, MLP 4608; 250 DDPM steps (RADiT §IV-B2 Table II; Ditto Table I: DDIM 250)")

LATTE_XL2 = Workload(
    "Latte-XL/2, 16 frames 256x256", tokens=16 * 256, hidden=1152, depth=28, heads=16, mlp=4608, steps=250,
    attn_seqs=(256, 16),
    source="RADiT §IV-B2: 2 s at 16 fps = 16 frames of 256x256; Latte-XL/2 (Ma et al. 2024): DiT-XL/2's "
           "block, 256 tokens per frame, spatial and temporal blocks alternating; 250 steps assumed "
           "(RADiT gives none; Latte's default DDPM sampler)")

LATTE_XL2_DDIM20 = Workload(
    "Latte-XL/2, 16 frames 256x256, DDIM-20", tokens=16 * 256, hidden=1152, depth=28, heads=16, mlp=4608,
    steps=20, attn_seqs=(256, 16), source="Ditto Table I: Latte-XL/2 on UCF-101, DDIM 20 steps; shapes as Latte-XL/2")

COGVIDEOX_5B = Workload(
    "CogVideoX-5B, 49 frames 480x720", tokens=13 * 30 * 45, hidden=3072, depth=42, heads=48, mlp=4 * 3072,
    steps=50,
    source="ORBIS §4.1: 49 frames at 480x720; CogVideoX (Yang et al. 2024): VAE 4x in time and 8x in space, "
           "patch 2 -> 13x30x45 = 17,550 video tokens; 5B: 42 blocks, hidden 3072, 48 heads, MLP 4x; 50 "
           "steps. Which CogVideoX ORBIS ran is not stated (5B assumed); the 226 text tokens are left out")

HUNYUAN_VIDEO = Workload(
    "HunyuanVideo, 129 frames 544x960", tokens=33 * 34 * 60, hidden=3072, depth=60, heads=24, mlp=4 * 3072,
    steps=50,
    source="ORBIS §4.1: 129 frames at 544x960; HunyuanVideo (Kong et al. 2024): VAE 4x in time and 8x in "
           "space, patch 2 -> 33x34x60 = 67,320 video tokens; 20 dual- + 40 single-stream blocks (counted as "
           "60 DiT blocks), hidden 3072, 24 heads, MLP 4x; 50 steps; text tokens left out")


@dataclass(frozen=True)
class Accelerator:
    """One accelerator: node, clock, compute, on-chip memory, DRAM.

    ``array`` is (rows, cols) of a weight-stationary systolic array
    (``golden.systolic.cycles``) and ``instances`` how many run side by side;
    Ditto-style machines give ``compute_units`` instead (``golden.ditto``
    packing, 16 PEs per unit). ``mac`` is the operand type the energy table
    prices; ``*_bytes`` the widths of activations, weights, outputs in DRAM.
    """

    name: str
    node_nm: float
    clock_hz: float
    mac: str
    dram: Dram
    sram_bytes: int
    act_bytes: int
    weight_bytes: int
    out_bytes: int
    array: tuple | None = None
    instances: int = 1
    compute_units: int | None = None
    params: dict = field(default_factory=dict)
    sources: dict = field(default_factory=dict)


RADIT = Accelerator(
    "RADiT", node_nm=28, clock_hz=500e6, mac="FP16", dram=LPDDR3_X64, sram_bytes=1 * MB,
    act_bytes=2, weight_bytes=2, out_bytes=2, array=(64, 64),
    params={"ccu_lanes": 16, "code_bits": 4},
    sources={"node_clock": "RADiT §IV-A: 28 nm, 500 MHz", "array": "RADiT §III-C: 64x64 systolic array [19]",
             "mac": "RADiT §III-B3: FP16 block inputs, as the baseline DiT",
             "sram": "not given (weight and psum SRAMs are about 85 % of the area, §IV-B1); 1 MB assumed",
             "ccu_lanes": "docs/SPEC.md 'CCU: compare' default LANES = 16",
             "code_bits": "RADiT §III-B3: 4-bit codes, 4x smaller than FP16"})

DITTO = Accelerator(
    "Ditto", node_nm=45, clock_hz=1e9, mac="A4W8", dram=HBM2_A100_40GB, sram_bytes=192 * MB,
    act_bytes=1, weight_bytes=1, out_bytes=4, compute_units=compute_units(DITTO_LANES),
    params={"lanes": DITTO_LANES, "cu_pes": CU_PES, "local_weight_bytes": 4608},
    sources={"node_clock": "Ditto §VI-A: FreePDK 45 nm, Table III: 1 GHz",
             "pes": "Ditto Table III: 39,398 A4W8 PEs (four-lane PEs, 16 per compute unit as hdl.accel.configs)",
             "sram": "Ditto Table III: 192 MB (global); each PE reads its weights from a local memory "
                     "of one INT8 weight column, 4,608 B for DiT-XL/2's longest K (assumed; the compute "
                     "unit's weight memory of docs/SPEC.md 'PE (compute unit)')",
             "out_bytes": "previous outputs kept at the INT32 accumulator width for the summation stage "
                          "(§IV-A third stage); activations and weights 8-bit in DRAM (§V-B)"})

ITC = Accelerator(
    "ITC (A8W8 baseline)", node_nm=45, clock_hz=1e9, mac="INT8", dram=HBM2_A100_40GB, sram_bytes=192 * MB,
    act_bytes=1, weight_bytes=1, out_bytes=1, compute_units=compute_units(ITC_LANES),
    params={"lanes": ITC_LANES, "cu_pes": CU_PES, "local_weight_bytes": 4608},
    sources={"pes": "Ditto Table III: 27,648 A8W8 PEs, same SRAM and clock"})

ORBIS = Accelerator(
    "ORBIS", node_nm=28, clock_hz=1e9, mac="FP16", dram=HBM2_A100, sram_bytes=40 * MB,
    act_bytes=2, weight_bytes=2, out_bytes=2, array=(64, 64), instances=38,
    params={"num_dst": 64, "ch_lanes": 64, "rc_steps": 3, "pair_bytes": 4, "iterations": None},
    sources={"node_clock": "ORBIS §4.2: 28 nm, 1 GHz",
             "instances": "ORBIS §4.2: 38 DXE instances, global memory 40 MB (the A100's L2)",
             "array": "derived: the A100's 312 TFLOPS dense FP16 peak / 38 / 2 / 1 GHz = 4,105 MACs per "
                      "cycle per DXE, a 64x64 array",
             "datm": "DATM engine with one DAU lane per dst token (docs/SPEC.md 'DATM engine'); 64 dst and "
                     "64 channel lanes as reports/orbis_datm extrapolates; 3 RC steps per FC step (§3.1)",
             "pair_bytes": "one (src, dst) index pair: two 16-bit indices (4 B) for up to 65,536 tokens; "
                           "HunyuanVideo's 67,320 need 17 bits, still counted as 4 B"})
