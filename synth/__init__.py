"""Synthesis flow and area models."""
