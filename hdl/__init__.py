"""Amaranth RTL of the RADiT, Ditto and ORBIS accelerator units.

Every unit registers itself with :mod:`hdl.registry`; :mod:`hdl.cli` emits
Verilog for any registered unit.
"""
