"""The whole Accelerator in Verilator with cocotbext-axi host memory and register master."""
import os

import pytest

from hw.accelerator import Accelerator
from sim.cocotb_run import run_cocotb

COMMON = ("identifies_itself", "one_tile_int8_gemm_matches_golden",
          "bad_opcode_stops_with_its_code_and_soft_reset_recovers",
          "store_outside_the_window_writes_nothing", "tiled_int8_gemms_in_every_store_mode",
          "every_error_has_its_code_and_soft_reset_recovers", "a_silent_bus_trips_the_watchdog")
FP16 = ("tiled_fp16_gemms_store_fp32_and_fp16",)
#: build -> (datapaths, bus bits, tests), all 8x8. On the 256-bit bus the 16-byte operand
#: words and the 8-byte int8 / 16-byte fp16 result rows are narrower than a beat: packed.
BUILDS = {
    "int8": (("int8",), 64, COMMON),
    "dual": (("int8", "fp16"), 64, (*COMMON, *FP16)),
    "dual_256": (("int8", "fp16"), 256, (*COMMON, *FP16, "packed_rows_follow_their_rules",
                                         "gemms_split_over_k_accumulate")),
}


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_accelerator(build):
    rows, cols = 8, 8
    datapaths, data_width, tests = BUILDS[build]
    seed = int(os.environ["LOOM_SEED"])
    timeout = 2048
    top = Accelerator(rows, cols, datapaths=datapaths, data_width=data_width, depth=64,
                      timeout=timeout)
    env = {"LOOM_ROWS": str(rows), "LOOM_COLS": str(cols), "LOOM_DATA_WIDTH": str(data_width),
           "LOOM_LANE_BYTES": str(top.lane_bits // 8), "LOOM_TIMEOUT": str(timeout)}
    result = run_cocotb(top, "accelerator", "tb.accelerator_tb", f"accelerator_8x8_{build}",
                        seed, tests=tests, env=env)
    assert result.failed == {}, f"seed {seed}: {result.failed}"
    assert sorted(result.passed) == sorted(tests)
