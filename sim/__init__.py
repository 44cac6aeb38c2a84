"""Verilog generation and the Verilator/cocotb build for Loom's regressions."""
