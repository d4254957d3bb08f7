"""System model: latency, DRAM traffic and energy of whole DiT runs on the
RADiT, Ditto and ORBIS accelerators, composed from the units' golden cycle
models (docs/SPEC.md "System model").

* :mod:`.energy` -- energy per action with sources and the node-scaling rule;
* :mod:`.dram` -- DRAM bandwidth, burst size and pJ/bit;
* :mod:`.configs` -- the papers' accelerators and workloads as data;
* :mod:`.model` -- the composition (:func:`~.model.radit_run`,
  :func:`~.model.ditto_run`, :func:`~.model.orbis_run`) and the seam
  (:func:`~.model.validate_cycles`, :func:`~.model.gemm_top_cycles`) for the
  accelerator tops' counters;
* :mod:`.radit_top` -- the RADiT accelerator top's host runs priced for
  :func:`~.model.radit_run` (``top=``), held to the RTL's counters.

Imports golden.* and NumPy only.
"""

from .configs import (COGVIDEOX_5B, DIT_XL2, DITTO, HUNYUAN_VIDEO, ITC, LATTE_XL2, LATTE_XL2_DDIM20, ORBIS, RADIT,
                      Accelerator, Layer, Workload)
from .dram import Dram
from .energy import EnergyTable, sram_pj_per_bit
from .radit_top import RaditTop
from .model import (Cost, DittoRowStats, array_layer, ditto_layer, ditto_run, energy_table, expand_skip,
                    gemm_top_cycles, itc_layer, mix_row_stats, orbis_run, radit_run, row_stats, systolic_cycles, validate_cycles)

__all__ = ["Accelerator", "Layer", "Workload", "Dram", "EnergyTable", "Cost", "DittoRowStats", "DIT_XL2",
           "LATTE_XL2", "LATTE_XL2_DDIM20", "COGVIDEOX_5B", "HUNYUAN_VIDEO", "RADIT", "DITTO", "ITC", "ORBIS",
           "sram_pj_per_bit", "array_layer", "ditto_layer", "itc_layer", "ditto_run", "radit_run", "orbis_run",
           "energy_table", "expand_skip", "mix_row_stats", "row_stats", "systolic_cycles", "validate_cycles",
           "gemm_top_cycles", "RaditTop"]
