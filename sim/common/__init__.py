"""cocotb testbenches of the shared pieces in hdl/common: the FP units and the host-interface kit."""
