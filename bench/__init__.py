"""Benchmarks and evaluations of napari-nanogan, each run as ``python -m bench.<name>`` from the repository root."""
