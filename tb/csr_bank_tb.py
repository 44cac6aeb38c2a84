"""cocotb testbench of the CsrBank: an AXI4-Lite master (cocotbext-axi) against the table.

Run through ``tb/test_csr_bank.py``. The register table itself (``hw/csr_map.py``) is the
reference: every expectation here is derived from it.
"""
import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiResp

from hw.csr_map import REGISTERS, register
from tb.bus_models import random_pauses

SEED = int(os.environ.get("LOOM_SEED", "0"))
#: the build's ``CsrBank(kept_bits=...)``, register name -> bits kept (JSON)
KEPT = json.loads(os.environ.get("LOOM_KEPT_BITS", "{}"))
RO_VALUES = {"ID": 0x4C4F4F4D, "VERSION": 0x000100, "ARRAY_CONFIG": 0x31010,
             "BUS_CONFIG": 0x2010, "BUFFER_CONFIG": 0x01000200, "STATUS": 0x0502}



class TB:
    """Clock, reset, the AXI4-Lite master, and models of the device side of each port."""

    def __init__(self, dut, pause_rate=0.0):
        self.dut = dut
        self.rng = random.Random(SEED)
        dut._log.info("seed %d", SEED)
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "bus", bus_separator="__"),
                                  dut.clk, dut.rst)
        if pause_rate:
            write, read = self.axil.write_if, self.axil.read_if
            for channel in (write.aw_channel, write.w_channel, write.b_channel,
                            read.ar_channel, read.r_channel):
                channel.set_pause_generator(random_pauses(self.rng, pause_rate))
        for name, value in RO_VALUES.items():
            self.port(name).value = value
        self.pulses = {reg.name: [] for reg in REGISTERS if reg.access == "wo"}

    def port(self, name):
        return getattr(self.dut, name.lower())

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        cocotb.start_soon(self._watch_pulses())

    async def _watch_pulses(self):
        while True:
            await FallingEdge(self.dut.clk)
            for name, seen in self.pulses.items():
                value = self.port(name).value.to_unsigned()
                if value:
                    seen.append(value)

    async def read32(self, offset):
        resp = await self.axil.read(offset, 4)
        return int.from_bytes(resp.data, "little"), resp.resp

    async def write32(self, offset, value, length=4):
        resp = await self.axil.write(offset, value.to_bytes(4, "little")[:length])
        return resp.resp


@cocotb.test()
async def read_only_registers_read_what_the_device_drives(dut):
    tb = TB(dut)
    await tb.reset()
    for name, value in RO_VALUES.items():
        data, resp = await tb.read32(register(name).offset)
        assert (data, resp) == (value, AxiResp.OKAY), f"{name}: {data:#x} {resp}"


@cocotb.test()
async def read_write_registers_hold_host_values_with_byte_strobes(dut):
    tb = TB(dut, pause_rate=0.3)
    await tb.reset()
    shadow = {}
    rw_words = [(reg, word) for reg in REGISTERS if reg.access == "rw"
                for word in range(reg.words)]
    for reg, word in rw_words:  # reset value
        data, resp = await tb.read32(reg.offset + 4 * word)
        assert (data, resp) == (0, AxiResp.OKAY), f"{reg.name}[{word}] resets to {data:#x}"
    for _ in range(60 + 60 * bool(KEPT)):
        reg, word = tb.rng.choice(rw_words)
        offset = reg.offset + 4 * word
        # kept registers: mostly values whose high bits are all zero (below 2**keep)
        value = tb.rng.choice([tb.rng.getrandbits(32), tb.rng.getrandbits(8), 0])
        length = tb.rng.choice([1, 2, 4, 4])
        assert await tb.write32(offset, value, length) == AxiResp.OKAY
        mask = ((1 << (8 * length)) - 1) << (32 * word)
        full = (shadow.get(reg.name, 0) & ~mask) | ((value << (32 * word)) & mask)
        shadow[reg.name] = full
        seen = (_kept_view(full, KEPT[reg.name]) if reg.name in KEPT
                else full & reg.stored_mask)        # reserved bits read as 0
        data, _ = await tb.read32(offset)
        expected = (seen >> (32 * word)) & 0xFFFFFFFF
        assert data == expected, f"{reg.name}[{word}]: {data:#x} != {expected:#x}"
        assert tb.port(reg.name).value.to_unsigned() == seen, reg.name


def _kept_view(value, keep):
    """A ``kept_bits`` register's port and reads: the low ``keep`` bits of what was written,
    and 1 at bit ``keep`` if any higher bit is set."""
    return (value & ((1 << keep) - 1)) | (int(value >> keep != 0) << keep)


@cocotb.test()
async def write_only_bits_pulse_once_and_read_as_zero(dut):
    tb = TB(dut, pause_rate=0.2)
    await tb.reset()
    control = register("CONTROL")
    for value in (0b01, 0b10, 0b11):
        tb.pulses["CONTROL"].clear()
        assert await tb.write32(control.offset, value) == AxiResp.OKAY
        await ClockCycles(dut.clk, 3)
        assert tb.pulses["CONTROL"] == [value], f"wrote {value:#b}: saw {tb.pulses['CONTROL']}"
        assert await tb.read32(control.offset) == (0, AxiResp.OKAY)


@cocotb.test()
async def bad_accesses_answer_slverr_and_change_nothing(dut):
    tb = TB(dut, pause_rate=0.2)
    await tb.reset()
    assert await tb.write32(register("ID").offset, 0x12345678) == AxiResp.SLVERR
    assert await tb.read32(register("ID").offset) == (RO_VALUES["ID"], AxiResp.OKAY)
    mapped = {reg.offset + 4 * w for reg in REGISTERS for w in range(reg.words)}
    for offset in (0x01C, 0x050, 0x138, 0xFFC):
        assert offset not in mapped
        assert await tb.write32(offset, 0xFFFFFFFF) == AxiResp.SLVERR
        assert (await tb.read32(offset))[1] == AxiResp.SLVERR
    for reg in REGISTERS:
        if reg.access == "rw":
            for word in range(reg.words):
                assert (await tb.read32(reg.offset + 4 * word))[0] == 0


@cocotb.test()
async def sixty_four_bit_counters_read_consistently(dut):
    """Reading LO latches HI: a counter crossing 2**32 between the two reads reads as the
    value at the LO read, never with a torn high word."""
    tb = TB(dut, pause_rate=0.3)
    await tb.reset()
    counter = register("PERF_TOTAL_CYCLES")
    port = tb.port(counter.name)
    value = (7 << 32) - 40

    async def count():
        nonlocal value
        while True:
            port.value = value
            await RisingEdge(dut.clk)
            value += 1

    cocotb.start_soon(count())
    for _ in range(6):
        before = value
        low, _ = await tb.read32(counter.offset)
        high, _ = await tb.read32(counter.offset + 4)
        got = (high << 32) | low
        assert before <= got <= value, f"read {got:#x} outside [{before:#x}, {value:#x}]"
        await ClockCycles(dut.clk, tb.rng.randint(1, 20))
