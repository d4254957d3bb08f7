"""cocotb testbenches of the Ditto units (encoder, PEs, compute unit, Defo unit)."""
