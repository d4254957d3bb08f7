"""NumPy golden models of the RADiT, Ditto and ORBIS algorithms.

Written from the papers and docs/SPEC.md; nothing here imports Amaranth or
knows about the RTL. The testbenches compare the RTL against these functions.
"""
