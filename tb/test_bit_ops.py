"""The bit-level helpers against Python's arithmetic."""
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hw.bit_ops import at_least


@pytest.mark.parametrize("width", [1, 3, 5])
def test_at_least_is_the_comparison_for_every_value_and_constant(width):
    value = Signal(width)
    constants = range(-1, (1 << width) + 2)
    results = [at_least(value, c) for c in constants]

    async def bench(ctx):
        for v in range(1 << width):
            ctx.set(value, v)
            got = [ctx.get(r) for r in results]
            assert got == [int(v >= c) for c in constants], f"value {v}"

    sim = Simulator(Module())
    sim.add_testbench(bench)
    sim.run()
