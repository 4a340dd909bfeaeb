"""One-pass SGD of two-layer committee machines (Arnaboldi et al. 2023)."""
