"""The AXI4 write DMA in Verilator against cocotbext-axi host memory, per bus width."""
import pytest

from hw.dma_writer import DmaWriter
from tb.dma_engine_cases import CASES, run_engine


@pytest.mark.parametrize("data_width, max_outstanding", CASES)
def test_dma_writer(data_width, max_outstanding):
    run_engine(DmaWriter, "dma_writer", data_width, max_outstanding)
