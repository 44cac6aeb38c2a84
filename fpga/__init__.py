"""FPGA flows: yosys + nextpnr (YoWASP builds from PyPI) for ECP5 and iCE40."""
