"""cocotb module run inside the simulator by the ``rtl`` backend (``sw/backends/rtl.py``).

It owns the clock (and the array's, ``LOOM_RTL_ARRAY_PERIOD_PS``, in builds with one), the
reset, the host memory (cocotbext-axi ``AxiRam`` on the ``mem`` port)
and the host CPU (``AxiLiteMaster`` on ``csr``), connects back to the driver process over
the socket named by ``LOOM_RTL_ADDRESS`` and serves its requests one at a time:
register reads and writes go over AXI4-Lite (simulated time passes), memory reads and writes
touch the ``AxiRam`` directly (no time passes: the host CPU's view of its own memory), and
``wait`` runs the clock. Simulated time passes only inside requests. The request loop is
``sim/request_loop.py``'s, shared with the board simulation.
"""
import logging
import os

import cocotb
from cocotb.triggers import ClockCycles
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam
from cocotbext.axi.constants import AxiResp

from sim.clock_reset import clock_and_reset
from sim.request_loop import serve_requests


@cocotb.test()
async def serve(dut):
    mem = AxiRam(AxiBus.from_prefix(dut, "mem", bus_separator="__"), dut.clk, dut.rst,
                 size=int(os.environ["LOOM_RTL_MEMORY"]))
    csr = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "csr", bus_separator="__"), dut.clk,
                        dut.rst)
    # The bus models log every transfer at INFO: thousands of lines per job.
    logging.getLogger(f"cocotb.{dut._name}").setLevel(logging.WARNING)
    # a build whose array has a clock of its own gets it too
    await clock_and_reset(dut, 10, os.environ.get("LOOM_RTL_ARRAY_PERIOD_PS"))

    async def read_word(offset):
        resp = await csr.read(offset, 4)
        if resp.resp != AxiResp.OKAY:
            return ("bus", f"{resp.resp.name} reading register {offset:#x}")
        return int.from_bytes(resp.data, "little")

    async def write_word(offset, value):
        resp = await csr.write(offset, int(value).to_bytes(4, "little"))
        if resp.resp != AxiResp.OKAY:
            return ("bus", f"{resp.resp.name} writing register {offset:#x}")
        return None

    async def wait(cycles):
        await ClockCycles(dut.clk, cycles)

    await serve_requests("LOOM_RTL", {
        "read_word": read_word,
        "write_word": write_word,
        "read_memory": lambda addr, length: bytes(mem.read(addr, length)),
        "write_memory": mem.write,
        "wait": wait,
    })
