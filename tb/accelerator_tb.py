"""cocotb testbench of the whole Accelerator: host memory (AxiRam), host CPU
(AxiLiteMaster), descriptor programs built with ``hw.isa.encode``, golden-model checks.

Built by ``tb/test_accelerator.py`` (``LOOM_ROWS``, ``LOOM_COLS``, ``LOOM_DATA_WIDTH``).
"""
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam

from hw.csr_map import ERROR_CODES, ID_MAGIC, register
from hw.isa import Opcode, Target, encode
from tb.bus_models import random_pauses
from tb.golden import int8_gemm
from tb.programs import misplaced_tables

SEED = int(os.environ.get("LOOM_SEED", "0"))
ROWS, COLS = int(os.environ["LOOM_ROWS"]), int(os.environ["LOOM_COLS"])
BEAT = int(os.environ["LOOM_DATA_WIDTH"]) // 8
LANE = int(os.environ["LOOM_LANE_BYTES"])      # 2 in builds with fp16: int8 widened
INT8_HOST = "<i2" if LANE == 2 else "i1"
TIMEOUT = int(os.environ["LOOM_TIMEOUT"])
PRODUCT_STAGES = int(os.environ.get("LOOM_PRODUCT_STAGES", "1"))
#: operand words or stored rows narrower than a beat: GEMMs must be laid out tile by tile
#: (packed rows, docs/isa.md)
TILED = min(ROWS * LANE, COLS * LANE, COLS) < BEAT
MEMORY = 1 << 20
ERROR = {name: code for code, (name, _) in ERROR_CODES.items()}


class TB:
    """Clock, reset, host memory and the host's register port."""

    def __init__(self, dut, ram_class=AxiRam):
        self.dut = dut
        self.rng = np.random.default_rng(SEED)
        dut._log.info("accelerator %dx%d, %d-byte bus, seed %d", ROWS, COLS, BEAT, SEED)
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.mem = ram_class(AxiBus.from_prefix(dut, "mem", bus_separator="__"), dut.clk,
                             dut.rst, size=MEMORY)
        self.csr = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "csr", bus_separator="__"),
                                 dut.clk, dut.rst)

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    async def write_reg(self, name, value):
        reg = register(name)
        for word in range(reg.words):
            await self.csr.write_dword(reg.offset + 4 * word, (value >> (32 * word)) & 0xFFFFFFFF)

    async def read_reg(self, name):
        reg = register(name)
        value = 0
        for word in range(reg.words):
            value |= await self.csr.read_dword(reg.offset + 4 * word) << (32 * word)
        return value

    async def start(self, descriptors, at=0x80000, window=(0, MEMORY)):
        """Place a program in host memory, set the DMA window and start the device."""
        self.mem.write(at, b"".join(descriptors))
        await self.write_reg("WINDOW_BASE", window[0])
        await self.write_reg("WINDOW_LIMIT", window[1])
        await self.write_reg("DESC_ADDR", at)
        await self.write_reg("DESC_COUNT", len(descriptors))
        await self.write_reg("CONTROL", 1)

    async def run(self, descriptors, at=0x80000, window=(0, MEMORY), limit=200_000):
        """Run a program; return (STATUS, cycles)."""
        await self.start(descriptors, at, window)
        for _ in range(limit // 50):
            await ClockCycles(self.dut.clk, 50)
            status = await self.read_reg("STATUS")
            if not status & 1:
                return status, await self.read_reg("PERF_TOTAL_CYCLES")
        raise AssertionError(f"job still busy after {limit} cycles")


def gemm_program(a_addr, b_addr, c_addr, k):
    """One tile: LOAD A^T, LOAD B (signals COMPUTE), COMPUTE, STORE raw int32, END."""
    return [
        encode(Opcode.LOAD, target=Target.A, slot=0, count=k, pitch=ROWS * LANE, addr=a_addr),
        encode(Opcode.LOAD, target=Target.B, slot=0, count=k, pitch=COLS * LANE, addr=b_addr,
               signal_next=1),
        encode(Opcode.COMPUTE, a_slot=0, b_slot=0, acc_slot=0, k=k, wait_prev=1,
               signal_next=1),
        encode(Opcode.STORE, slot=0, mode=0, addr=c_addr, pitch=4 * COLS, wait_prev=1),
        encode(Opcode.END),
    ]


async def one_tile(tb, k, after=""):
    """Run a one-tile random int8 GEMM, check it bit-exactly; return its cycle count."""
    a = tb.rng.integers(-128, 128, size=(ROWS, k)).astype(np.int8)
    b = tb.rng.integers(-128, 128, size=(k, COLS)).astype(np.int8)
    tb.mem.write(0x1000, a.T.astype(INT8_HOST).tobytes())
    tb.mem.write(0x4000, b.astype(INT8_HOST).tobytes())
    status, cycles = await tb.run(gemm_program(0x1000, 0x4000, 0x8000, k))
    assert status == 0b10, f"{after}STATUS {status:#x}"
    c = np.frombuffer(tb.mem.read(0x8000, 4 * ROWS * COLS), dtype="<i4").reshape(ROWS, COLS)
    np.testing.assert_array_equal(c, int8_gemm(a, b))
    return cycles


@cocotb.test()
async def identifies_itself(dut):
    tb = TB(dut)
    await tb.reset()
    assert await tb.read_reg("ID") == ID_MAGIC
    config = await tb.read_reg("ARRAY_CONFIG")
    assert (config & 0xFF, (config >> 8) & 0xFF) == (ROWS, COLS)
    stages = {f.name: f for f in register("ARRAY_CONFIG").fields}["product_stages"]
    assert (config & stages.mask) >> stages.lsb == PRODUCT_STAGES
    assert await tb.read_reg("BUS_CONFIG") & 0xFF == BEAT


@cocotb.test()
async def one_tile_int8_gemm_matches_golden(dut):
    tb = TB(dut)
    await tb.reset()
    k = 37
    cycles = await one_tile(tb, k)
    dut._log.info("one %dx%dx%d tile: %d cycles", ROWS, k, COLS, cycles)
    assert await tb.read_reg("PERF_MACS") == ROWS * COLS * k


@cocotb.test()
async def bad_opcode_stops_with_its_code_and_soft_reset_recovers(dut):
    tb = TB(dut)
    await tb.reset()
    bad = bytearray(encode(Opcode.END))
    bad[0] = 0x77
    await expect_error(tb, [bytes(bad)], "BAD_OPCODE")


@cocotb.test()
async def store_outside_the_window_writes_nothing(dut):
    tb = TB(dut)
    await tb.reset()
    before = tb.mem.read(0, MEMORY)
    k = 4
    program = gemm_program(0x1000, 0x4000, 0x3F000, k)   # C would end past the window
    at = 0x20000                                          # the table inside the window
    status, cycles = await tb.run(program, at=at, window=(0, 0x3F000 + 4 * COLS * ROWS - 4))
    assert status & 0b100 and status >> 8 == ERROR["OUT_OF_WINDOW"], f"STATUS {status:#x}"
    assert await tb.read_reg("PERF_DMA_READ_BYTES") > 0, "refused before the STORE's check"
    after = tb.mem.read(0, MEMORY)
    descriptors = slice(at, at + 32 * len(program))
    assert after[:descriptors.start] == before[:descriptors.start]
    assert after[descriptors.stop:] == before[descriptors.stop:]



def add_backpressure(tb, rate=0.25):
    """Random pauses on all five AXI4 channels of host memory and on the register bus."""
    rng = np.random.default_rng(SEED + 1)
    for channel in (tb.mem.write_if.aw_channel, tb.mem.write_if.w_channel,
                    tb.mem.write_if.b_channel, tb.mem.read_if.ar_channel,
                    tb.mem.read_if.r_channel, tb.csr.write_if.aw_channel,
                    tb.csr.write_if.w_channel, tb.csr.write_if.b_channel,
                    tb.csr.read_if.ar_channel, tb.csr.read_if.r_channel):
        channel.set_pause_generator(random_pauses(rng, rate))


async def run_gemm(tb, a, b, **options):
    from tb.programs import gemm

    options.setdefault("tiled", TILED)
    job = gemm(a, b, rows=ROWS, cols=COLS, beat=BEAT, lane_bytes=LANE, **options)
    for at, data in job.writes.items():
        tb.mem.write(at, data)
    before = tb.mem.read(0, MEMORY)
    status, cycles = await tb.run(job.descriptors)
    assert status == 0b10, f"STATUS {status:#x}"
    m_, n = job.c_shape
    c = job.read_c(tb.mem.read)
    # nothing outside C (and the descriptors) may have changed
    after = tb.mem.read(0, MEMORY)
    c_span = slice(job.c_addr, job.c_addr + job.c_bytes)
    assert after[:c_span.start] == before[:c_span.start]
    assert after[c_span.stop:0x80000] == before[c_span.stop:0x80000]
    macs = await tb.read_reg("PERF_MACS")
    tb.dut._log.info("GEMM %dx%dx%d: %d cycles, %d MACs, utilisation %.1f%%", m_,
                     a.shape[1], n, cycles, macs, 100 * macs / (ROWS * COLS * cycles))
    return c


@cocotb.test()
async def tiled_int8_gemms_in_every_store_mode(dut):
    """3x3 output tiles, K four times the array, raw int32 and requantised int8 (bias, ReLU),
    first without, then with backpressure on every AXI channel."""
    from tb.golden import requantize

    tb = TB(dut)
    await tb.reset()
    for pressure in (False, True):
        if pressure:
            add_backpressure(tb)
        m_, k, n = 3 * ROWS, 4 * ROWS, 3 * COLS
        a = tb.rng.integers(-128, 128, size=(m_, k)).astype(np.int8)
        b = tb.rng.integers(-128, 128, size=(k, n)).astype(np.int8)
        np.testing.assert_array_equal(await run_gemm(tb, a, b), int8_gemm(a, b))
        multiplier = tb.rng.integers(2**30, 2**31, n)
        shift = tb.rng.integers(5, 12, n)
        zero_point = tb.rng.integers(-20, 20, n)
        bias = tb.rng.integers(-5000, 5000, n)
        for relu in (False, True):
            c = await run_gemm(tb, a, b, mode=1, relu=relu, bias=bias, multiplier=multiplier,
                               shift=shift, zero_point=zero_point)
            np.testing.assert_array_equal(c, requantize(int8_gemm(a, b), multiplier, shift,
                                                        zero_point, bias=bias, relu=relu))


@cocotb.test()
async def tiled_fp16_gemms_store_fp32_and_fp16(dut):
    """Dual builds only (skipped by the int8 build's test list): fp16 tiles, fp32 and fp16
    stores, with backpressure."""
    from tb.golden import fp16_gemm, fp32_to_fp16

    tb = TB(dut)
    await tb.reset()
    add_backpressure(tb)
    m_, k, n = 3 * ROWS, 4 * ROWS, 3 * COLS
    a = tb.rng.standard_normal((m_, k)).astype(np.float16).view(np.uint16)
    b = tb.rng.standard_normal((k, n)).astype(np.float16).view(np.uint16)
    expected = fp16_gemm(a, b)
    c = await run_gemm(tb, a, b, dtype="fp16", mode=0)
    np.testing.assert_array_equal(c, expected)
    c = await run_gemm(tb, a, b, dtype="fp16", mode=2)
    np.testing.assert_array_equal(c, fp32_to_fp16(expected))


@cocotb.test()
async def gemms_split_over_k_accumulate(dut):
    """K split into chunks, one COMPUTE per chunk into the same result slot (the first
    overwrites, the others accumulate): int8 raw and requantised and, in builds with fp16,
    fp16 (``fp16_gemm(..., k_chunk=...)``) stored as fp32 and fp16; with backpressure."""
    from tb.golden import requantize

    tb = TB(dut)
    await tb.reset()
    add_backpressure(tb)
    m_, k, n = 2 * ROWS, 4 * ROWS + 3, 2 * COLS
    a = tb.rng.integers(-128, 128, size=(m_, k)).astype(np.int8)
    b = tb.rng.integers(-128, 128, size=(k, n)).astype(np.int8)
    chunk = 2 * ROWS - 2    # chunks of whole beats when packed: they start beat-aligned
    np.testing.assert_array_equal(await run_gemm(tb, a, b, k_chunk=chunk), int8_gemm(a, b))
    multiplier = tb.rng.integers(2**30, 2**31, n)
    shift = tb.rng.integers(5, 12, n)
    zero_point = tb.rng.integers(-20, 20, n)
    c = await run_gemm(tb, a, b, k_chunk=chunk, mode=1, relu=True, multiplier=multiplier,
                       shift=shift, zero_point=zero_point)
    np.testing.assert_array_equal(c, requantize(int8_gemm(a, b), multiplier, shift,
                                                zero_point, relu=True))
    if LANE == 2:   # builds with fp16: chunk sums added in binary32, stored fp32 and fp16
        from tb.golden import fp16_gemm, fp32_to_fp16
        from tb.tiles import FP16_PATTERNS

        for pattern in ("random", "cancelling", "specials"):
            a16 = FP16_PATTERNS[pattern](tb.rng, (m_, k))
            b16 = FP16_PATTERNS["random"](tb.rng, (k, n))
            expected = fp16_gemm(a16, b16, k_chunk=chunk)
            c = await run_gemm(tb, a16, b16, dtype="fp16", k_chunk=chunk)
            np.testing.assert_array_equal(c, expected, err_msg=pattern)
        c = await run_gemm(tb, a16, b16, dtype="fp16", mode=2, k_chunk=chunk)
        np.testing.assert_array_equal(c, fp32_to_fp16(expected))


class FaultyRam(AxiRam):
    """Host memory answering SLVERR for reads or writes inside ``poisoned`` (AxiRam serves
    through inner read and write models; their access hooks are wrapped)."""

    poisoned = range(0)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        read, write = self.read_if._read, self.write_if._write

        async def faulty_read(address, length):
            if address in FaultyRam.poisoned:
                raise OSError("poisoned read")
            return await read(address, length)

        async def faulty_write(address, data):
            if address in FaultyRam.poisoned:
                raise OSError("poisoned write")
            return await write(address, data)

        self.read_if._read, self.write_if._write = faulty_read, faulty_write


async def expect_error(tb, descriptors, name, window=(0, MEMORY), poisoned=range(0),
                       at=0x80000):
    """Run a bad program (its table at ``at``): its error code, then soft reset and a good
    job must pass."""
    FaultyRam.poisoned = poisoned
    status, _ = await tb.run(descriptors, at=at, window=window)
    FaultyRam.poisoned = range(0)
    assert status & 0b100, f"no error for {name}: STATUS {status:#x}"
    assert status >> 8 == ERROR[name], f"expected {name}, STATUS {status:#x}"
    await tb.write_reg("CONTROL", 2)
    await ClockCycles(tb.dut.clk, 5)
    assert await tb.read_reg("STATUS") == 0
    await one_tile(tb, 8, after=f"after {name} and soft reset: ")


@cocotb.test()
async def every_error_has_its_code_and_soft_reset_recovers(dut):
    tb = TB(dut, ram_class=FaultyRam)
    await tb.reset()
    good = gemm_program(0x1000, 0x4000, 0x8000, 8)
    cases = [
        ("BAD_SIZE", [encode(Opcode.LOAD, target=Target.A, slot=0, count=0, pitch=BEAT,
                             addr=0x1000), encode(Opcode.END)]),
        ("BAD_SIZE", [encode(Opcode.COMPUTE, a_slot=0, b_slot=0, acc_slot=0, k=4096),
                      encode(Opcode.END)]),
        ("BAD_SIZE", [encode(Opcode.LOAD, target=Target.B, slot=3, count=4, pitch=64,
                             addr=0x1000), encode(Opcode.END)]),
        ("MISALIGNED", [encode(Opcode.LOAD, target=Target.A, slot=0, count=4, pitch=64,
                               addr=0x1001), encode(Opcode.END)]),
        ("MISALIGNED", [encode(Opcode.STORE, slot=0, addr=0x8000, pitch=4), encode(Opcode.END)]),
        ("OUT_OF_WINDOW", [encode(Opcode.LOAD, target=Target.A, slot=0, count=8, pitch=64,
                                  addr=MEMORY - 64 * 4), encode(Opcode.END)]),
    ]
    for name, program in cases:
        await expect_error(tb, program, name)
    # DMA window below the data: the LOAD at 0x1000 starts outside it.
    await expect_error(tb, good, "OUT_OF_WINDOW", window=(0x2000, MEMORY))
    # A bus error while loading operands, then while storing results.
    await expect_error(tb, good, "AXI_READ_ERROR", poisoned=range(0x4000, 0x4008))
    await expect_error(tb, good, "AXI_WRITE_ERROR", poisoned=range(0x8000, 0x8010))


@cocotb.test()
async def a_misplaced_descriptor_table_is_refused_before_any_fetch(dut):
    """DESC_ADDR misaligned, the table starting or ending outside the window, or beyond
    2**addr_width: the job stops with MISALIGNED / OUT_OF_WINDOW and reads nothing."""
    tb = TB(dut)
    await tb.reset()
    good = gemm_program(0x1000, 0x4000, 0x8000, 8)
    at = 0x80000
    tb.mem.write(at, b"".join(good))
    for desc_addr, window, name in misplaced_tables(at, len(good), MEMORY):
        for reg, value in (("WINDOW_BASE", window[0]), ("WINDOW_LIMIT", window[1]),
                           ("DESC_ADDR", desc_addr), ("DESC_COUNT", len(good)),
                           ("CONTROL", 1)):
            await tb.write_reg(reg, value)
        await ClockCycles(dut.clk, 10)
        status = await tb.read_reg("STATUS")
        assert status & 0b100 and status >> 8 == ERROR[name], \
            f"{desc_addr:#x} {window}: expected {name}, STATUS {status:#x}"
        assert await tb.read_reg("PERF_DMA_READ_BYTES") == 0, f"{name}: fetched"
        await tb.write_reg("CONTROL", 2)
    await one_tile(tb, 8, after="after the refused tables: ")


@cocotb.test()
async def packed_rows_follow_their_rules(dut):
    """Builds with operand words and stored rows narrower than a beat (skipped elsewhere):
    strided narrow loads compute correctly; a packed block is checked against the window
    by the whole beats it reads; strided narrow stores and other pitches are refused."""
    assert ROWS * LANE < BEAT and COLS < BEAT, "a build with narrow words and rows"
    tb = TB(dut)
    await tb.reset()
    word = ROWS * LANE
    # A^T strided (one row every two beats), B packed: low word of each beat is used
    k = 5
    a = tb.rng.integers(-128, 128, size=(ROWS, k)).astype(np.int8)
    b = tb.rng.integers(-128, 128, size=(k, COLS)).astype(np.int8)
    for n, row in enumerate(a.T.astype(INT8_HOST)):
        tb.mem.write(0x1000 + n * 2 * BEAT, row.tobytes() + bytes(range(1, BEAT - word + 1)))
    tb.mem.write(0x4000, b.astype(INT8_HOST).tobytes())
    program = gemm_program(0x1000, 0x4000, 0x8000, k)
    program[0] = encode(Opcode.LOAD, target=Target.A, slot=0, count=k, pitch=2 * BEAT,
                        addr=0x1000)
    status, _ = await tb.run(program)
    assert status == 0b10, f"STATUS {status:#x}"
    c = np.frombuffer(tb.mem.read(0x8000, 4 * ROWS * COLS), dtype="<i4").reshape(ROWS, COLS)
    np.testing.assert_array_equal(c, int8_gemm(a, b))
    # three packed words need two whole beats inside the window
    load3 = [encode(Opcode.LOAD, target=Target.A, slot=0, count=3, pitch=word, addr=0x1000),
             encode(Opcode.END)]
    # (the two-descriptor table just below the data, inside the window)
    status, _ = await tb.run(load3, at=0xFC0, window=(0xFC0, 0x1000 + 2 * BEAT))
    assert status == 0b10, f"STATUS {status:#x}"
    await expect_error(tb, load3, "OUT_OF_WINDOW", window=(0xFC0, 0x1000 + 3 * word),
                       at=0xFC0)
    # an int8 STORE of narrow rows must be packed (no byte strobes): strided is refused
    await expect_error(tb, [encode(Opcode.STORE, slot=0, mode=1, addr=0x8000, pitch=BEAT),
                            encode(Opcode.END)], "MISALIGNED")
    # a narrow LOAD's pitch is the word size or a multiple of the beat, nothing else
    await expect_error(tb, [encode(Opcode.LOAD, target=Target.B, slot=0, count=4,
                                   pitch=word + BEAT, addr=0x1000), encode(Opcode.END)],
                       "MISALIGNED")


@cocotb.test()
async def a_silent_bus_trips_the_watchdog(dut):
    tb = TB(dut)
    await tb.reset()
    tb.mem.read_if.r_channel.set_pause_generator(iter(lambda: True, None))  # never answers
    await tb.start(gemm_program(0x1000, 0x4000, 0x8000, 8))
    await ClockCycles(dut.clk, TIMEOUT + 200)
    status = await tb.read_reg("STATUS")
    assert status & 0b100 and status >> 8 == ERROR["TIMEOUT"], f"STATUS {status:#x}"
    await tb.write_reg("CONTROL", 2)
    await ClockCycles(dut.clk, 5)
    assert await tb.read_reg("STATUS") == 0
