"""The AXI4 read DMA in Verilator against cocotbext-axi host memory, per bus width."""
import os

import pytest

from hw.dma_reader import DmaReader
from sim.cocotb_run import run_cocotb


@pytest.mark.parametrize("data_width", [32, 64, 128, 256])
def test_dma_reader(data_width):
    seed = int(os.environ["LOOM_SEED"])
    reader = DmaReader(data_width=data_width, timeout=256)
    result = run_cocotb(reader, "dma_reader", "tb.dma_reader_tb", f"dma_reader_{data_width}",
                        seed, env={"LOOM_DATA_WIDTH": str(data_width), "LOOM_TIMEOUT": "256"})
    assert result.failed == {}, f"seed {seed}: {result.failed}"
    assert len(result.passed) == 4, result.passed


def test_one_burst_outstanding():
    """``max_outstanding=1`` (the board's, behind a RAM that serves one burst at a time):
    the same transfers with never a second burst in flight, though the host memory would
    take one."""
    seed = int(os.environ["LOOM_SEED"])
    reader = DmaReader(data_width=32, max_outstanding=1, timeout=256)
    result = run_cocotb(reader, "dma_reader", "tb.dma_reader_tb", "dma_reader_32_one_outstanding",
                        seed, env={"LOOM_DATA_WIDTH": "32", "LOOM_TIMEOUT": "256",
                                   "LOOM_MAX_OUTSTANDING": "1"})
    assert result.failed == {}, f"seed {seed}: {result.failed}"
    assert len(result.passed) == 4, result.passed


@pytest.mark.parametrize("kwargs, message", [
    ({"data_width": 16}, "data_width"),
    ({"addr_width": 11}, "addr_width must be an integer from 12"),
    ({"addr_width": 65}, "addr_width must be an integer from 12"),
    ({"addr_width": True}, "addr_width"),
    ({"max_burst": 0}, "max_burst"),
    ({"timeout": 8}, "timeout"),
])
def test_parameters_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DmaReader(**kwargs)


def test_narrow_addresses_elaborate():
    """17-bit DMA addresses (a 128 KiB host RAM, the UP5K build) are allowed."""
    from amaranth.back import rtlil

    assert "araddr" in rtlil.convert(DmaReader(data_width=64, addr_width=17))
