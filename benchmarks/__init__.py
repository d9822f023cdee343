"""Pronghorn's benchmark suite: run ``python benchmarks/run.py`` (see benchmarks/README.md)."""
