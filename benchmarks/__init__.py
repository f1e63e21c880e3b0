"""Reproducible load, latency and footprint benchmarks (see docs/performance.md).

Each module runs with one command (``uv run python -m benchmarks.<name>``),
measures its own baseline in the same run, and writes JSON to
``benchmarks/results/``.
"""
