"""fpga.out_of_context: the port registers of ``Registered`` and an ECP5 out-of-context place
and route of one PE (its product in the MULT18X18D, an Fmax and a critical path reported)."""
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from fpga.out_of_context import Registered, main, place_and_route
from hw.processing_element import ProcessingElement


class _Adder(wiring.Component):
    """Combinational: ``total = a + b``."""

    def __init__(self):
        super().__init__({"a": In(8), "b": In(8), "total": Out(9)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.total.eq(self.a + self.b)
        return m


def test_registered_puts_one_register_on_every_port(rng):
    top = Registered(_Adder())
    assert top.signature.members == _Adder().signature.members
    assert top.register_bits == 8 + 8 + 9
    pairs = [tuple(int(x) for x in rng.integers(256, size=2)) for _ in range(20)]
    seen = []

    async def bench(ctx):
        for a, b in pairs + [(0, 0)] * 2:
            ctx.set(top.a, a)
            ctx.set(top.b, b)
            await ctx.tick()
            seen.append(ctx.get(top.total))

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    # the input register takes a pair at the first edge after it is set, the output
    # register its sum at the next: read after that second edge (a combinational path or
    # one register would show it a cycle earlier)
    assert seen[0] == 0
    assert seen[1:len(pairs) + 1] == [a + b for a, b in pairs]


def test_registered_refuses_what_is_not_a_component():
    with pytest.raises(TypeError, match="wiring.Component"):
        Registered(object())


def test_a_dsp_pe_places_and_routes_alone_with_its_product_in_the_dsp():
    result = place_and_route(ProcessingElement(), "test_pe_dsp", mhz=100)
    print(f"PE alone: {result['fmax_mhz']} MHz, {result['utilisation'].get('TRELLIS_COMB')}")
    assert result["utilisation"]["MULT18X18D"]["used"] == 1
    assert result["fmax_mhz"] > 0
    assert "Critical path report for clock 'clk'" in result["critical_path"]
    assert (result["out"] / "report.json").exists()
    assert 0 < result["wrapper_ff"] < result["cells"]["TRELLIS_FF"]


def test_the_command_line_prints_the_fmax(capsys):
    assert main(["pe", "--mhz", "100", "--name", "test_pe_cli"]) == 0
    out = capsys.readouterr().out
    assert "test_pe_cli:" in out and "MHz (target 100)" in out and "MULT18X18D 1" in out
