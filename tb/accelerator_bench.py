"""cocotb module for ``make bench``: one int8 GEMM through the Accelerator, perf counters out.

Run by ``sim/bench.py``; ``LOOM_M/K/N`` give the GEMM, ``LOOM_TILED`` the host layout
(``tb/programs.py``), ``LOOM_METRICS`` the JSON to fill.
The result is checked bit-exactly as well: a benchmark of wrong answers is worthless.
"""
import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam

from hw.csr_map import register
from tb.golden import int8_gemm
from tb.programs import gemm

ROWS, COLS = int(os.environ["LOOM_ROWS"]), int(os.environ["LOOM_COLS"])
BEAT = int(os.environ["LOOM_DATA_WIDTH"]) // 8
M, K, N = (int(os.environ[f"LOOM_{x}"]) for x in "MKN")
TILED = bool(int(os.environ.get("LOOM_TILED", "0")))
SEED = int(os.environ.get("LOOM_SEED", "0"))
MEMORY = 1 << 23


@cocotb.test()
async def int8_gemm_benchmark(dut):
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    mem = AxiRam(AxiBus.from_prefix(dut, "mem", bus_separator="__"), dut.clk, dut.rst,
                 size=MEMORY)
    csr = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "csr", bus_separator="__"), dut.clk,
                        dut.rst)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await RisingEdge(dut.clk)

    async def write(name, value):
        reg = register(name)
        for word in range(reg.words):
            await csr.write_dword(reg.offset + 4 * word, (value >> (32 * word)) & 0xFFFFFFFF)

    async def read(name):
        reg = register(name)
        return sum([await csr.read_dword(reg.offset + 4 * w) << (32 * w)
                    for w in range(reg.words)])

    rng = np.random.default_rng(SEED)
    a = rng.integers(-128, 128, size=(M, K)).astype(np.int8)
    b = rng.integers(-128, 128, size=(K, N)).astype(np.int8)
    job = gemm(a, b, rows=ROWS, cols=COLS, beat=BEAT, tiled=TILED)
    for at, data in job.writes.items():
        mem.write(at, data)
    mem.write(job.end, b"".join(job.descriptors))
    await write("WINDOW_BASE", 0)
    await write("WINDOW_LIMIT", MEMORY)
    await write("DESC_ADDR", job.end)
    await write("DESC_COUNT", len(job.descriptors))
    await write("CONTROL", 1)
    while True:
        await ClockCycles(dut.clk, 2000)
        status = await read("STATUS")
        if not status & 1:
            break
    assert status == 0b10, f"STATUS {status:#x}"
    np.testing.assert_array_equal(job.read_c(mem.read), int8_gemm(a, b))
    figures = {name.lower(): await read(name) for name in (
        "PERF_TOTAL_CYCLES", "PERF_BUSY_CYCLES", "PERF_ARRAY_ACTIVE_CYCLES", "PERF_MACS",
        "PERF_DMA_READ_BYTES", "PERF_DMA_WRITE_BYTES", "PERF_DMA_STALL_CYCLES")}
    figures["descriptors"] = len(job.descriptors)
    with open(os.environ["LOOM_METRICS"], "w") as f:
        json.dump(figures, f, indent=1)
