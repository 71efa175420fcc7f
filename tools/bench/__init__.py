"""The benchmarks: `make bench-<service>` runs `python -m tools.bench.<service>`; each prints one JSON line last,
measuring Relais and the raw floor in the same run."""
