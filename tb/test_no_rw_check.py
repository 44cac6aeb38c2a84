"""fpga.no_rw_check: the RTLIL read ports of memories marked ``no_rw_check`` get the
collision don't-care the Verilog frontend would give them, per write port, and nothing else
in the text changes."""
import re

from amaranth.back import rtlil
from amaranth.hdl import Elaboratable, Module
from amaranth.lib.memory import Memory

from fpga.no_rw_check import apply_no_rw_check
from hw.block_ram import block_ram


class _Memories(Elaboratable):
    """A marked memory with two write ports and two read ports (one transparent to write
    port 0), and an unmarked one: what the pass must change and what it must leave."""

    def elaborate(self, platform):
        m = Module()
        m.submodules.marked = marked = block_ram(shape=8, depth=16)
        m.submodules.plain = plain = Memory(shape=8, depth=16, init=[])
        first = marked.write_port()
        marked.write_port()
        marked.read_port(transparent_for=(first,))
        marked.read_port()
        plain.write_port()
        plain.read_port()
        return m


def _read_ports(text):
    """``[(MEMID, TRANSPARENCY_MASK, COLLISION_X_MASK)]`` of every ``$memrd_v2`` cell."""
    ports = []
    for cell in re.findall(r"cell \$memrd_v2 .*?\n\s*end\n", text, flags=re.S):
        memid = re.search(r'MEMID "(.*?)"', cell).group(1)
        transparent = re.search(r"TRANSPARENCY_MASK \d+'([01]+)", cell).group(1)
        collision = re.search(r"COLLISION_X_MASK \d+'([01]+)", cell).group(1)
        ports.append((memid.split("\\")[-1], transparent, collision))
    return sorted(ports)


def test_marked_read_ports_get_collision_dont_care_per_write_port():
    before = rtlil.convert(_Memories(), ports=[])
    after = apply_no_rw_check(before)
    print(_read_ports(before), _read_ports(after))
    assert _read_ports(before) == [("marked", "00", "00"), ("marked", "01", "00"),
                                   ("plain", "0", "0")]
    # not transparent to a write port: its collision reads undefined data; transparent:
    # defined (the new word), so that bit stays clear
    assert _read_ports(after) == [("marked", "00", "11"), ("marked", "01", "10"),
                                  ("plain", "0", "0")]


def test_nothing_else_changes():
    before = rtlil.convert(_Memories(), ports=[])
    after = apply_no_rw_check(before)
    assert len(before.splitlines()) == len(after.splitlines())
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True)
               if a != b]
    assert len(changed) == 2
    assert all("COLLISION_X_MASK" in a and "COLLISION_X_MASK" in b for a, b in changed)
    assert apply_no_rw_check(after) == after
