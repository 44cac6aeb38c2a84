"""cocotb testbench of the DmaWriter against cocotbext-axi's AxiRamWrite (host memory).

Run through ``tb/test_dma_writer.py``. Every test compares a snapshot of the whole host
memory: the region written must hold the data, every other byte must be unchanged.
"""
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from cocotbext.axi import AxiRamWrite, AxiWriteBus

from hw.dma_reader import dma_command_layout
from tb.bus_models import random_pauses
from tb.payload import pack

SEED = int(os.environ.get("LOOM_SEED", "0"))
DATA_WIDTH = int(os.environ.get("LOOM_DATA_WIDTH", "128"))
TIMEOUT = int(os.environ.get("LOOM_TIMEOUT", "256"))
MAX_OUTSTANDING = int(os.environ.get("LOOM_MAX_OUTSTANDING", "4"))
BEAT = DATA_WIDTH // 8
MEMORY = 1 << 20


class FaultyRam(AxiRamWrite):
    """Host memory that answers SLVERR (and keeps its old bytes) for writes in ``poisoned``."""

    poisoned = range(0)

    async def _write(self, address, data):
        if address in self.poisoned:
            raise OSError(f"poisoned address {address:#x}")
        return await super()._write(address, data)



class TB:
    def __init__(self, dut, pause_rate=0.0, valid_rate=1.0):
        self.dut = dut
        self.rng = random.Random(SEED)
        dut._log.info("data width %d, seed %d", DATA_WIDTH, SEED)
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.ram = FaultyRam(AxiWriteBus.from_prefix(dut, "bus", bus_separator="__"),
                             dut.clk, dut.rst, size=MEMORY)
        self.ram.write(0, self.rng.randbytes(MEMORY))
        self.image = bytearray(self.ram.read(0, MEMORY))   # what memory must look like
        if pause_rate:
            for channel in (self.ram.aw_channel, self.ram.w_channel, self.ram.b_channel):
                channel.set_pause_generator(random_pauses(self.rng, pause_rate))
        self.valid_rate = valid_rate
        self.layout = dma_command_layout((len(dut.cmd__payload) - 32) // 2)
        self.pending = []        # beats waiting to be offered on the data stream
        self.bursts = []
        self.max_outstanding = 0     # most bursts seen awaiting their write response

    async def reset(self):
        self.dut.cmd__valid.value = 0
        self.dut.data__valid.value = 0
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        cocotb.start_soon(self._source())
        cocotb.start_soon(self._monitor())

    async def _source(self):
        dut = self.dut
        while True:
            offer = bool(self.pending) and self.rng.random() < self.valid_rate
            dut.data__valid.value = int(offer)
            if offer:
                dut.data__payload.value = self.pending[0]
            await FallingEdge(dut.clk)
            taken = offer and dut.data__ready.value
            await RisingEdge(dut.clk)
            if taken:
                self.pending.pop(0)

    async def _monitor(self):
        dut = self.dut
        outstanding = 0
        while True:
            await FallingEdge(dut.clk)
            if dut.bus__awvalid.value and dut.bus__awready.value:
                self.bursts.append((dut.bus__awaddr.value.to_unsigned(),
                                    dut.bus__awlen.value.to_unsigned() + 1))
                outstanding += 1
            if dut.bus__bvalid.value and dut.bus__bready.value:
                outstanding -= 1
            self.max_outstanding = max(self.max_outstanding, outstanding)

    async def write(self, addr, pitch, rows, row_beats, apply=True):
        """Issue one command with random data; update the expected image if ``apply``."""
        dut = self.dut
        beats = [self.rng.getrandbits(DATA_WIDTH) for _ in range(rows * row_beats)]
        if apply:
            for n, beat in enumerate(beats):
                row, col = divmod(n, row_beats)
                at = addr + row * pitch + col * BEAT
                self.image[at:at + BEAT] = beat.to_bytes(BEAT, "little")
        dut.cmd__payload.value = pack(self.layout, {"addr": addr, "pitch": pitch, "rows": rows,
                                                    "row_beats": row_beats})
        dut.cmd__valid.value = 1
        while True:
            await FallingEdge(dut.clk)
            if dut.cmd__ready.value:
                break
        await RisingEdge(dut.clk)
        dut.cmd__valid.value = 0
        self.pending += beats

    async def idle(self, limit=200_000):
        for _ in range(limit):
            await RisingEdge(self.dut.clk)
            if not self.pending and not self.dut.busy.value:
                return
        raise AssertionError(f"writer still busy after {limit} cycles")

    def check_memory(self):
        memory = self.ram.read(0, MEMORY)
        if memory != bytes(self.image):
            first = next(i for i in range(MEMORY) if memory[i] != self.image[i])
            raise AssertionError(f"host memory differs first at {first:#x} (seed {SEED})")

    def random_command(self):
        rng = self.rng
        row_beats = rng.choice([1, 2, rng.randint(1, 40), rng.randint(200, 600)])
        rows = rng.randint(1, 5)
        pitch = (row_beats + rng.randint(0, 8)) * BEAT
        span = pitch * (rows - 1) + row_beats * BEAT
        addr = rng.randrange(0, MEMORY - span, BEAT)
        if rng.random() < 0.5:
            addr = min((addr | 0xFFF) + 1 - BEAT * rng.randint(1, 4), MEMORY - span)
            addr -= addr % BEAT
        return addr, pitch, rows, row_beats


async def run_commands(tb, count):
    for _ in range(count):
        await tb.write(*tb.random_command())
        await tb.idle()
    tb.check_memory()
    for addr, length in tb.bursts:
        assert 1 <= length <= 256 and (addr % 4096) + length * BEAT <= 4096, (addr, length)
    assert tb.max_outstanding <= MAX_OUTSTANDING, f"{tb.max_outstanding} bursts in flight"
    assert not tb.dut.error.value and not tb.dut.timeout.value


@cocotb.test()
async def strided_writes_without_backpressure(dut):
    tb = TB(dut)
    await tb.reset()
    await run_commands(tb, 20)
    if MAX_OUTSTANDING > 1:
        assert tb.max_outstanding > 1, "addresses never ran ahead of the responses"


@cocotb.test()
async def strided_writes_under_backpressure(dut):
    """Random pauses on AW, W and B (host side) and gaps in the data stream."""
    tb = TB(dut, pause_rate=0.3, valid_rate=0.6)
    await tb.reset()
    await run_commands(tb, 20)


@cocotb.test()
async def write_errors_are_flagged_and_do_not_hang(dut):
    tb = TB(dut, pause_rate=0.2)
    await tb.reset()
    FaultyRam.poisoned = range(0x9000, 0x9000 + BEAT)
    await tb.write(0x9000 - 2 * BEAT, 4 * BEAT, 1, 4, apply=False)
    await tb.idle()
    FaultyRam.poisoned = range(0)
    assert dut.error.value == 1
    # The failing burst's other beats did land; record them and compare the rest.
    for at in (0x9000 - 2 * BEAT, 0x9000 - BEAT, 0x9000 + BEAT):
        tb.image[at:at + BEAT] = tb.ram.read(at, BEAT)
    tb.check_memory()
    await tb.write(0x100 * BEAT, BEAT, 2, 3)
    await tb.idle()
    tb.check_memory()


@cocotb.test()
async def stalled_bus_raises_timeout_and_reset_recovers(dut):
    tb = TB(dut)
    tb.ram.aw_channel.set_pause_generator(iter(lambda: True, None))
    await tb.reset()
    assert dut.error.value == 0 and dut.timeout.value == 0
    await tb.write(0, BEAT, 1, 4, apply=False)
    await ClockCycles(dut.clk, TIMEOUT + 10)
    assert dut.timeout.value == 1 and dut.busy.value == 1
    tb.pending.clear()
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    assert dut.timeout.value == 0 and dut.busy.value == 0 and dut.cmd__ready.value == 1
    tb.check_memory()
