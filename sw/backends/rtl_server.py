"""cocotb module run inside the simulator by the ``rtl`` backend (``sw/backends/rtl.py``).

It owns the clock, the reset, the host memory (cocotbext-axi ``AxiRam`` on the ``mem`` port)
and the host CPU (``AxiLiteMaster`` on ``csr``), connects back to the driver process over
the socket named by ``LOOM_RTL_ADDRESS`` and serves its requests one at a time:
register reads and writes go over AXI4-Lite (simulated time passes), memory reads and writes
touch the ``AxiRam`` directly (no time passes: the host CPU's view of its own memory), and
``wait`` runs the clock. Simulated time passes only inside requests.
"""
import logging
import os
from multiprocessing.connection import Client

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam
from cocotbext.axi.constants import AxiResp


@cocotb.test()
async def serve(dut):
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    mem = AxiRam(AxiBus.from_prefix(dut, "mem", bus_separator="__"), dut.clk, dut.rst,
                 size=int(os.environ["LOOM_RTL_MEMORY"]))
    csr = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "csr", bus_separator="__"), dut.clk,
                        dut.rst)
    # The bus models log every transfer at INFO: thousands of lines per job.
    logging.getLogger(f"cocotb.{dut._name}").setLevel(logging.WARNING)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    conn = Client(os.environ["LOOM_RTL_ADDRESS"], authkey=os.environ["LOOM_RTL_KEY"].encode())
    cycles = 0
    while True:
        request = conn.recv()
        op, args = request[0], request[1:]
        try:
            if op == "read_word":
                resp = await csr.read(args[0], 4)
                reply = (int.from_bytes(resp.data, "little") if resp.resp == AxiResp.OKAY
                         else ("bus", f"{resp.resp.name} reading register {args[0]:#x}"))
            elif op == "write_word":
                resp = await csr.write(args[0], int(args[1]).to_bytes(4, "little"))
                reply = None if resp.resp == AxiResp.OKAY else \
                    ("bus", f"{resp.resp.name} writing register {args[0]:#x}")
            elif op == "read_memory":
                reply = bytes(mem.read(args[0], args[1]))
            elif op == "write_memory":
                mem.write(args[0], args[1])
                reply = None
            elif op == "wait":
                await ClockCycles(dut.clk, args[0])
                cycles += args[0]
                reply = None
            elif op == "close":
                conn.send(None)
                conn.close()
                return
            else:
                reply = ("bus", f"unknown request {op!r}")
        except Exception as exc:  # noqa: BLE001 - reported to the driver, which raises
            reply = ("error", f"{type(exc).__name__}: {exc}")
        conn.send(reply)
