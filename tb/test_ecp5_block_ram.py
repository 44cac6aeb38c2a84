"""Ecp5OutregRam: its behaviour in Amaranth's simulator (two clocks from address to data,
each register with its own enable), and the DP16KD instances' wiring on an ECP5: every bit
of a word written through port A comes back on the same block's same pin of port B."""
import pytest
from amaranth.hdl import ClockSignal, Const
from amaranth.sim import Simulator
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from hw.ecp5_block_ram import DP16KD_PARAMETERS, Ecp5OutregRam


def test_reads_take_two_clocks_and_each_register_holds_without_its_enable(rng):
    ram = Ecp5OutregRam(width=40, depth=20)
    words = [int(w) for w in rng.integers(0, 2**40, 20, dtype="uint64")]

    async def bench(ctx):
        for addr, word in enumerate(words):
            ctx.set(ram.w_en, 1)
            ctx.set(ram.w_addr, addr)
            ctx.set(ram.w_data, word)
            await ctx.tick()
        ctx.set(ram.w_en, 0)
        ctx.set(ram.r_en, 1)
        ctx.set(ram.r_oe, 1)
        ctx.set(ram.r_addr, 3)
        await ctx.tick()
        ctx.set(ram.r_addr, 7)
        await ctx.tick()
        assert ctx.get(ram.r_data) == words[3]         # address 3, two clocks ago
        ctx.set(ram.r_addr, 9)
        ctx.set(ram.r_en, 0)                           # the read register holds 7
        await ctx.tick()
        assert ctx.get(ram.r_data) == words[7]
        ctx.set(ram.r_oe, 0)                           # the output register holds 7
        await ctx.tick()
        assert ctx.get(ram.r_data) == words[7]
        ctx.set(ram.r_oe, 1)                           # the read register still has 7
        await ctx.tick()
        assert ctx.get(ram.r_data) == words[7]
        ctx.set(ram.r_en, 1)
        await ctx.tick()
        await ctx.tick()
        assert ctx.get(ram.r_data) == words[9]

    sim = Simulator(ram)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def _same(value, other):
    return value is other or repr(value) == repr(other)


@pytest.mark.parametrize("width, depth", [(128, 1024), (40, 600)])
def test_each_bit_is_written_and_read_on_the_same_block_and_pin(width, depth):
    ram = Ecp5OutregRam(width=width, depth=depth, read_domain="array")
    m = ram.elaborate(ULX3S_85F_Platform())
    blocks = [m.submodules[f"block_{n}"] for n in range(ram.blocks)]
    assert len(blocks) == -(-width // 18)
    read = {}
    for n, block in enumerate(blocks):
        assert block.type == "DP16KD"
        assert {k: block.parameters[k] for k in DP16KD_PARAMETERS} == DP16KD_PARAMETERS
        assert _same(block.ports["CLKA"][0], ClockSignal("sync"))
        assert _same(block.ports["CLKB"][0], ClockSignal("array"))
        assert _same(block.ports["WEA"][0], ram.w_en)
        assert _same(block.ports["CEB"][0], ram.r_en)
        assert _same(block.ports["OCEB"][0], ram.r_oe)
        for pin in ("WEB", "RSTA", "RSTB", "CSA0", "CSB0"):
            assert _same(block.ports[pin][0], Const(0, 1)), pin
        # the word address on pins 13..4, both bytes written on A (pins 1, 0)
        for port, addr in (("A", ram.w_addr), ("B", ram.r_addr)):
            for bit in range(10):
                pin = block.ports[f"AD{port}{bit + 4}"][0]
                expected = addr[bit] if bit < len(addr) else Const(0, 1)
                assert _same(pin, expected), (port, bit)
        assert [_same(block.ports[f"ADA{b}"][0], Const(1, 1)) for b in (0, 1)] == [True] * 2
        for pin in range(18):
            bit = n * 18 + pin
            expected = ram.w_data[bit] if bit < width else Const(0, 1)
            assert _same(block.ports[f"DIA{pin}"][0], expected), (n, pin)
            read[bit] = block.ports[f"DOB{pin}"][0]
    # r_data is the blocks' outputs in the same order: bit b from block b // 18, pin b % 18
    (assign,) = [s for s in m._statements["comb"]]
    outputs = assign.rhs
    for bit in range(width):
        assert _same(read[bit], outputs.value[bit]), bit
    assert len(outputs) == width
    assert _same(assign.lhs, ram.r_data)


@pytest.mark.parametrize("kwargs", [{"width": 0, "depth": 4}, {"width": 8, "depth": 1025},
                                    {"width": 8, "depth": 0}, {"width": True, "depth": 4}])
def test_rejects_bad_sizes(kwargs):
    with pytest.raises(ValueError):
        Ecp5OutregRam(**kwargs)
