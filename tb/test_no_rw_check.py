"""fpga.no_rw_check: the RTLIL read ports of memories marked ``no_rw_check`` get the
collision don't-care the Verilog frontend would give them, per write port, and nothing else
in the text changes."""
import re

from amaranth.back import rtlil
from amaranth.hdl import ClockDomain, Elaboratable, Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth_boards.icebreaker import ICEBreakerPlatform

from fpga.no_rw_check import apply_no_rw_check
from fpga.synth_stats import cell_counts
from hw.block_ram import block_ram


class _Memories(Elaboratable):
    """A marked memory with two write ports and two read ports (one transparent to write
    port 0); a marked one written on one clock and read on two (``sync`` and ``other``); an
    unmarked one: what the pass must change and what it must leave."""

    def elaborate(self, platform):
        m = Module()
        m.domains.other = ClockDomain()
        m.submodules.marked = marked = block_ram(shape=8, depth=16)
        m.submodules.crossing = crossing = block_ram(shape=8, depth=16)
        m.submodules.plain = plain = Memory(shape=8, depth=16, init=[])
        first = marked.write_port()
        marked.write_port()
        marked.read_port(transparent_for=(first,))
        marked.read_port()
        crossing.write_port()
        crossing.read_port(domain="other")
        crossing.read_port()
        plain.write_port()
        plain.read_port()
        return m


class _TwoClockRam(wiring.Component):
    """A :func:`block_ram` written on ``sync`` and read on ``other``, as the operand
    buffers of a build whose array has its own clock."""

    def __init__(self):
        super().__init__({"w_addr": In(4), "w_data": In(8), "w_en": In(1), "r_addr": In(4),
                          "r_data": Out(8)})

    def elaborate(self, platform):
        m = Module()
        m.domains.other = ClockDomain()
        m.submodules.ram = ram = block_ram(shape=8, depth=256)
        write, read = ram.write_port(), ram.read_port(domain="other")
        m.d.comb += [write.addr.eq(self.w_addr), write.data.eq(self.w_data),
                     write.en.eq(self.w_en), read.addr.eq(self.r_addr),
                     self.r_data.eq(read.data)]
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
    assert _read_ports(before) == [("crossing", "0", "0"), ("crossing", "0", "0"),
                                   ("marked", "00", "00"), ("marked", "01", "00"),
                                   ("plain", "0", "0")]
    # not transparent to a write port: its collision reads undefined data; transparent:
    # defined (the new word), so that bit stays clear; a write port on another clock: clear
    assert _read_ports(after) == [("crossing", "0", "0"), ("crossing", "0", "1"),
                                  ("marked", "00", "11"), ("marked", "01", "10"),
                                  ("plain", "0", "0")]


def test_a_ram_written_and_read_on_two_clocks_synthesises():
    """yosys asserts on a collision don't-care between ports on different clocks (the first
    two-clock board build with this pass stopped in ``opt_mem``)."""
    cells = cell_counts(_TwoClockRam(), "no_rw_check_two_clocks", "ice40",
                        platform=ICEBreakerPlatform())
    assert cells.get("SB_RAM40_4K", 0) == 1


def test_nothing_else_changes():
    before = rtlil.convert(_Memories(), ports=[])
    after = apply_no_rw_check(before)
    assert len(before.splitlines()) == len(after.splitlines())
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True)
               if a != b]
    assert len(changed) == 3
    assert all("COLLISION_X_MASK" in a and "COLLISION_X_MASK" in b for a, b in changed)
    assert apply_no_rw_check(after) == after
