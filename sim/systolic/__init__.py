"""cocotb testbenches of the weight-stationary systolic array, its PE and the
reference MAC."""
