"""``make bitstream BOARD=icebreaker`` as a fresh clone runs it: the iCEBreaker (iCE40UP5K)
board row through yosys and nextpnr to a bitstream, timing-clean with the issue's margin.

The longest test of ``make test`` (several minutes of placement and routing on one core);
the ECP5 rows, whose builds take 5 to 35 minutes, run in ``make fpga-all``."""
import json

import pytest

from fpga.bitstream import BOARDS, build
from sim.toolchain import BUILD_DIR

#: a UP5K bitstream's size in bytes (the configuration image of every iCE40UP5K design)
UP5K_BITSTREAM_BYTES = 104_090


# placement and routing of an 89 %-full part: ~10 min on one core next to the other tests
@pytest.mark.first
@pytest.mark.timeout(2700)
def test_the_icebreaker_bitstream_builds_and_meets_its_clock_with_margin():
    text, fmax_mhz = build("icebreaker")
    out = BUILD_DIR / "fpga" / "icebreaker"
    assert (out / "loom.bin").stat().st_size == UP5K_BITSTREAM_BYTES
    report = json.loads((out / "report.json").read_text())
    for name, use in report["utilization"].items():
        assert use["used"] <= use["available"], f"{name}: {use}"
    # nextpnr checks the design clock itself (the build fails below it); the issue asks
    # for 10 % more, since nextpnr can be optimistic near the edge
    clock_mhz = BOARDS["icebreaker"].config.clock_hz / 1e6
    assert fmax_mhz is not None and clock_mhz <= 0.9 * fmax_mhz, text
    assert "ICESTORM_LC" in text and "achieved Fmax" in text
