"""The end-to-end harness, split by concern; tests import it through eftest.py."""
