"""Loom verification: NumPy golden models, cocotb testbenches and the pytest suite."""
