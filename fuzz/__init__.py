"""Property-based fuzzers of the protocol drivers (see README.md)."""
