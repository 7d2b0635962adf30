"""Smoke runs of the benchmark scripts and the budget-pacing regressions they found."""
