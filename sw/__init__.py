"""Loom's host software: the driver, GEMM compiler, quantisation, transformer layers and the
cycle model. Start with :func:`open_device`."""
from .backends import open_device
from .device import Device, RunStats
from .errors import (
           DeviceError,
           DtypeError,
           LoomError,
           RangeError,
           ShapeError,
           TransportError,
           UnsupportedError,
           WindowError,
)

__all__ = ["open_device", "Device", "RunStats", "LoomError", "ShapeError", "DtypeError",
           "RangeError", "WindowError", "UnsupportedError", "DeviceError", "TransportError"]
