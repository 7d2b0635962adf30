"""Smoke runs of the benchmark scripts: each runs end to end at tiny sizes and closes
with its ratio line."""
