"""The one seam between the driver and a device: registers and the memory its DMA sees.

A backend is a :class:`Transport`. The driver (``sw/device.py``) only ever reads and writes
32-bit registers by byte offset (``docs/registers.md``), reads and writes bytes of the host
memory the device's DMA reaches, and lets the device run. Everything else (compiling
programs, placing data, polling STATUS, reading perf counters) is shared by all backends,
so a new backend is one new file:

* ``golden`` (``sw/backends/golden.py``): a functional model of the device that executes
  descriptor programs with the NumPy golden models;
* ``rtl`` (``sw/backends/rtl.py``): the Amaranth design in Verilator under cocotb, host memory
  an ``AxiRam``, registers through an ``AxiLiteMaster``;
* ``serial``: a board over a UART bridge (the FPGA work).
"""
from abc import ABC, abstractmethod

__all__ = ["Transport"]


class Transport(ABC):
    """Access to one Loom device.

    Attributes
    ----------
    name : str
        Backend name (``"golden"``, ``"rtl"``, ...).
    memory_base, memory_size : int
        The host memory region (bytes) the driver may place data and descriptors in; the
        driver sets the device's DMA window to it.
    clock_hz : float or None
        The device clock, when known (simulations report cycles only).
    """

    name = "transport"
    memory_base = 0
    memory_size = 0
    clock_hz = None

    @abstractmethod
    def read_word(self, offset):
        """The 32-bit register word at byte ``offset``."""

    @abstractmethod
    def write_word(self, offset, value):
        """Write the 32-bit register word at byte ``offset``."""

    @abstractmethod
    def read_memory(self, addr, length):
        """``length`` bytes of host memory from ``addr``."""

    @abstractmethod
    def write_memory(self, addr, data):
        """Place ``data`` (bytes) in host memory at ``addr``."""

    @abstractmethod
    def wait(self, cycles):
        """Let the device run for about ``cycles`` clock cycles."""

    def close(self):
        """Release the device (stop a simulator, close a port). Idempotent."""
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
