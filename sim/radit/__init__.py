"""cocotb testbenches of the RADiT units."""
