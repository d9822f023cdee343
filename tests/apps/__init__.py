"""Small framework apps served by tests/integration/test_frameworks.py, unchanged."""
