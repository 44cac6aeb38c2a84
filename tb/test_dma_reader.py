"""The AXI4 read DMA in Verilator against cocotbext-axi host memory, per bus width."""
import pytest

from hw.dma_reader import DmaReader
from tb.dma_engine_cases import CASES, run_engine


@pytest.mark.parametrize("data_width, max_outstanding", CASES)
def test_dma_reader(data_width, max_outstanding):
    run_engine(DmaReader, "dma_reader", data_width, max_outstanding)


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
