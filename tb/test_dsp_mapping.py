"""How the int8 multiplies map onto FPGA DSPs: every PE's product in one hard multiplier
(MULT18X18D on ECP5, SB_MAC16 on iCE40) unless it is asked to use LUTs, and the LUT product
exact for all 65,536 operand pairs."""
import numpy as np
from amaranth.hdl import Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fpga.synth_stats import cell_counts
from hw.processing_element import ProcessingElement, lut_product
from hw.systolic_array import SystolicArray
from sim.vector_harness import VectorHarness


class LutProduct(wiring.Component):
    a: In(signed(8))
    b: In(signed(8))
    p: Out(signed(16))

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.p.eq(lut_product(self.a, self.b, m))
        return m


def test_lut_product_equals_the_int8_product_for_every_pair():
    harness = VectorHarness(LutProduct(), "lut_product")
    a, b = (x.ravel() for x in np.meshgrid(np.arange(-128, 128), np.arange(-128, 128)))
    out = harness.run(a=a & 0xFF, b=b & 0xFF)
    got = ((out["p"].astype(np.int64) + 2**15) % 2**16) - 2**15
    bad = np.nonzero(got != a * b)[0]
    assert len(bad) == 0, f"{len(bad)} wrong; first {a[bad[0]]} x {b[bad[0]]} = {got[bad[0]]}"


def test_each_int8_multiply_lands_in_one_dsp_unless_built_from_luts():
    logic = {}
    for family, dsp in (("ecp5", "MULT18X18D"), ("ice40", "SB_MAC16")):
        cells = cell_counts(ProcessingElement(), f"pe_dsp_{family}", family)
        assert cells.get(dsp, 0) == 1, f"{family}: a PE's product should be one {dsp}: {cells}"
        logic["dsp", family] = cells
        cells = cell_counts(ProcessingElement(multiplier="lut"), f"pe_lut_{family}", family)
        assert cells.get(dsp, 0) == 0, f"{family}: a LUT PE used a {dsp}: {cells}"
        logic["lut", family] = cells
    # The LUT product must stay on carry chains: a LUT PE at most 3x a DSP PE's logic on ECP5
    # (a CCU2C is two LUT4s). Measured 2.1x; a sum of eight shifted rows was 4.4x.
    size = {kind: logic[kind, "ecp5"]["LUT4"] + 2 * logic[kind, "ecp5"]["CCU2C"]
            for kind in ("dsp", "lut")}
    print(f"ECP5 PE logic (LUT4 + 2 CCU2C): DSP {size['dsp']}, LUT {size['lut']}")
    assert size["lut"] <= 3 * size["dsp"], size
    # an array keeps the count it is given: 2 of 6 PEs in LUTs -> 4 MULT18X18D
    cells = cell_counts(SystolicArray(2, 3, lut_multipliers=2), "array_2x3_lut2", "ecp5")
    assert cells.get("MULT18X18D", 0) == 4, cells


def test_paired_multipliers_put_two_products_in_each_sb_mac16():
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    # 4x4 with 3 LUT PEs: 13 DSP PEs -> 6 pairs and one PE on its own = 7 SB_MAC16
    cells = cell_counts(SystolicArray(4, 4, lut_multipliers=3, paired_multipliers=True),
                        "array_4x4_paired", "ice40", platform=ICEBreakerPlatform())
    assert cells.get("SB_MAC16", 0) == 7, cells
    cells = cell_counts(SystolicArray(4, 4, paired_multipliers=True), "array_4x4_paired_full",
                        "ice40", platform=ICEBreakerPlatform())
    assert cells.get("SB_MAC16", 0) == 8, cells


def test_block_counts_split_the_cells_by_module():
    from fpga.synth_stats import block_counts, block_totals

    blocks = block_counts(SystolicArray(2, 2), "array_2x2_blocks", "ice40")
    pes = {name: cells for name, cells in blocks.items() if ".pe_" in name}
    assert len(pes) == 4 and all(cells.get("SB_MAC16") == 1 for cells in pes.values()), pes
    total = block_totals(blocks, 1)["array_2x2_blocks"]
    assert total["SB_MAC16"] == 4 and total["SB_LUT4"] > sum(c["SB_LUT4"] for c in pes.values())
