"""The driver's exceptions: each names what was wrong and what to do about it.

Every exception the driver raises on purpose derives from :class:`LoomError`, so callers
can catch all of them at once; the argument errors also derive from the built-in they
refine (``ValueError`` / ``TypeError``), so generic code that catches those still works.
"""

__all__ = ["LoomError", "ShapeError", "DtypeError", "RangeError", "WindowError",
           "UnsupportedError", "DeviceError", "TransportError"]


class LoomError(Exception):
    """Base of every error the Loom driver raises on purpose."""


class ShapeError(LoomError, ValueError):
    """Operand shapes do not fit together (e.g. ``A`` is M x K but ``B`` is K' x N)."""


class DtypeError(LoomError, TypeError):
    """An operand has a dtype the requested datapath does not take."""


class RangeError(LoomError, ValueError):
    """A value is outside what the datapath represents (int8 beyond [-128, 127], NaN in an
    integer operand, a requantisation scale out of range...)."""


class WindowError(LoomError, MemoryError):
    """The job's data does not fit in the device's DMA window (host memory region)."""


class UnsupportedError(LoomError, ValueError):
    """The hardware found on the backend lacks what the call needs (a datapath, a size)."""


class DeviceError(LoomError, RuntimeError):
    """The device stopped a job with an error code in ``STATUS`` (see docs/registers.md).

    ``code`` is the numeric code and ``name`` its name from ``hw.csr_map.ERROR_CODES``.
    """

    def __init__(self, code, name, meaning, hint=""):
        self.code, self.name, self.meaning = code, name, meaning
        super().__init__(f"device error {code} ({name}): {meaning}" + (f"; {hint}" if hint
                                                                        else ""))


class TransportError(LoomError, ConnectionError):
    """The link to the device failed (simulator died, serial port timed out...)."""
