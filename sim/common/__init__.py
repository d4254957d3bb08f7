"""cocotb testbenches of the shared building blocks in hdl/common (the FP units)."""
