"""ASGI apps served identically by every server in the benchmark (one workload shape each)."""
