"""Benchmarks that print figures; never asserted in tests. Run `make bench`."""
