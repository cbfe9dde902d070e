"""Benchmarks run by `make bench` (not part of the service, not collected by pytest)."""
