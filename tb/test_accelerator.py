"""The whole Accelerator in Verilator with cocotbext-axi host memory and register master."""
import os

from hw.accelerator import Accelerator
from sim.cocotb_run import run_cocotb

ROWS, COLS, DATA_WIDTH = 8, 8, 64


def test_accelerator_int8():
    seed = int(os.environ["LOOM_SEED"])
    top = Accelerator(ROWS, COLS, data_width=DATA_WIDTH, depth=64, timeout=4096)
    env = {"LOOM_ROWS": str(ROWS), "LOOM_COLS": str(COLS), "LOOM_DATA_WIDTH": str(DATA_WIDTH)}
    result = run_cocotb(top, "accelerator", "tb.accelerator_tb", "accelerator_8x8", seed,
                        env=env)
    assert result.failed == {}, f"seed {seed}: {result.failed}"
    assert len(result.passed) == 4, result.passed
