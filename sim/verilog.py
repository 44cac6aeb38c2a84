"""Verilog generation from Amaranth components, into ``build/``."""
import os
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Const, Value, ValueCastable
from amaranth.lib import wiring

__all__ = ["component_ports", "write_verilog"]


def component_ports(component):
    """Top-level ports of a component as ``{name: (signal, direction)}``.

    Names are the signature paths joined with ``__`` (``operands__valid``), as Amaranth's own
    converter does; members that are constants (the ``ready`` of an always-ready stream) are
    not ports at all and are left out instead of failing the conversion.
    """
    from amaranth.hdl._ir import PortDirection

    ports = {}
    for path, member, value in component.signature.flatten(component):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        if not isinstance(value, Value) or isinstance(value, Const):
            continue
        direction = PortDirection.Input if member.flow == wiring.In else PortDirection.Output
        ports["__".join(map(str, path))] = (value, direction)
    return ports


def write_verilog(component, name, path, platform=None):
    """Write ``component`` as Verilog module ``name`` to ``path``; return the path.

    Source locations are not emitted, so the output has no absolute paths and is
    reproducible. The file is only rewritten when its text changes, so Verilator's
    incremental build is not invalidated needlessly. ``platform``: what elaboration sees
    (``None``: simulation; an FPGA platform selects its hand-instanced primitives).
    """
    # Amaranth's own yosys, whatever YOSYS says: once fpga.yowasp has set YOSYS (as the
    # synthesis tests do in the same pytest worker), Amaranth would pick YoWASP's yosys 0.70,
    # whose Verilog backend writes an unsigned multiply of signed wires as `a * b`, a signed
    # one (seen: the unsigned-product mutant of the array then passed its regression).
    previous = os.environ.get("AMARANTH_USE_YOSYS")
    os.environ["AMARANTH_USE_YOSYS"] = "builtin"
    try:
        text = verilog.convert(component, name=name, platform=platform,
                               ports=component_ports(component), emit_src=False)
    finally:
        if previous is None:
            del os.environ["AMARANTH_USE_YOSYS"]
        else:
            os.environ["AMARANTH_USE_YOSYS"] = previous
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path
