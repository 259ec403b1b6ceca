"""Benchmarks that print figures. Nothing here is a test or runs in CI."""
