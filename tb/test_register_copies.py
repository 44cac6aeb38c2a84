"""register_copies: every copy follows its value a clock later in simulation; on an ECP5 each
bit of each copy is a TRELLIS_FF instance, wired to the value and the domain's clock, and
synthesis keeps the copies apart (as it does not for plain registers)."""
import pytest
from amaranth.hdl import Cat, ClockSignal, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from fpga.synth_stats import cell_counts
from hw.register_copies import TRELLIS_FF_PARAMETERS, register_copies
from hw.result_buffer import ResultBuffer


class _Fanout(wiring.Component):
    """A 3-bit choice registered in ``copies`` copies, each picking 8 bits of two words."""

    choice: In(3)
    x: In(64)
    y: In(64)
    q: Out(64)

    def __init__(self, copies=8):
        self.copies = copies
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        self.registers = register_copies(m, platform, "sync", self.choice, self.copies,
                                         name="choice")
        step = 64 // self.copies
        m.d.comb += self.q.eq(Cat(*(
            Mux(reg.any(), self.x[n * step:(n + 1) * step], self.y[n * step:(n + 1) * step])
            for n, reg in enumerate(self.registers))))
        return m


def test_copies_follow_the_value_a_clock_later(rng):
    m = Module()
    value = Signal(5)
    copies = register_copies(m, None, "sync", value, 3, name="copy")
    values = [int(v) for v in rng.integers(0, 32, 50)]

    async def bench(ctx):
        previous = 0
        for v in values:
            ctx.set(value, v)
            assert [ctx.get(c) for c in copies] == [previous] * 3
            await ctx.tick()
            assert [ctx.get(c) for c in copies] == [v] * 3
            previous = v

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_on_ecp5_each_bit_of_each_copy_is_a_trellis_ff_on_the_domain_clock():
    m = Module()
    value = Signal(2)
    copies = register_copies(m, ULX3S_85F_Platform(), "fast", value, 3, name="copy")
    for n, copy in enumerate(copies):
        for bit in range(2):
            ff = m.submodules[f"copy_{n}_ff{bit}"]
            assert ff.type == "TRELLIS_FF"
            assert {k: ff.parameters[k] for k in TRELLIS_FF_PARAMETERS} == TRELLIS_FF_PARAMETERS
            assert repr(ff.ports["DI"][0]) == repr(value[bit])
            assert repr(ff.ports["Q"][0]) == repr(copy[bit])
            assert repr(ff.ports["CLK"][0]) == repr(ClockSignal("fast"))
            assert repr(ff.ports["CE"][0]) == repr(Const(1, 1))
            assert repr(ff.ports["LSR"][0]) == repr(Const(0, 1))


def test_synthesis_keeps_the_copies_only_when_instanced():
    plain = cell_counts(_Fanout(), "fanout_plain", "ecp5")
    kept = cell_counts(_Fanout(), "fanout_kept", "ecp5", platform=ULX3S_85F_Platform())
    assert plain["TRELLIS_FF"] == 3, plain                 # yosys merged the 8 copies
    assert kept["TRELLIS_FF"] == 8 * 3, kept


def test_the_result_buffer_keeps_its_fanout_registers_per_lane_on_ecp5():
    def buffer():
        return ResultBuffer(lanes=4, depth=4, slots=1)
    plain = cell_counts(buffer(), "result_buffer_plain", "ecp5")
    kept = cell_counts(buffer(), "result_buffer_kept", "ecp5", platform=ULX3S_85F_Platform())
    # take_result, take_written and accumulate, and the write row (2 address bits and
    # valid): merged into one register each (or into the pipeline's own), or one per lane
    assert kept["TRELLIS_FF"] - plain["TRELLIS_FF"] >= (4 - 1) * (3 + 3), (plain, kept)


@pytest.mark.parametrize("count", [0, -1, 2.0, True])
def test_rejects_a_bad_count(count):
    with pytest.raises(ValueError, match="count"):
        register_copies(Module(), None, "sync", Signal(), count, name="x")


def test_copies_with_reset_clear_in_simulation_and_wire_the_domain_reset_on_ecp5():
    from amaranth.hdl import ClockDomain, ResetSignal

    m = Module()
    m.domains.sync = domain = ClockDomain()
    value = Signal(2, init=0)
    copies = register_copies(m, None, "sync", value, 2, name="copy", reset=True)

    async def bench(ctx):
        ctx.set(value, 3)
        await ctx.tick()
        assert [ctx.get(c) for c in copies] == [3, 3]
        ctx.set(domain.rst, 1)
        await ctx.tick()
        assert [ctx.get(c) for c in copies] == [0, 0]

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()

    m = Module()
    register_copies(m, ULX3S_85F_Platform(), "array", value, 1, name="copy", reset=True)
    assert repr(m.submodules["copy_0_ff1"].ports["LSR"][0]) == repr(ResetSignal("array"))


def test_separate_control_keeps_each_pes_qualifiers_on_ecp5():
    """PEs on one anti-diagonal hold the same qualifiers: yosys merges their registers (one
    set per anti-diagonal) unless each PE's are its own flip-flops."""
    from hw.systolic_array import SystolicArray

    def array(separate):
        return SystolicArray(3, 3, lut_multipliers=9, separate_control=separate)
    platform = ULX3S_85F_Platform()
    merged = cell_counts(array(False), "array3_ctl_merged", "ecp5", platform=platform)
    own = cell_counts(array(True), "array3_ctl_own", "ecp5", platform=platform)
    # 9 PEs on 5 anti-diagonals: at least valid, first and last of 4 more PEs
    assert own["TRELLIS_FF"] - merged["TRELLIS_FF"] >= (9 - 5) * 3, (merged, own)
