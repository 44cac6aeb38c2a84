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
port the read port is not transparent to (a transparent port's collision has defined data).
"""
import re

__all__ = ["apply_no_rw_check"]

_MODULE = re.compile(r"^module .*?^end$", flags=re.M | re.S)
#: a memory declaration with the attribute among the attributes right above it
_MARKED_MEMORY = re.compile(
    r"^[ \t]*attribute \\no_rw_check 1\n(?:[ \t]*attribute [^\n]*\n)*"
    r"[ \t]*memory [^\n]*?(\S+)\n", flags=re.M)
_READ_PORT = re.compile(r"^[ \t]*cell \$memrd_v2 .*?^[ \t]*end$", flags=re.M | re.S)
_MEMID = re.compile(r'parameter \\MEMID "((?:[^"\\]|\\.)*)"')
_MASK = re.compile(r"(parameter \\(TRANSPARENCY_MASK|COLLISION_X_MASK) )(\d+)'([01]+)")


def _rtlil_string(name):
    """The memory name ``\\storage`` as a ``MEMID`` string parameter spells it."""
    return name.replace("\\", "\\\\").replace('"', '\\"')


def _mark_read_port(cell):
    masks = {match.group(2): match for match in _MASK.finditer(cell)}
    if set(masks) != {"TRANSPARENCY_MASK", "COLLISION_X_MASK"}:
        raise ValueError(f"a $memrd_v2 cell without both masks:\n{cell}")
    transparent = masks["TRANSPARENCY_MASK"].group(4)
    collision = masks["COLLISION_X_MASK"]
    width = int(collision.group(3))
    if len(transparent) != width or len(collision.group(4)) != width:
        raise ValueError(f"masks of a $memrd_v2 cell written in an unexpected form:\n{cell}")
    marked = "".join("0" if bit == "1" else "1" for bit in transparent)
    return cell[:collision.start()] + f"{collision.group(1)}{width}'{marked}" + \
        cell[collision.end():]


def _mark_module(module):
    memories = {_rtlil_string(name) for name in _MARKED_MEMORY.findall(module)}
    if not memories:
        return module

    def mark(match):
        cell = match.group(0)
        memid = _MEMID.search(cell)
        if memid is None:
            raise ValueError(f"a $memrd_v2 cell without MEMID:\n{cell}")
        return _mark_read_port(cell) if memid.group(1) in memories else cell

    return _READ_PORT.sub(mark, module)


def apply_no_rw_check(text):
    """Return the RTLIL ``text`` with ``COLLISION_X_MASK`` set on the read ports of every
    memory marked ``no_rw_check`` (see the module docstring); other text unchanged."""
    return _MODULE.sub(lambda match: _mark_module(match.group(0)), text)
