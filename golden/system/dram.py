"""DRAM: bandwidth, burst size and energy per bit (docs/SPEC.md "System model").

A transfer of ``n`` bytes moves whole bursts (``ceil(n / burst) * burst``
bytes on the pins); it takes ``bytes / bandwidth`` seconds and costs
``8 * bytes * pJ/bit``. Latency of the first burst and refresh are not
modelled: layers stream megabytes, so bandwidth dominates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Dram", "LPDDR3_X64", "HBM2_A100", "HBM2_A100_40GB"]


@dataclass(frozen=True)
class Dram:
    """One DRAM system; every figure with its ``source``."""

    name: str
    bandwidth: float      # bytes per second, all channels
    burst: int            # bytes per burst (access granularity)
    pj_per_bit: float
    source: str

    def __post_init__(self):
        for key in ("bandwidth", "burst", "pj_per_bit"):
            v = getattr(self, key)
            if not v > 0:
                raise ValueError(f"{key} must be positive, not {v!r}")

    def moved(self, nbytes: int) -> int:
        """Bytes on the pins for one transfer of ``nbytes`` (whole bursts)."""
        if nbytes < 0:
            raise ValueError(f"nbytes must be >= 0, not {nbytes!r}")
        return math.ceil(nbytes / self.burst) * self.burst

    def cycles(self, nbytes: int, clock_hz: float) -> int:
        """Accelerator clock cycles to move ``nbytes`` already rounded to bursts."""
        return math.ceil(nbytes * clock_hz / self.bandwidth)

    def energy_pj(self, nbytes: int) -> float:
        return 8.0 * nbytes * self.pj_per_bit


# RADiT §IV-A: "An LPDDR3 model was used for the DRAM performance evaluation";
# the paper gives neither width nor speed nor energy. Assumed: LPDDR3-1600 on a
# 64-bit interface (two x32 channels, 2 x 6.4 GB/s), burst length 8 on each
# 32-bit channel (32 B); energy: Horowitz ISSCC 2014's DRAM figure, 1.3 nJ per
# 64-bit access at its low end (20 pJ/bit), the only DRAM energy the sources
# here give for a non-stacked DRAM.
LPDDR3_X64 = Dram("LPDDR3-1600 x64 (assumed)", 12.8e9, 32, 1300.0 / 64,
                  "RADiT §IV-A names LPDDR3 only; 12.8 GB/s, BL8 x 32 bit assumed; "
                  "20.3 pJ/bit = Horowitz ISSCC 2014 (1.3 nJ / 64 bit)")

# ORBIS §4.2: 38 DXE instances match the A100's FP16 peak and memory bandwidth;
# the A100 80 GB PCIe datasheet gives 1,935 GB/s (HBM2e). DRAM energy 3.9 pJ/bit
# is the paper's own figure (O'Connor et al., MICRO 2017). HBM2 pseudo-channel:
# 64-bit x burst length 4 = 32 B.
HBM2_A100 = Dram("HBM2e, A100 80GB PCIe bandwidth", 1935e9, 32, 3.9,
                 "ORBIS §4.2: bandwidth matched to the A100 (datasheet 1,935 GB/s); 3.9 pJ/bit "
                 "(ORBIS §4.2, O'Connor et al. MICRO 2017); 32 B HBM2 pseudo-channel burst")

# Ditto §VI-A gives 192 MB of SRAM and 1 GHz but no DRAM. Assumed: the memory
# of the A100 it also compares against (§VI-A [63]; A100 40 GB: HBM2,
# 1,555 GB/s) at ORBIS's 3.9 pJ/bit. The report shows the sensitivity to it.
HBM2_A100_40GB = Dram("HBM2, A100 40GB bandwidth (assumed)", 1555e9, 32, 3.9,
                      "Ditto gives no DRAM; the A100 40 GB's 1,555 GB/s HBM2 (Ditto §VI-A compares with an "
                      "A100) and 3.9 pJ/bit (O'Connor et al. MICRO 2017, as ORBIS §4.2 uses) assumed")
