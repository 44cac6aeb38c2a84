"""Loom gateware: the systolic array and, later, the accelerator around it (Amaranth 0.5)."""
