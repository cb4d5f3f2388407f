"""Benchmarks for imagine-agent: ``python -m benchmarks [--quick]``. Every row is measured against a
baseline in the same run and reported as a ratio; results go to ``benchmarks/results/latest.json``."""
