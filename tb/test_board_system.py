"""The board design end to end in Verilator: ``LoomSystem`` (accelerator + host RAM + UART
host bridge, ``fpga/board_top.py``) driven at its UART pins by the ``serial`` backend through
a simulated serial port (``sim/board_sim.py``, ``tb/board_system_tb.py``). Real GEMMs go
through the normal driver (``Device`` on ``SerialTransport``) and must be bit-exact with the
golden models; corrupted and truncated request frames get their error reply and change
nothing."""
import os

import numpy as np
import pytest

from fpga.board_top import SystemConfig
from hw.bridge_protocol import HEADER_BYTES, encode_reply, encode_request, status_code
from sim.board_sim import BoardSimPort
from sw import UnsupportedError, open_device
from sw.backends.serial import SerialTransport
from sw.device import Device
from tb.golden import fp16_gemm, int8_gemm, requantize

# 4 clock cycles per UART bit (1 MHz / 250 kBd) keeps the simulation short; a 2 ms (2000
# cycle) byte timeout ends a truncated frame soon. 16 KiB of RAM, 64 words per request.
# As on the UP5K: DMA addresses only as wide as the RAM needs (14 bits), the sequencer's
# span multiply in adders; the int8 build also pairs its PEs' multipliers (behavioural here)
# and has the iCEBreaker's one requantiser for all columns, 32-bit counters, one slot and
# the result buffer in one block RAM read through one port
_SMALL = dict(rows=4, cols=4, depth=32, ram_size=16 * 1024, addr_width=14,
              span_multiplier="lut", clock_hz=1_000_000, baud=250_000, max_words=64,
              byte_timeout_s=0.002)
BUILDS = {
    # and the iCEBreaker's 32-bit memory bus (one A or B word a beat, rows of four int8)
    "int8": SystemConfig(**{**_SMALL, "span_multiplier": "serial"}, data_width=32,
                         paired_multipliers=True,
                         requantizer="shared", counter_width=32, slots=1,
                         result_storage="shared_port", operand_registers=False,
                         clear_after_last=True, aligned_drain=True, broadcast_operands=True),
    "dual": SystemConfig(**_SMALL, data_width=64, datapaths=("int8", "fp16")),
    # the ECP5 options for the clock: the array on its own clock (1.7x the system's, as a
    # second PLL output would make it) and fp16 with three-stage adders
    "clk2": SystemConfig(**_SMALL, data_width=64, datapaths=("int8", "fp16"),
                         fp32_adder_stages=3, array_clock_hz=1_700_000),
}
# M, K, N: one element; under one tile; several tiles with padding; K above the depth (two
# chunks accumulated); N above the columns with K across two chunks.
SHAPES = [(1, 1, 1), (3, 5, 2), (9, 13, 6), (5, 41, 3), (2, 35, 9)]


# The int8 build is what the iCEBreaker carries; the dual one adds fp16 (a 40 s build:
# `slow`); clk2 is the ECP5 clock options.
@pytest.fixture(scope="module", params=["int8", pytest.param("dual", marks=pytest.mark.slow),
                                        "clk2"])
def board(request):
    config = BUILDS[request.param]
    port = BoardSimPort(config, seed=int(os.environ["LOOM_SEED"]))
    try:
        dev = Device(SerialTransport(port_object=port, quiet_time=0), progress=False)
        gold = open_device("golden", rows=config.rows, cols=config.cols,
                           datapaths=config.datapaths, data_width=config.data_width,
                           depth=config.depth, addr_width=config.addr_width,
                           slots=config.slots, requantizer=config.requantizer,
                           counter_width=config.counter_width,
                           fp32_adder_stages=config.fp32_adder_stages,
                           span_multiplier=config.span_multiplier,
                           operand_registers=config.operand_registers,
                           clear_after_last=config.clear_after_last,
                           broadcast_operands=config.broadcast_operands,
                           array_clock_ratio=(config.array_clock_hz / config.clock_hz
                                              if config.array_clock_hz else None))
        yield request.param, config, port, dev, gold
        assert port.cycles()[1] == 0, "framing errors on the tx pin"
        dev.close()
    finally:
        port.close()


def test_the_board_describes_itself_over_the_uart(board):
    name, config, port, dev, gold = board
    t = dev.transport
    assert (t.memory_base, t.memory_size, t.clock_hz, t.max_words) == \
        (0, config.ram_size, config.clock_hz, config.max_words)
    assert dev.config == gold.config
    assert port.leds() == 0b001                 # idle, not busy, no error


def test_int8_gemms_over_the_uart_are_bit_exact(board, rng):
    name, config, port, dev, gold = board
    for m, k, n in SHAPES:
        a = rng.integers(-128, 128, size=(m, k))
        b = rng.integers(-128, 128, size=(k, n))
        got = dev.matmul(a, b)
        np.testing.assert_array_equal(got, int8_gemm(a, b), err_msg=f"{name} {m}x{k}x{n}")
        np.testing.assert_array_equal(got, gold.matmul(a, b))
        assert dev.last_stats.macs_issued == gold.last_stats.macs_issued
        assert 0 < dev.last_stats.busy_cycles <= dev.last_stats.cycles
        mult, shift = rng.integers(1 << 30, 1 << 31, size=n), rng.integers(4, 12, size=n)
        zp, bias = rng.integers(-20, 20, size=n), rng.integers(-9999, 9999, size=n)
        relu = bool(rng.integers(2))
        q = dev.matmul(a, b, out="int8", multiplier=mult, shift=shift, zero_point=zp,
                       bias=bias, relu=relu)
        np.testing.assert_array_equal(q, requantize(int8_gemm(a, b), mult, shift, zp, bias,
                                                    relu), err_msg=f"{name} {m}x{k}x{n} q")
        assert port.leds() == 0b001             # the job is over, without error


def test_fp16_gemms_over_the_uart_are_bit_exact(board, rng):
    name, config, port, dev, gold = board
    if "fp16" not in config.datapaths:      # the hardware says it has no fp16: refused
        a = rng.standard_normal((4, 4)).astype(np.float16)
        with pytest.raises(UnsupportedError, match="fp16"):
            dev.matmul(a, a)
        return
    for m, k, n in [(3, 5, 2), (9, 13, 6), (5, 41, 3)]:       # K = 41: two chunks
        a = rng.standard_normal((m, k)).astype(np.float16)
        b = rng.standard_normal((k, n)).astype(np.float16)
        c = dev.matmul(a, b)
        np.testing.assert_array_equal(c, gold.matmul(a, b), err_msg=f"{m}x{k}x{n}")
        if k <= config.depth:
            np.testing.assert_array_equal(c.view(np.uint32), fp16_gemm(a, b))
        h = dev.matmul(a, b, out="float16")
        np.testing.assert_array_equal(h, gold.matmul(a, b, out="float16"))


_STATE_REGS = ("IRQ_ENABLE", "DESC_ADDR", "DESC_COUNT", "WINDOW_BASE", "WINDOW_LIMIT", "STATUS",
               "PERF_TOTAL_CYCLES")


def _flip(frame, index, bit):
    frame = bytearray(frame)
    frame[index] ^= 1 << bit
    return bytes(frame)


def test_corrupted_and_truncated_frames_get_an_error_reply_and_change_nothing(board, rng):
    name, config, port, dev, gold = board
    t = dev.transport
    addr, count = config.ram_size - 4 * config.max_words, 8
    t.write_memory(addr, rng.bytes(4 * count))
    dev.write_reg("DESC_ADDR", 0x140)
    dev.write_reg("DESC_COUNT", 3)
    before = t.read_memory(addr, 4 * count), {r: dev.read_reg(r) for r in _STATE_REGS}

    words = [int(w) for w in rng.integers(0, 1 << 32, size=count, dtype=np.uint64)]
    mem_write = encode_request("MEM_WRITE", addr, count, 0xC1, words)
    start = encode_request("CSR_WRITE", 0x020, 1, 0xC2, [1])          # CONTROL.start
    desc = encode_request("CSR_WRITE", 0x030, 1, 0xC3, [0x2A0])       # DESC_ADDR
    payload = HEADER_BYTES + int(rng.integers(4 * count))
    bad_crc = [
        _flip(mem_write, payload, int(rng.integers(8))),     # a data bit
        _flip(mem_write, 5, 3),                              # an address bit
        _flip(mem_write, len(mem_write) - 1, int(rng.integers(8))),   # the CRC
        _flip(start, HEADER_BYTES, 0),                       # start became 0
        _flip(start, len(start) - 2, 7),                     # start with a bad CRC
        _flip(desc, HEADER_BYTES + 1, 4),
    ]
    truncated = [mem_write[:payload], mem_write[:len(mem_write) - 1], mem_write[:6],
                 start[:-2], desc[:HEADER_BYTES]]
    for status, frames in (("BAD_CRC", bad_crc), ("TRUNCATED", truncated)):
        for frame in frames:
            port.write(frame)
            reply = port.read(6)
            assert reply == encode_reply(status_code(status), frame[2]), \
                f"{status}: {frame.hex()} answered {reply.hex()}"
    assert port.read(1) == b"", "a second reply"
    after = t.read_memory(addr, 4 * count), {r: dev.read_reg(r) for r in _STATE_REGS}
    assert after == before
    assert port.leds() == 0b001
    # The same frames intact do what they say.
    port.write(mem_write)
    assert port.read(6) == encode_reply(status_code("OK"), 0xC1)
    assert t.read_memory(addr, 4 * count) == b"".join(w.to_bytes(4, "little") for w in words)
    port.write(desc)
    assert port.read(6) == encode_reply(status_code("OK"), 0xC3)
    assert dev.read_reg("DESC_ADDR") == 0x2A0


class _NoisyLine:
    """A serial port that flips one bit of every ``every``-th request frame on its way to the
    board (past the count byte, so the bridge still sees the frame and answers BAD_CRC)."""

    def __init__(self, port, rng, every):
        self.port, self.rng, self.every = port, rng, every
        self.timeout = port.timeout
        self.frames = self.corrupted = 0

    def write(self, data):
        self.frames += 1
        if self.frames % self.every == 0:
            self.corrupted += 1
            data = _flip(data, int(self.rng.integers(4, len(data))), int(self.rng.integers(8)))
        return self.port.write(data)

    def read(self, n):
        return self.port.read(n)

    def reset_input_buffer(self):
        self.port.reset_input_buffer()


def test_a_gemm_over_a_noisy_line_is_retried_to_the_exact_result(board, rng):
    name, config, port, dev, gold = board
    line = _NoisyLine(port, rng, every=5)
    noisy = Device(SerialTransport(port_object=line, quiet_time=0), progress=False)
    a, b = rng.integers(-128, 128, size=(9, 13)), rng.integers(-128, 128, size=(13, 6))
    np.testing.assert_array_equal(noisy.matmul(a, b), int8_gemm(a, b))
    assert line.corrupted >= 5
    np.testing.assert_array_equal(dev.matmul(b.T, a.T), int8_gemm(b.T, a.T))
