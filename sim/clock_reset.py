"""Clocks and reset of a simulated Loom top, shared by the cocotb modules that drive one."""
import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

__all__ = ["clock_and_reset"]


async def clock_and_reset(dut, period_ns, array_period_ps=None):
    """Start ``dut.clk`` (``period_ns``) and, for a design whose array has a clock of its
    own, ``dut.array_clk`` (``array_period_ps``, an even number); hold ``rst`` (and
    ``array_rst``) for three system cycles, then return on the next rising edge."""
    cocotb.start_soon(Clock(dut.clk, period_ns, unit="ns").start())
    resets = [dut.rst]
    if array_period_ps:
        cocotb.start_soon(Clock(dut.array_clk, int(array_period_ps), unit="ps").start())
        resets.append(dut.array_rst)
    for reset in resets:
        reset.value = 1
    await ClockCycles(dut.clk, 3)
    for reset in resets:
        reset.value = 0
    await RisingEdge(dut.clk)
