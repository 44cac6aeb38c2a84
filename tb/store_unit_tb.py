"""cocotb testbench: StoreUnit + DmaWriter + result/parameter buffers against AxiRamWrite.

Built by ``tb/test_store_unit.py`` (top ``StorePath``). Fills result and parameter slots,
stores them in every mode (rows narrower than a beat packed) and compares the whole host
memory with the golden model.
"""
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from cocotbext.axi import AxiRamWrite, AxiWriteBus

from hw.store_unit import StoreMode, StoreUnit
from tb.bus_models import random_pauses
from tb.golden import fp32_to_fp16, requantize
from tb.payload import pack

SEED = int(os.environ.get("LOOM_SEED", "0"))
ROWS, COLS = int(os.environ["LOOM_ROWS"]), int(os.environ["LOOM_COLS"])
BEAT_BITS = int(os.environ["LOOM_BEAT_BITS"])
#: the parameter slot holds 32-bit lanes (StoreUnit ``param_lanes``), not rows
PARAM_LANES = os.environ.get("LOOM_PARAM_LANES") == "1"
#: result slots, and whether the unit has fp16 output (the build's choices)
RESULT_SLOTS = int(os.environ.get("LOOM_RESULT_SLOTS", "2"))
FP16 = os.environ.get("LOOM_FP16", "1") == "1"
MEMORY = 1 << 16
CMD_LAYOUT = StoreUnit(rows=ROWS, cols=COLS, beat_width=BEAT_BITS, addr_width=32,
                       slots=RESULT_SLOTS, param_slots=4).cmd.payload.shape()



def lanes(values):
    return sum((int(v) & 0xFFFFFFFF) << (32 * n) for n, v in enumerate(values))


class TB:
    def __init__(self, dut):
        self.dut = dut
        self.rng = random.Random(SEED)
        self.np_rng = np.random.default_rng(SEED)
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.ram = AxiRamWrite(AxiWriteBus.from_prefix(dut, "bus", bus_separator="__"),
                               dut.clk, dut.rst, size=MEMORY)
        self.ram.write(0, self.rng.randbytes(MEMORY))
        self.image = bytearray(self.ram.read(0, MEMORY))
        for channel in (self.ram.aw_channel, self.ram.w_channel, self.ram.b_channel):
            channel.set_pause_generator(random_pauses(self.rng, 0.3))

    async def reset(self):
        dut = self.dut
        dut.cmd__valid.value = 0
        dut.result_write.value = 0
        dut.param_write.value = 0
        dut.rst.value = 1
        await ClockCycles(dut.clk, 3)
        dut.rst.value = 0
        await RisingEdge(dut.clk)

    async def fill(self, port, layout_fields, slot, words):
        for index, word in enumerate(words):
            value = (1 | slot << 1 | index << layout_fields["index"]
                     | word << layout_fields["data"])
            getattr(self.dut, port).value = value
            await RisingEdge(self.dut.clk)
        getattr(self.dut, port).value = 0

    async def store(self, **command):
        dut = self.dut
        dut.cmd__payload.value = pack(CMD_LAYOUT, command)
        dut.cmd__valid.value = 1
        while True:
            await FallingEdge(dut.clk)
            if dut.cmd__ready.value:
                break
        await RisingEdge(dut.clk)
        dut.cmd__valid.value = 0
        for _ in range(50_000):
            await RisingEdge(dut.clk)
            if not dut.busy.value:
                return
        raise AssertionError("store never finished")


@cocotb.test()
async def every_mode_writes_the_golden_bytes_and_nothing_else(dut):
    tb = TB(dut)
    await tb.reset()
    # result buffer write port: valid, slot (1 bit), index (rows), data, accumulate
    index_bits = max(1, (ROWS - 1).bit_length())
    slot_bits = (RESULT_SLOTS - 1).bit_length()
    result_fields = {"index": 1 + slot_bits, "data": 1 + slot_bits + index_bits}
    # parameter write port: valid, slot (4 slots: 2 bits), index (range(words)), data
    param_words = 3 * COLS if PARAM_LANES else 3
    param_fields = {"index": 3, "data": 3 + (param_words - 1).bit_length()}
    for case in range(12):
        modes = [StoreMode.RAW32, StoreMode.INT8, *([StoreMode.FP16] if FP16 else [])]
        mode = modes[case % len(modes)]
        slot, param_slot = tb.rng.randrange(RESULT_SLOTS), tb.rng.randrange(4)
        if mode == StoreMode.FP16:
            values = (tb.np_rng.standard_normal((ROWS, COLS)) *
                      np.exp2(tb.np_rng.integers(-30, 20, (ROWS, COLS)))).astype(np.float32)
            specials = [np.inf, -0.0, np.nan, 70000.0, 1e-8, -np.inf]  # overflow, subnormal
            values.flat[::5] = specials[:len(values.flat[::5])]
            acc = values.view(np.int32)
        else:
            acc = tb.np_rng.integers(-(2**31), 2**31, (ROWS, COLS)).astype(np.int32)
            acc[::2] //= 2**16
        bias = tb.np_rng.integers(-(2**20), 2**20, COLS)
        multiplier = tb.np_rng.integers(2**30, 2**31, COLS)
        shift = tb.np_rng.integers(0, 32, COLS)
        zero_point = tb.np_rng.integers(-128, 128, COLS)
        relu, use_bias = tb.rng.randrange(2), tb.rng.randrange(2)
        await tb.fill("result_write", result_fields, slot, [lanes(row) for row in acc])
        param_rows = [bias, multiplier, [(s & 0x1F) | (z & 0xFF) << 8 for s, z in
                                         zip(shift, zero_point, strict=True)]]
        if PARAM_LANES:     # row by row, a lane a word
            words = [int(v) & 0xFFFFFFFF for row in param_rows for v in row]
        else:
            words = [lanes(row) for row in param_rows]
        await tb.fill("param_write", param_fields, param_slot, words)
        if mode == StoreMode.RAW32:
            rows = acc.astype("<i4")
        elif mode == StoreMode.INT8:
            rows = requantize(acc, multiplier, shift, zero_point,
                              bias=bias if use_bias else 0, relu=bool(relu))
        else:
            rows = fp32_to_fp16(acc.view(np.uint32)).astype("<u2")
        row_bytes = rows[0].nbytes
        beat = BEAT_BITS // 8
        if row_bytes < beat:      # packed: the tile's rows back to back
            pitch = row_bytes
        else:
            pitch = row_bytes + beat * tb.rng.randint(0, 3)
        addr = tb.rng.randrange(0, MEMORY - pitch * ROWS, beat)
        await tb.store(slot=slot, addr=addr, pitch=pitch, mode=mode.value, relu=relu,
                       bias=use_bias, param_slot=param_slot)
        for r in range(ROWS):
            tb.image[addr + r * pitch:addr + r * pitch + row_bytes] = rows[r].tobytes()
        memory = tb.ram.read(0, MEMORY)
        if memory != bytes(tb.image):
            first = next(i for i in range(MEMORY) if memory[i] != tb.image[i])
            raise AssertionError(f"case {case} ({mode.name}) differs at {first:#x}: "
                                 f"got {memory[first]:#04x}, expected {tb.image[first]:#04x}, "
                                 f"region {addr:#x}+{pitch}x{ROWS} (seed {SEED})")
