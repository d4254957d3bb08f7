"""SRAM / register-file area model for memories kept out of the logic netlist.

The Nangate45 library has no memory compiler, so memories are priced by this
analytic model instead of being flattened into flip-flops. Figures and sources:

* 6T bitcell, 45 nm: 0.35 µm² (``docs/nangate45-cell-areas.md``; ITRS
  and published 45 nm SRAM cells span 0.30-0.37 µm²).
* Array efficiency 0.7: strap, well-tap and dummy cells around the bitcells.
* Each port beyond the first widens the cell (a 1R1W 8T register-file cell is
  about 1.3x a 6T cell; every further port +0.5x).
* Periphery per port: 1.6 µm² per row (decoder slice and word-line driver,
  about 2 GE) and 12 µm² per column (precharge, sense amplifier, write driver,
  about 15 GE), plus 150 µm² of control and timing.

Calibration: a 64 x 32-bit 1R1W macro comes to 1.2 µm²/bit, the "near
1 µm²/bit with periphery for small arrays" (docs/nangate45-cell-areas.md); 1 Mbit
(16384 x 64) comes to 0.70 µm²/bit, the upper end of published 45 nm
two-port macros. The same storage as flip-flops with read multiplexers costs
4-9x more (``flop_equivalent_um2``).
These are estimates for ratios, not sign-off numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

BITCELL_UM2 = 0.35
ARRAY_EFFICIENCY = 0.7
EXTRA_PORT_CELL_FACTOR = (0.3, 0.5)  # second port, each further port
ROW_PERIPHERY_UM2 = 1.6
COLUMN_PERIPHERY_UM2 = 12.0
CONTROL_UM2 = 150.0
DFF_UM2 = 4.522
MUX2_UM2 = 1.862

__all__ = ["MemoryArea", "sram_area", "BITCELL_UM2"]


@dataclass(frozen=True)
class MemoryArea:
    depth: int
    width: int
    read_ports: int
    write_ports: int
    area_um2: float
    array_um2: float
    periphery_um2: float
    flop_equivalent_um2: float  # the same storage as flip-flops and read muxes, for comparison

    @property
    def bits(self) -> int:
        return self.depth * self.width

    def as_dict(self) -> dict:
        d = asdict(self)
        d["bits"] = self.bits
        d["um2_per_bit"] = round(self.area_um2 / self.bits, 3) if self.bits else 0.0
        return d


def sram_area(depth: int, width: int, read_ports: int = 1, write_ports: int = 1) -> MemoryArea:
    """Area of a ``depth`` x ``width`` memory with the given ports (µm²)."""
    if depth < 1 or width < 1:
        raise ValueError(f"memory must have depth and width >= 1, not {depth} x {width}")
    # Amaranth memories have separate read and write ports, so a memory with
    # one of each is a 1R1W macro: two ports, each with its own periphery.
    cell_ports = max(1, read_ports + write_ports)
    factor = 1.0
    for extra in range(1, cell_ports):
        factor += EXTRA_PORT_CELL_FACTOR[min(extra - 1, 1)]
    bits = depth * width
    array = bits * BITCELL_UM2 * factor / ARRAY_EFFICIENCY
    periphery = (depth * ROW_PERIPHERY_UM2 + width * COLUMN_PERIPHERY_UM2) * cell_ports + CONTROL_UM2
    flops = bits * DFF_UM2 + max(0, depth - 1) * width * MUX2_UM2 * max(1, read_ports)
    return MemoryArea(depth, width, read_ports, write_ports, round(array + periphery, 3),
                      round(array, 3), round(periphery, 3), round(flops, 3))
