"""Weight-stationary systolic array."""
