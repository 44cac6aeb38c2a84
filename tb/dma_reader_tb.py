"""cocotb testbench of the DmaReader against cocotbext-axi's AxiRamRead (host memory).

Run through ``tb/test_dma_reader.py`` (``LOOM_DATA_WIDTH``, ``LOOM_SEED`` from there).
"""
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from cocotbext.axi import AxiRamRead, AxiReadBus

from hw.dma_reader import dma_command_layout
from tb.bus_models import random_pauses
from tb.payload import pack

SEED = int(os.environ.get("LOOM_SEED", "0"))
DATA_WIDTH = int(os.environ.get("LOOM_DATA_WIDTH", "128"))
TIMEOUT = int(os.environ.get("LOOM_TIMEOUT", "256"))
MAX_OUTSTANDING = int(os.environ.get("LOOM_MAX_OUTSTANDING", "4"))
BEAT = DATA_WIDTH // 8
MEMORY = 1 << 20


class FaultyRam(AxiRamRead):
    """Host memory that answers SLVERR for reads inside ``poisoned`` (a range of bytes)."""

    poisoned = range(0)

    async def _read(self, address, length):
        if address in self.poisoned:
            raise OSError(f"poisoned address {address:#x}")
        return await super()._read(address, length)



class TB:
    """Clock, reset, host memory, a command source, a data sink and an AR monitor."""

    def __init__(self, dut, pause_rate=0.0, ready_rate=1.0):
        self.dut = dut
        self.rng = random.Random(SEED)
        dut._log.info("data width %d, seed %d", DATA_WIDTH, SEED)
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.ram = FaultyRam(AxiReadBus.from_prefix(dut, "bus", bus_separator="__"),
                             dut.clk, dut.rst, size=MEMORY)
        self.ram.write(0, self.rng.randbytes(MEMORY))
        if pause_rate:
            self.ram.ar_channel.set_pause_generator(random_pauses(self.rng, pause_rate))
            self.ram.r_channel.set_pause_generator(random_pauses(self.rng, pause_rate))
        self.ready_rate = ready_rate
        self.layout = dma_command_layout(len(dut.cmd__payload) // 2 - 16)
        self.beats = []
        self.bursts = []
        self.max_outstanding = 0

    async def reset(self):
        self.dut.cmd__valid.value = 0
        self.dut.data__ready.value = 0
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        cocotb.start_soon(self._sink())
        cocotb.start_soon(self._monitor())

    async def _sink(self):
        dut = self.dut
        while True:
            dut.data__ready.value = int(self.rng.random() < self.ready_rate)
            await FallingEdge(dut.clk)
            if dut.data__valid.value and dut.data__ready.value:
                beat = dut.data__payload.value.to_unsigned()
                self.beats.append((beat & ((1 << DATA_WIDTH) - 1), beat >> DATA_WIDTH))
            await RisingEdge(dut.clk)

    async def _monitor(self):
        dut = self.dut
        outstanding = 0
        while True:
            await FallingEdge(dut.clk)
            if dut.bus__arvalid.value and dut.bus__arready.value:
                self.bursts.append((dut.bus__araddr.value.to_unsigned(),
                                    dut.bus__arlen.value.to_unsigned() + 1))
                outstanding += 1
            if dut.bus__rvalid.value and dut.bus__rready.value and dut.bus__rlast.value:
                outstanding -= 1
            self.max_outstanding = max(self.max_outstanding, outstanding)

    async def command(self, addr, pitch, rows, row_beats):
        dut = self.dut
        dut.cmd__payload.value = pack(self.layout, {"addr": addr, "pitch": pitch, "rows": rows,
                                                    "row_beats": row_beats})
        dut.cmd__valid.value = 1
        while True:
            await FallingEdge(dut.clk)
            if dut.cmd__ready.value:
                break
        await RisingEdge(dut.clk)
        dut.cmd__valid.value = 0

    def expected(self, addr, pitch, rows, row_beats):
        out = []
        for row in range(rows):
            data = self.ram.read(addr + row * pitch, row_beats * BEAT)
            out += [int.from_bytes(data[i:i + BEAT], "little") for i in range(0, len(data), BEAT)]
        return out

    async def wait_beats(self, count, limit=200_000):
        for _ in range(limit):
            if len(self.beats) >= count:
                return
            await RisingEdge(self.dut.clk)
        raise AssertionError(f"only {len(self.beats)} of {count} beats after {limit} cycles")

    def random_command(self):
        rng = self.rng
        row_beats = rng.choice([1, 2, rng.randint(1, 40), rng.randint(200, 600)])
        rows = rng.randint(1, 5)
        pitch = (row_beats + rng.randint(0, 8)) * BEAT
        near_page = rng.random() < 0.5
        span = pitch * (rows - 1) + row_beats * BEAT
        addr = rng.randrange(0, MEMORY - span, BEAT)
        if near_page:  # start a few beats before a 4 KiB boundary
            addr = min((addr | 0xFFF) + 1 - BEAT * rng.randint(1, 4), MEMORY - span)
            addr -= addr % BEAT
        return addr, pitch, rows, row_beats


async def run_commands(tb, count):
    expected = []
    for _ in range(count):
        command = tb.random_command()
        await tb.command(*command)
        beats = tb.expected(*command)
        expected += [(beat, int(n == len(beats) - 1)) for n, beat in enumerate(beats)]
    await tb.wait_beats(len(expected))
    await ClockCycles(tb.dut.clk, 20)
    assert len(tb.beats) == len(expected), f"{len(tb.beats)} beats, expected {len(expected)}"
    for n, (got, want) in enumerate(zip(tb.beats, expected, strict=True)):
        assert got == want, f"beat {n}: got {got[0]:#x} last={got[1]}, expected " \
                            f"{want[0]:#x} last={want[1]} (seed {SEED})"
    for addr, length in tb.bursts:
        assert 1 <= length <= 256, f"burst of {length} beats"
        assert (addr % 4096) + length * BEAT <= 4096, f"burst at {addr:#x} crosses 4 KiB"
    assert tb.max_outstanding <= MAX_OUTSTANDING, f"{tb.max_outstanding} bursts in flight"
    assert not tb.dut.error.value and not tb.dut.timeout.value


@cocotb.test()
async def strided_transfers_without_backpressure(dut):
    tb = TB(dut)
    await tb.reset()
    await run_commands(tb, 25)
    if MAX_OUTSTANDING > 1:
        assert tb.max_outstanding > 1, "address requests never ran ahead of the data"


@cocotb.test()
async def strided_transfers_under_backpressure(dut):
    """Random pauses on AR and R (host side) and on the data stream (consumer side)."""
    tb = TB(dut, pause_rate=0.3, ready_rate=0.6)
    await tb.reset()
    await run_commands(tb, 25)


@cocotb.test()
async def read_errors_are_flagged_and_do_not_hang(dut):
    tb = TB(dut, pause_rate=0.2)
    await tb.reset()
    FaultyRam.poisoned = range(0x8000, 0x8000 + BEAT)
    await tb.command(0x8000 - 4 * BEAT, 16 * BEAT, 2, 8)
    await tb.wait_beats(16)
    FaultyRam.poisoned = range(0)
    await ClockCycles(dut.clk, 5)
    assert dut.error.value == 1 and dut.busy.value == 0
    await tb.command(0, BEAT, 1, 3)          # still takes work; error stays sticky
    await tb.wait_beats(19)
    assert [b[0] for b in tb.beats[16:]] == tb.expected(0, BEAT, 1, 3)


@cocotb.test()
async def stalled_bus_raises_timeout_and_reset_recovers(dut):
    tb = TB(dut)
    tb.ram.ar_channel.set_pause_generator(iter(lambda: True, None))  # never takes an address
    await tb.reset()
    assert dut.error.value == 0 and dut.timeout.value == 0, "reset must clear sticky errors"
    await tb.command(0, BEAT, 1, 4)
    await ClockCycles(dut.clk, TIMEOUT + 10)
    assert dut.timeout.value == 1 and dut.busy.value == 1
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    assert dut.timeout.value == 0 and dut.busy.value == 0 and dut.cmd__ready.value == 1
