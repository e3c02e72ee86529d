"""Reproductions of published results, one module per paper."""
