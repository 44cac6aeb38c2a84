"""BlockRamFifo: cycle for cycle the same as Amaranth's SyncFIFOBuffered, no used read ever
meets a write to its address, and on the iCE40 it is block RAM with no per-bit logic."""
import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
from amaranth_boards.icebreaker import ICEBreakerPlatform

from fpga.synth_stats import cell_counts
from hw.block_ram import BlockRamFifo

PORTS_OUT = ("w_rdy", "r_rdy", "level")


class _Pair(Elaboratable):
    def __init__(self, width, depth):
        self.ours = BlockRamFifo(width=width, depth=depth)
        self.reference = SyncFIFOBuffered(width=width, depth=depth)

    def elaborate(self, platform):
        m = Module()
        m.submodules.ours, m.submodules.reference = self.ours, self.reference
        return m


@pytest.mark.parametrize("depth", [2, 3, 5, 8])
@pytest.mark.parametrize("write_rate,read_rate", [(0.5, 0.5), (0.9, 0.3), (0.3, 0.9)])
def test_matches_sync_fifo_buffered_cycle_for_cycle(rng, depth, write_rate, read_rate):
    pair = _Pair(width=16, depth=depth)
    ours, reference = pair.ours, pair.reference
    collisions, cycles, words = [], 2000, []

    async def bench(ctx):
        w_port, r_port = ours._ports
        for cycle in range(cycles):
            w_en, r_en = rng.random() < write_rate, rng.random() < read_rate
            data = int(rng.integers(0, 1 << 16))
            for fifo in (ours, reference):
                ctx.set(fifo.w_en, w_en)
                ctx.set(fifo.w_data, data)
                ctx.set(fifo.r_en, r_en)
            for name in PORTS_OUT:
                assert ctx.get(getattr(ours, name)) == ctx.get(getattr(reference, name)), \
                    f"{name} differs at cycle {cycle}"
            if ctx.get(reference.r_rdy):
                assert ctx.get(ours.r_data) == ctx.get(reference.r_data), \
                    f"r_data differs at cycle {cycle}"
                words.append(r_en)
            if (ctx.get(r_port.en) and ctx.get(w_port.en)
                    and ctx.get(r_port.addr) == ctx.get(w_port.addr)):
                collisions.append(cycle)
            await ctx.tick()

    sim = Simulator(pair)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert not collisions, f"reads of the address being written at cycles {collisions[:5]}"
    assert sum(words) > cycles * min(write_rate, read_rate) / 2, "too few words went through"


def test_rejects_a_depth_below_two():
    with pytest.raises(ValueError, match="depth must be an integer of at least 2"):
        BlockRamFifo(width=8, depth=1)


class _Top(wiring.Component):
    """A FIFO's ports as a component (what synthesis takes)."""

    def __init__(self, fifo):
        self.fifo = fifo
        super().__init__({"w_data": In(fifo.width), "w_en": In(1), "w_rdy": Out(1),
                          "r_data": Out(fifo.width), "r_en": In(1), "r_rdy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = self.fifo
        m.d.comb += [fifo.w_data.eq(self.w_data), fifo.w_en.eq(self.w_en),
                     self.w_rdy.eq(fifo.w_rdy), self.r_data.eq(fifo.r_data),
                     fifo.r_en.eq(self.r_en), self.r_rdy.eq(fifo.r_rdy)]
        return m


@pytest.mark.parametrize("through", ["verilog", "rtlil"])
def test_ice40_block_ram_without_read_during_write_logic(through):
    """64-bit words: SyncFIFOBuffered needs ~2 flip-flops and ~1 LUT4 per bit around the
    RAM for its read-during-write promise; this queue only its pointers and level. Both as
    the simulations' Verilog and as the board flow's RTLIL (elaborated for the iCEBreaker,
    ``fpga.no_rw_check`` applied), which yosys reads without the attribute's effect."""
    platform = ICEBreakerPlatform() if through == "rtlil" else None
    ours = cell_counts(_Top(BlockRamFifo(width=64, depth=16)), f"block_ram_fifo_{through}",
                       "ice40", platform=platform)
    reference = cell_counts(_Top(SyncFIFOBuffered(width=64, depth=16)),
                            f"sync_fifo_buffered_{through}", "ice40", platform=platform)

    def flip_flops(cells):
        return sum(n for cell, n in cells.items() if cell.startswith("SB_DFF"))

    print(f"BlockRamFifo 64x16: {flip_flops(ours)} FF, {ours.get('SB_LUT4', 0)} LUT4; "
          f"SyncFIFOBuffered: {flip_flops(reference)} FF, {reference.get('SB_LUT4', 0)} LUT4")
    assert ours.get("SB_RAM40_4K", 0) == reference.get("SB_RAM40_4K", 0) >= 4
    assert flip_flops(ours) < 20 and ours.get("SB_LUT4", 0) < 40
    assert flip_flops(reference) > 64 + flip_flops(ours)
