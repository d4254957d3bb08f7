"""Ditto units: difference encoder, A4W8 PEs, Defo."""
