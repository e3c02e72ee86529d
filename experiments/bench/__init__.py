"""Benchmarks (timings on the machine they run on)."""
