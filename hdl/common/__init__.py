"""Shared building blocks: stream pipelines, popcount, adder trees, sorting networks."""
