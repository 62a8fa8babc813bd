"""Local simulators of the platforms' APIs (demo, end-to-end tests, benchmarks)."""
