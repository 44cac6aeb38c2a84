"""Ecp5Multiplier: the behavioural product in Amaranth's simulator, the MULT18X18D instance's
wiring (exact for all 65,536 pairs whichever way the DSP reads its sign inputs), and the
product register moving from the fabric into the DSP in a synthesised PE."""
import numpy as np
import pytest
from amaranth.hdl import Const
from amaranth.sim import Simulator
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from fpga.synth_stats import cell_counts
from hw.ecp5_multiplier import INPUT_REGISTERS, MULT18X18D_PARAMETERS, Ecp5Multiplier
from hw.processing_element import ProcessingElement


@pytest.mark.parametrize("input_registers", [False, True])
def test_behavioural_product_is_registered_and_exact(rng, input_registers):
    """``p`` shows the product of the operands ``latency`` clocks before (1, or 2 with
    ``input_registers``)."""
    mult = Ecp5Multiplier(input_registers=input_registers)
    assert mult.latency == (2 if input_registers else 1)
    corners = [-128, -127, -1, 0, 1, 127]
    pairs = [(a, b) for a in corners for b in corners]
    pairs += [tuple(int(x) for x in rng.integers(-128, 128, 2)) for _ in range(3_000)]

    async def bench(ctx):
        products = [0] * mult.latency
        for a, b in pairs:
            ctx.set(mult.a, a)
            ctx.set(mult.b, b)
            assert ctx.get(mult.p) == products[-1]  # registered: no path from a, b to p
            await ctx.tick()
            products = [a * b, *products[:-1]]
            assert ctx.get(mult.p) == products[-1], (a, b)

    sim = Simulator(mult)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def _dsp(mult):
    return mult.elaborate(ULX3S_85F_Platform()).submodules["dsp"]


def _bit_sources(dsp, bus, operand):
    """For each of the DSP's 18 inputs of ``bus``, which bit of ``operand`` drives it."""
    sources = []
    for n in range(18):
        value, direction = dsp.ports[f"{bus}{n}"]
        assert direction == "i"
        matches = [bit for bit in range(len(operand)) if value is operand[bit] or
                   repr(value) == repr(operand[bit])]
        assert len(matches) == 1, f"{bus}{n} is driven by {value!r}, not a bit of the operand"
        sources.append(matches[0])
    return sources


def test_mult18x18d_wiring_gives_the_exact_product_for_every_pair():
    mult = Ecp5Multiplier(primitive="mult18x18d")
    dsp = _dsp(mult)
    assert dsp.type == "MULT18X18D"
    a_bits, b_bits = _bit_sources(dsp, "A", mult.a), _bit_sources(dsp, "B", mult.b)
    assert all(dsp.ports[f"P{n}"][1] == "o" for n in range(36))
    a, b = (x.ravel() for x in np.meshgrid(np.arange(-128, 128), np.arange(-128, 128)))

    def dsp_input(x, sources):
        word = sum(((x >> src) & 1) << n for n, src in enumerate(sources))
        return word, np.where(word >= 1 << 17, word - (1 << 18), word)

    (ua, sa), (ub, sb) = dsp_input(a, a_bits), dsp_input(b, b_bits)
    for label, product in (("signed", sa * sb), ("unsigned", ua * ub)):
        low = product % (1 << 16)
        got = np.where(low >= 1 << 15, low - (1 << 16), low)
        assert np.array_equal(got, a * b), f"the DSP's low 16 bits ({label}) are not a * b"


def test_mult18x18d_registers_only_its_output_on_clk0():
    dsp = _dsp(Ecp5Multiplier(primitive="mult18x18d"))
    params = {name: dsp.parameters[name] for name in MULT18X18D_PARAMETERS}
    assert params["REG_OUTPUT_CLK"] == "CLK0"
    assert all(params[f"REG_{reg}_CLK"] == "NONE"
               for reg in ("INPUTA", "INPUTB", "INPUTC", "PIPELINE"))
    assert repr(dsp.ports["CE0"][0]) == repr(Const(1, 1))
    assert repr(dsp.ports["RST0"][0]) == repr(Const(0, 1))


def test_mult18x18d_input_registers_use_clk0_and_ce0():
    dsp = _dsp(Ecp5Multiplier(primitive="mult18x18d", input_registers=True))
    for operand in ("A", "B"):
        assert dsp.parameters[f"REG_INPUT{operand}_CLK"] == "CLK0"
        assert dsp.parameters[f"REG_INPUT{operand}_CE"] == "CE0"
        assert dsp.parameters[f"REG_INPUT{operand}_RST"] == "RST0"
    assert dsp.parameters["REG_OUTPUT_CLK"] == "CLK0"
    assert all(dsp.parameters[f"REG_{reg}_CLK"] == "NONE" for reg in ("INPUTC", "PIPELINE"))
    assert set(INPUT_REGISTERS) <= set(dsp.parameters)
    assert repr(dsp.ports["CE0"][0]) == repr(Const(1, 1))


def test_auto_instances_the_dsp_only_for_ecp5():
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    mult = Ecp5Multiplier()
    assert mult.uses_mult18x18d(ULX3S_85F_Platform())
    assert not mult.uses_mult18x18d(None)
    assert not mult.uses_mult18x18d(ICEBreakerPlatform())
    assert not Ecp5Multiplier(primitive="behavioural").uses_mult18x18d(ULX3S_85F_Platform())


def test_a_dsp_pe_for_ecp5_keeps_its_product_register_in_the_mult18x18d():
    fabric = cell_counts(ProcessingElement(), "pe_ecp5_fabric_product", "ecp5")
    inside = cell_counts(ProcessingElement(), "pe_ecp5_dsp_product", "ecp5",
                         platform=ULX3S_85F_Platform())
    assert fabric["MULT18X18D"] == inside["MULT18X18D"] == 1, (fabric, inside)
    assert inside["TRELLIS_FF"] == fabric["TRELLIS_FF"] - 16, (fabric, inside)


def test_a_two_stage_dsp_pe_for_ecp5_registers_its_operands_in_the_mult18x18d():
    """``product_stages=2``: the extra product stage is the DSP's input registers; the
    fabric only gains the beat qualifiers' second register (valid, first, last)."""
    platform = ULX3S_85F_Platform()
    one = cell_counts(ProcessingElement(), "pe_ecp5_dsp_product", "ecp5", platform=platform)
    two = cell_counts(ProcessingElement(product_stages=2), "pe_ecp5_dsp_product_2", "ecp5",
                      platform=platform)
    assert one["MULT18X18D"] == two["MULT18X18D"] == 1, (one, two)
    assert two["TRELLIS_FF"] == one["TRELLIS_FF"] + 3, (one, two)


def test_a_three_stage_dsp_pe_for_ecp5_registers_the_dsps_product_in_the_fabric():
    """``product_stages=3``: the MULT18X18D's input and output registers, then the 16-bit
    product once more in fabric flip-flops (for the route to the accumulator), and the beat
    qualifiers' third register."""
    platform = ULX3S_85F_Platform()
    two = cell_counts(ProcessingElement(product_stages=2), "pe_ecp5_dsp_product_2", "ecp5",
                      platform=platform)
    three = cell_counts(ProcessingElement(product_stages=3), "pe_ecp5_dsp_product_3", "ecp5",
                        platform=platform)
    assert two["MULT18X18D"] == three["MULT18X18D"] == 1, (two, three)
    assert three["TRELLIS_FF"] == two["TRELLIS_FF"] + 16 + 3, (two, three)


@pytest.mark.parametrize("primitive,error", [(3, TypeError), ("dsp", ValueError)])
def test_rejects_a_bad_primitive(primitive, error):
    with pytest.raises(error, match="primitive"):
        Ecp5Multiplier(primitive=primitive)


def test_rejects_a_bad_input_registers():
    with pytest.raises(TypeError, match="input_registers must be True or False"):
        Ecp5Multiplier(input_registers=1)
