"""Accelerator tops and the named accelerator configurations.

A top (a registered unit that runs a DiT's layers from its own scratchpads,
driven over AXI) lives in a module of this package. :mod:`hdl.accel.configs`
names each paper's accelerator as units, parameters and counts; the area
roll-ups (:mod:`synth.rollup`) and the reports read it, so a configuration is
written once (``docs/SPEC.md``, "Accelerator tops").
"""
