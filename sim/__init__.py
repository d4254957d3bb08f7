"""Co-simulation: cocotb testbenches, stream drivers/monitors and the runner glue."""
