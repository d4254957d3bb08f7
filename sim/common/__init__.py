"""cocotb testbenches of the shared pieces (the host-interface kit)."""
