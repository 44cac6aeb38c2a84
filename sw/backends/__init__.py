"""Backends: one file each, all :class:`~sw.transport.Transport` subclasses.

:func:`open_device` opens a :class:`~sw.device.Device` on a backend by name; keyword
arguments go to the backend (for ``golden`` and ``rtl``: the hardware configuration,
``rows``, ``cols``, ``datapaths``, ``data_width``, ``depth``...).
"""
import importlib

__all__ = ["BACKENDS", "open_transport", "open_device"]

#: name -> "module:class"
BACKENDS = {
    "golden": "sw.backends.golden:GoldenTransport",
    "rtl": "sw.backends.rtl:RtlTransport",
    "serial": "sw.backends.serial:SerialTransport",
}


def open_transport(backend, **options):
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}")
    module, cls = BACKENDS[backend].split(":")
    try:
        module = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise ValueError(f"backend {backend!r} is not available here ({exc})") from exc
    return getattr(module, cls)(**options)


def open_device(backend="golden", *, poll_cycles=512, progress=None, **options):
    """A :class:`~sw.device.Device` on ``backend`` (``golden``, ``rtl`` or ``serial``)."""
    from ..device import Device
    transport = open_transport(backend, **options)
    try:
        return Device(transport, poll_cycles=poll_cycles, progress=progress)
    except BaseException:
        transport.close()
        raise
