"""cocotb testbenches of the ORBIS units (QE, DAU, min tree, top-k, DATM engine)."""
