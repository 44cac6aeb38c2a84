"""Carry the ``no_rw_check`` memory attribute from Amaranth's RTLIL to yosys's read ports.

:func:`hw.block_ram.block_ram` marks memories whose same-address read-during-write data is
never used with yosys's ``no_rw_check`` attribute, so yosys maps them to bare block RAM
instead of building the "old data" promise in logic (a write-data register, an address
compare and a multiplexer per read bit). yosys's *Verilog* frontend turns the attribute
into the read ports' ``COLLISION_X_MASK`` parameter (each set bit: a collision with that
write port reads undefined data); its RTLIL frontend takes the parameters as written, and
Amaranth 0.5 writes ``COLLISION_X_MASK`` all zeros. The board flow and
:mod:`fpga.synth_stats` feed yosys RTLIL, so without this pass every :func:`block_ram` and
:class:`~hw.block_ram.BlockRamFifo` carried that logic on the FPGA (a 64x16 BlockRamFifo for
iCE40: 59 flip-flops instead of 19).

:func:`apply_no_rw_check` does what the Verilog frontend does: in every module, for every
``$memrd_v2`` cell of a memory with the attribute, set ``COLLISION_X_MASK`` for each write
port on the read port's clock (same signal, same edge) that it is not transparent to. A
transparent port's collision has defined data; a write port on another clock (the operand
buffers of a build whose array has its own clock) has no same-cycle collision, and yosys
asserts on a mask bit for it.
"""
import re

__all__ = ["apply_no_rw_check"]

_MODULE = re.compile(r"^module .*?^end$", flags=re.M | re.S)
#: a memory declaration with the attribute among the attributes right above it
_MARKED_MEMORY = re.compile(
    r"^[ \t]*attribute \\no_rw_check 1\n(?:[ \t]*attribute [^\n]*\n)*"
    r"[ \t]*memory [^\n]*?(\S+)\n", flags=re.M)
_READ_PORT = re.compile(r"^[ \t]*cell \$memrd_v2 .*?^[ \t]*end$", flags=re.M | re.S)
_WRITE_PORT = re.compile(r"^[ \t]*cell \$memwr_v2 .*?^[ \t]*end$", flags=re.M | re.S)
_MEMID = r'parameter \\MEMID "((?:[^"\\]|\\.)*)"'
_MASK = re.compile(r"(parameter \\(TRANSPARENCY_MASK|COLLISION_X_MASK) )(\d+)'([01]+)")


def _rtlil_string(name):
    """The memory name ``\\storage`` as a ``MEMID`` string parameter spells it."""
    return name.replace("\\", "\\\\").replace('"', '\\"')


def _field(cell, pattern):
    match = re.search(pattern, cell, flags=re.M)
    if match is None:
        raise ValueError(f"a memory port cell without {pattern!r}:\n{cell}")
    return match.group(1)


def _clock(cell):
    """``(clock signal, edge)`` of a port cell, ``None`` when it is not clocked."""
    if _field(cell, r"parameter \\CLK_ENABLE (\S+)$") in ("0", "1'0"):
        return None
    return (_field(cell, r"connect \\CLK (.*)$"),
            _field(cell, r"parameter \\CLK_POLARITY (\S+)$"))


def _mark_read_port(cell, write_clocks):
    """``cell`` with a collision don't-care for each write port (``write_clocks``: PORTID ->
    clock) on its clock that it is not transparent to."""
    masks = {match.group(2): match for match in _MASK.finditer(cell)}
    if set(masks) != {"TRANSPARENCY_MASK", "COLLISION_X_MASK"}:
        raise ValueError(f"a $memrd_v2 cell without both masks:\n{cell}")
    transparent = masks["TRANSPARENCY_MASK"].group(4)
    collision = masks["COLLISION_X_MASK"]
    width = int(collision.group(3))
    if len(transparent) != width or len(collision.group(4)) != width:
        raise ValueError(f"masks of a $memrd_v2 cell written in an unexpected form:\n{cell}")
    clock = _clock(cell)
    bits = list(collision.group(4))
    for port in range(width):
        at = width - 1 - port                   # masks are written MSB first
        if clock is not None and transparent[at] == "0" and write_clocks.get(port) == clock:
            bits[at] = "1"
    return cell[:collision.start()] + f"{collision.group(1)}{width}'{''.join(bits)}" + \
        cell[collision.end():]


def _mark_module(module):
    memories = {_rtlil_string(name) for name in _MARKED_MEMORY.findall(module)}
    if not memories:
        return module
    write_clocks = {}                           # MEMID -> {PORTID: clock}
    for match in _WRITE_PORT.finditer(module):
        cell = match.group(0)
        memid = _field(cell, _MEMID)
        if memid in memories:
            port = int(_field(cell, r"parameter \\PORTID (\d+)$"))
            write_clocks.setdefault(memid, {})[port] = _clock(cell)

    def mark(match):
        cell = match.group(0)
        memid = _field(cell, _MEMID)
        if memid not in memories:
            return cell
        return _mark_read_port(cell, write_clocks.get(memid, {}))

    return _READ_PORT.sub(mark, module)


def apply_no_rw_check(text):
    """Return the RTLIL ``text`` with ``COLLISION_X_MASK`` set on the read ports of every
    memory marked ``no_rw_check`` (see the module docstring); other text unchanged."""
    return _MODULE.sub(lambda match: _mark_module(match.group(0)), text)
