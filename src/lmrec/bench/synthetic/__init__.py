"""Synthetic data in the exact formats of the real releases, at the sizes a benchmark names (no download needed)."""
