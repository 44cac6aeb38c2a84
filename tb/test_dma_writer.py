"""The AXI4 write DMA in Verilator against cocotbext-axi host memory, per bus width."""
import os

import pytest

from hw.dma_writer import DmaWriter
from sim.cocotb_run import run_cocotb


@pytest.mark.parametrize("data_width", [32, 64, 128, 256])
def test_dma_writer(data_width):
    seed = int(os.environ["LOOM_SEED"])
    writer = DmaWriter(data_width=data_width, timeout=256)
    result = run_cocotb(writer, "dma_writer", "tb.dma_writer_tb", f"dma_writer_{data_width}",
                        seed, env={"LOOM_DATA_WIDTH": str(data_width), "LOOM_TIMEOUT": "256"})
    assert result.failed == {}, f"seed {seed}: {result.failed}"
    assert len(result.passed) == 4, result.passed


def test_one_burst_outstanding():
    """``max_outstanding=1`` (the board's, behind a RAM that serves one burst at a time):
    the same transfers with never a second burst in flight, though the host memory would
    take one."""
    seed = int(os.environ["LOOM_SEED"])
    writer = DmaWriter(data_width=32, max_outstanding=1, timeout=256)
    result = run_cocotb(writer, "dma_writer", "tb.dma_writer_tb", "dma_writer_32_one_outstanding",
                        seed, env={"LOOM_DATA_WIDTH": "32", "LOOM_TIMEOUT": "256",
                                   "LOOM_MAX_OUTSTANDING": "1"})
    assert result.failed == {}, f"seed {seed}: {result.failed}"
    assert len(result.passed) == 4, result.passed
