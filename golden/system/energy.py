"""Energy per action: MACs by operand type, SRAM and register-file bits, DRAM
bits (docs/SPEC.md "System model").

Every figure carries its source. The arithmetic and SRAM figures are
Horowitz's 45 nm, 0.9 V table (M. Horowitz, "Computing's energy problem (and
what we can do about it)", ISSCC 2014, Fig. 1.1.9); the papers' accelerators
sit at other nodes, so :meth:`EnergyTable.at` scales them.

Scaling rule (stated once, used everywhere): dynamic energy per action is
C·V², switched capacitance scales with the feature size and the supply stays
at 0.9 V (the nominal core voltage of both 45 nm and 28 nm bulk processes), so
E(node) = E(45 nm) · node / 45. The clock does not enter: at a fixed voltage
the energy of one action does not depend on how often it happens, and leakage
(which would scale with run time) is not modelled. DRAM energy is a property
of the memory device and interface, not of the accelerator's node, and is
never scaled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

__all__ = ["HOROWITZ_45NM", "SRAM_POINTS", "sram_pj_per_bit", "EnergyTable", "BASE_NODE_NM", "scale_factor"]

BASE_NODE_NM = 45

#: Horowitz, ISSCC 2014 (45 nm, 0.9 V), pJ per operation.
HOROWITZ_45NM = {
    "int8_add": 0.03,
    "int32_add": 0.1,
    "int8_mult": 0.2,
    "int32_mult": 3.1,
    "fp16_add": 0.4,
    "fp32_add": 0.9,
    "fp16_mult": 1.1,
    "fp32_mult": 3.7,
}

#: Horowitz, ISSCC 2014: a 64-bit SRAM read costs 10 pJ (8 KB), 20 pJ (32 KB)
#: and 100 pJ (1 MB) at 45 nm; per bit: /64. (capacity bytes, pJ per bit).
SRAM_POINTS = ((8 * 1024, 10.0 / 64), (32 * 1024, 20.0 / 64), (1024 * 1024, 100.0 / 64))

#: Below the smallest point, the square-root law that the three points follow
#: (8 KB -> 32 KB doubles the energy for 4x the capacity: bit-line and
#: word-line lengths grow with sqrt(capacity), as CACTI's models do).
_SMALL_EXPONENT = 0.5


def sram_pj_per_bit(capacity_bytes: int) -> float:
    """pJ per bit read (or written) of an SRAM of ``capacity_bytes`` at 45 nm.

    Log-log interpolation between Horowitz's three points; below 8 KB the
    square-root law; above 1 MB the 1 MB figure, because a larger memory is
    built of banks and an access reads one bank (the wire to the bank is not
    modelled; CACTI would add it).
    """
    if capacity_bytes <= 0:
        raise ValueError(f"capacity_bytes must be positive, not {capacity_bytes!r}")
    (c0, e0) = SRAM_POINTS[0]
    if capacity_bytes >= SRAM_POINTS[-1][0]:
        return SRAM_POINTS[-1][1]
    if capacity_bytes <= c0:
        return e0 * (capacity_bytes / c0) ** _SMALL_EXPONENT
    for (ca, ea), (cb, eb) in zip(SRAM_POINTS, SRAM_POINTS[1:]):
        if capacity_bytes <= cb:
            f = math.log(capacity_bytes / ca) / math.log(cb / ca)
            return math.exp(math.log(ea) + f * (math.log(eb) - math.log(ea)))
    raise AssertionError("unreachable")


def scale_factor(node_nm: float) -> float:
    """E(node) / E(45 nm) under the module's rule (capacitance ∝ feature size, V fixed)."""
    if node_nm <= 0:
        raise ValueError(f"node_nm must be positive, not {node_nm!r}")
    return node_nm / BASE_NODE_NM


def _mac(mult: float, add: float) -> float:
    return mult + add


@dataclass(frozen=True)
class EnergyTable:
    """pJ per action at one node. Build with :meth:`at`; the fields are the
    scaled figures, ``sources`` says where each came from.

    * ``mac``: one multiply-accumulate by type. INT8: an 8x8 multiply and a
      32-bit add (the INT32 accumulator). A4W8: Ditto's 5-bit x 8-bit lane
      multiplier (docs/SPEC.md "Ditto encoding unit"): an array multiplier's
      energy grows with the product of the operand widths, 5·8/64 of the 8x8
      one, plus the same 32-bit add. FP16: an FP16 multiply and an FP32 add
      (binary16 products accumulate in binary32, docs/SPEC.md "FP16").
    * ``sram_bit(capacity)``: :func:`sram_pj_per_bit`, scaled.
    * ``rf_bit``: a PE's register (a 64-byte register file by the same
      square-root law: 0.014 pJ/bit at 45 nm, so a 16-bit operand costs about
      a third of an INT8 MAC, the order Eyeriss reports, Chen et al. ISCA 2016:
      RF access about 1x a MAC).
    * ``dram_bit``: the configuration's DRAM figure (never scaled).
    * ``ccu_element`` (RADiT): compress one FP16 value and compare its 4-bit
      code, popcount included: about two 8-bit adds.
    * ``encode_element`` (Ditto): subtract, classify (two comparators) and
      queue one INT8 element: about three 8-bit adds.
    * ``dau_op`` (ORBIS): one 4-bit channel term of the DAU's distance,
      s_c²·(q_src - q_dst)²: a 4x4 square (16/64 of an 8x8 multiply), a
      16-bit weight multiply (4x the 8x8) and a 32-bit add.
    """

    node_nm: float
    dram_bit: float
    dram_source: str
    mac: dict = field(default_factory=dict)
    rf_bit: float = 0.0
    ccu_element: float = 0.0
    encode_element: float = 0.0
    dau_op: float = 0.0
    sources: dict = field(default_factory=dict)

    @classmethod
    def at(cls, node_nm: float, dram_pj_per_bit: float, dram_source: str) -> "EnergyTable":
        s = scale_factor(node_nm)
        h = HOROWITZ_45NM
        mac = {
            "INT8": s * _mac(h["int8_mult"], h["int32_add"]),
            "A4W8": s * _mac(h["int8_mult"] * 5 * 8 / 64, h["int32_add"]),
            "FP16": s * _mac(h["fp16_mult"], h["fp32_add"]),
        }
        src = f"Horowitz ISSCC 2014 (45 nm), scaled x{s:.3f} to {node_nm} nm (E ∝ node, V fixed)"
        return cls(node_nm=node_nm, dram_bit=float(dram_pj_per_bit), dram_source=dram_source, mac=mac,
                   rf_bit=s * sram_pj_per_bit(64),
                   ccu_element=s * 2 * h["int8_add"], encode_element=s * 3 * h["int8_add"],
                   dau_op=s * (h["int8_mult"] * 16 / 64 + 4 * h["int8_mult"] + h["int32_add"]),
                   sources={"mac": src, "sram": src + "; capacity law of sram_pj_per_bit",
                            "rf": src + "; 64 B register file", "dram": dram_source,
                            "overheads": src + "; unit operations counted in golden.system.energy"})

    def sram_bit(self, capacity_bytes: int) -> float:
        """pJ per SRAM bit at this node for a memory of ``capacity_bytes``."""
        return scale_factor(self.node_nm) * sram_pj_per_bit(capacity_bytes)

    def with_dram(self, pj_per_bit: float) -> "EnergyTable":
        """The same table with another DRAM figure (for sensitivity studies)."""
        return replace(self, dram_bit=float(pj_per_bit))
