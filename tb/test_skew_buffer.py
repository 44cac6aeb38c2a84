"""SkewBuffer in Amaranth's simulator: per-lane delays, and what a reset reaches."""
import pytest
from amaranth.hdl import Module, ResetSignal, Signal
from amaranth.sim import Simulator

from hw.skew_buffer import SkewBuffer


def run_with_reset(reset_less):
    """Lane delays (0, 1, 3) of 8-bit values; returns the outputs before and after a reset."""
    skew = SkewBuffer(8, [0, 1, 3], reset_less=reset_less)
    m = Module()
    m.submodules.skew = skew
    reset = Signal()
    m.d.comb += ResetSignal().eq(reset)
    seen = {}

    async def bench(ctx):
        for value in (10, 20, 30, 40):
            ctx.set(skew.i, [value, value + 1, value + 2])
            await ctx.tick()
        seen["delayed"] = [ctx.get(skew.o[lane]) for lane in range(3)]
        ctx.set(reset, 1)
        await ctx.tick()
        ctx.set(reset, 0)
        seen["after_reset"] = [ctx.get(skew.o[lane]) for lane in range(1, 3)]

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return seen


@pytest.mark.parametrize("reset_less", [False, True])
def test_lanes_are_delayed_and_only_resettable_lanes_clear(reset_less):
    seen = run_with_reset(reset_less)
    # after the fourth tick (inputs 10, 20, 30, 40 + lane): lane 0 passes 40 through, lane
    # 1 holds what it took at the last tick (41), lane 2 what came three ticks ago (22)
    assert seen["delayed"] == [40, 41, 22]
    if reset_less:
        assert seen["after_reset"] != [0, 0]      # the data stayed (and kept moving)
    else:
        assert seen["after_reset"] == [0, 0]


def test_rejects_a_non_boolean_reset_less():
    with pytest.raises(TypeError, match="reset_less"):
        SkewBuffer(8, [1], reset_less=1)
