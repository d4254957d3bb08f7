"""ORBIS units: quantization engine and the DATM token-merging engine."""
