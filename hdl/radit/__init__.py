"""RADiT units: compress-and-compare (CCU) and dynamic threshold scaling (DTSM)."""
