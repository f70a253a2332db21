"""Benchmark toolkit behind scripts/bench.py: seeding, servers, load generators, reference app."""
