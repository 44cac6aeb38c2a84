"""The driver on the golden backend: GEMMs of any shape bit-exact against the golden
models, the compiler's token discipline under an adversarial schedule, and every bad-input
path raising its own exception without touching host memory."""
import numpy as np
import pytest

from hw.isa import Opcode, decode, encode
from sw import (
    DeviceError,
    DtypeError,
    LoomError,
    RangeError,
    ShapeError,
    UnsupportedError,
    WindowError,
    open_device,
)
from sw.allocator import Allocator
from sw.compiler import compile_gemms, k_chunks
from sw.gemm import gemm_spec
from tb.golden import fp16_gemm, int8_gemm, requantize
from tb.programs import misplaced_tables

CONFIGS = {
    "8x8 int8": dict(rows=8, cols=8, depth=48),
    "4x8 dual": dict(rows=4, cols=8, datapaths=("int8", "fp16"), depth=40),
    "4x4 dual 256": dict(rows=4, cols=4, datapaths=("int8", "fp16"), data_width=128,
                         depth=40),
    "16x16 int8 256": dict(rows=16, cols=16, data_width=256, depth=64),
    "16x16 int8 128": dict(rows=16, cols=16, data_width=128, depth=64, slots=3),
}
SHAPES = [(1, 1, 1), (1, 37, 1), (5, 3, 70), (33, 9, 17), (8, 48, 8), (9, 49, 9),
          (2, 130, 3), (24, 100, 40), (64, 1, 7)]


def _int8(rng, *shape):
    return rng.integers(-128, 128, size=shape)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_int8_gemms_of_any_shape_match_the_golden_model(name, rng):
    dev = open_device("golden", **CONFIGS[name])
    for m, k, n in SHAPES:
        a, b = _int8(rng, m, k), _int8(rng, k, n)
        expect = int8_gemm(a.astype(np.int8), b.astype(np.int8))
        got = dev.matmul(a, b)
        assert got.dtype == np.int32 and got.shape == (m, n)
        np.testing.assert_array_equal(got, expect, err_msg=f"{m}x{k}x{n}")
        mult = rng.integers(1 << 30, 1 << 31, size=n)
        shift, zp = rng.integers(0, 12, size=n), rng.integers(-128, 128, size=n)
        bias = rng.integers(-50000, 50000, size=n)
        for relu in (False, True):
            q = dev.matmul(a, b, out="int8", multiplier=mult, shift=shift, zero_point=zp,
                           bias=bias, relu=relu)
            np.testing.assert_array_equal(q, requantize(expect, mult, shift, zp, bias, relu))
        assert dev.allocator.used == 0, "every job frees its host memory"


@pytest.mark.parametrize("name", ["4x8 dual", "4x4 dual 256"])
def test_fp16_gemms_match_the_golden_model(name, rng):
    """K beyond the buffer depth is split into chunks accumulated in fp32: the golden GEMM
    with the compiler's chunk length is the reference."""
    dev = open_device("golden", **CONFIGS[name])
    cfg = dev.config
    quantum = max(1, cfg.beat_bytes // (min(cfg.rows, cfg.cols) * cfg.lane_bytes))
    for m, k, n in SHAPES:
        a = rng.standard_normal((m, k)).astype(np.float16)
        b = rng.standard_normal((k, n)).astype(np.float16)
        c = dev.matmul(a, b)
        assert c.dtype == np.float32
        chunk, _ = k_chunks(k, cfg.depth, quantum)
        np.testing.assert_array_equal(c.view(np.uint32), fp16_gemm(a, b, k_chunk=chunk))
        h = dev.matmul(a, b, out="float16")
        np.testing.assert_array_equal(h, c.astype(np.float16))
        # and close to float64 (sanity of the whole path, not only self-consistency)
        ref = a.astype(np.float64) @ b.astype(np.float64)
        bound = k * 2.0**-23 * (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64))
        assert (np.abs(c - ref) <= bound + 1e-30).all()


def test_a_batch_is_one_program_with_every_result(rng):
    dev = open_device("golden", **CONFIGS["8x8 int8"])
    calls = [dict(a=_int8(rng, m, k), b=_int8(rng, k, n)) for m, k, n in SHAPES[:5]]
    results = dev.gemms(calls)
    for call, got in zip(calls, results, strict=True):
        np.testing.assert_array_equal(got, int8_gemm(call["a"], call["b"]))
    assert dev.last_stats.macs == sum(c["a"].shape[0] * c["a"].shape[1] * c["b"].shape[1]
                                      for c in calls)


def _program(dev, rng, m=24, k=100, n=40):
    a, b = _int8(rng, m, k), _int8(rng, k, n)
    program = compile_gemms([gemm_spec(a, b)], dev.config, dev.allocator)
    return a, b, program


def test_the_adversarial_schedule_catches_a_missing_token(rng):
    """Dropping the first LOAD's wait of a step lets the eager LOAD overwrite a slot before
    its COMPUTE ran: the golden backend must then compute a wrong answer (so a correct
    answer proves the tokens)."""
    dev = open_device("golden", **CONFIGS["8x8 int8"])
    a, b, program = _program(dev, rng)
    for addr, data in program.image:
        dev.transport.write_memory(addr, data)
    dev.run(program)
    good = program.outputs[0].read(dev.transport.read_memory)
    np.testing.assert_array_equal(good, int8_gemm(a, b))
    broken = []
    for d in program.descriptors:
        opcode, fields = decode(d)
        if opcode == Opcode.LOAD and fields["wait_next"]:
            fields["wait_next"] = 0
        broken.append(encode(opcode, **fields))
    program.descriptors = broken
    dev.run(program)
    bad = program.outputs[0].read(dev.transport.read_memory)
    assert not np.array_equal(bad, int8_gemm(a, b))


def test_a_program_that_waits_forever_times_out(rng):
    dev = open_device("golden", **CONFIGS["8x8 int8"])
    _, _, program = _program(dev, rng)
    program.descriptors[0] = encode(Opcode.LOAD, **{**decode(program.descriptors[0])[1],
                                                    "wait_next": 1})
    with pytest.raises(LoomError, match="still busy"):
        dev.run(program, timeout_cycles=10_000)


def test_a_device_error_raises_with_its_code_and_the_device_recovers(rng):
    dev = open_device("golden", **CONFIGS["8x8 int8"])
    _, _, program = _program(dev, rng)
    program.descriptors[3] = b"\x7e" + bytes(31)
    with pytest.raises(DeviceError, match="BAD_OPCODE") as info:
        dev.run(program)
    assert info.value.code == 1
    a, b = _int8(rng, 9, 9), _int8(rng, 9, 9)
    np.testing.assert_array_equal(dev.matmul(a, b), int8_gemm(a, b))


def test_a_misplaced_descriptor_table_stops_the_job_before_any_fetch(rng):
    from hw.csr_map import ERROR_CODES
    error = {name: code for code, (name, _) in ERROR_CODES.items()}
    dev = open_device("golden", **CONFIGS["8x8 int8"])
    a, b, program = _program(dev, rng)
    for addr, data in program.image:
        dev.transport.write_memory(addr, data)
    memory_end = dev.transport.memory_base + dev.transport.memory_size
    for at, (base, limit), name in misplaced_tables(program.desc_addr,
                                                    len(program.descriptors), memory_end):
        dev.write_reg("WINDOW_BASE", base)
        dev.write_reg("WINDOW_LIMIT", limit)
        dev.write_reg("DESC_ADDR", at)
        dev.write_reg("DESC_COUNT", len(program.descriptors))
        dev.write_reg("CONTROL", 1)
        status = dev.read_reg("STATUS")
        assert status & 0b100 and status >> 8 == error[name], f"{at:#x} {name}: {status:#x}"
        assert dev.read_reg("PERF_DMA_READ_BYTES") == 0
        dev.write_reg("CONTROL", 2)
    # the table exactly filling the window's end is fine
    dev.write_reg("WINDOW_BASE", 0)
    dev.write_reg("WINDOW_LIMIT", program.desc_addr + 32 * len(program.descriptors))
    dev.run(program)


@pytest.mark.parametrize("call, error, message", [
    (lambda r: (r.integers(-5, 5, (3, 4)), r.integers(-5, 5, (5, 2))), ShapeError, "K=4"),
    (lambda r: (r.integers(-5, 5, (3,)), r.integers(-5, 5, (3, 2))), ShapeError, "2-D"),
    (lambda r: (np.zeros((0, 3), int), np.zeros((3, 2), int)), ShapeError, "at least 1"),
    (lambda r: (r.standard_normal((3, 4)), r.integers(-5, 5, (4, 2))), DtypeError, "quantise"),
    (lambda r: (np.full((2, 2), np.nan), np.zeros((2, 2))), DtypeError, "datapath"),
    (lambda r: (r.integers(-5, 200, (3, 4)), r.integers(-5, 5, (4, 2))), RangeError,
     r"\[-128, 127\]"),
    (lambda r: (r.standard_normal((3, 4)).astype(np.float32),
                r.standard_normal((4, 2)).astype(np.float32)), DtypeError, "float16"),
])
def test_bad_operands_raise_a_specific_error(call, error, message, rng):
    dev = open_device("golden", **CONFIGS["4x8 dual"])
    a, b = call(rng)
    with pytest.raises(error, match=message):
        dev.matmul(a, b)


def test_nan_in_an_int8_gemm_is_a_range_error():
    dev = open_device("golden", **CONFIGS["8x8 int8"])
    a = np.array([[1.0, np.nan]])
    with pytest.raises(RangeError, match="NaN"):
        dev.matmul(a, np.ones((2, 1)), dtype="int8")


def test_requantisation_arguments_are_checked(rng):
    dev = open_device("golden", **CONFIGS["8x8 int8"])
    a, b = _int8(rng, 4, 4), _int8(rng, 4, 3)
    with pytest.raises(ValueError, match="needs multiplier and shift"):
        dev.matmul(a, b, out="int8")
    with pytest.raises(RangeError, match="shift"):
        dev.matmul(a, b, out="int8", multiplier=1 << 30, shift=40)
    with pytest.raises(ShapeError, match="one entry per output column"):
        dev.matmul(a, b, out="int8", multiplier=[1 << 30] * 2, shift=1)
    with pytest.raises(ValueError, match="only apply to out='int8'"):
        dev.matmul(a, b, relu=True)
    with pytest.raises(DtypeError, match="int32 or int8"):
        dev.matmul(a, b, out="float16")


def test_a_missing_datapath_is_unsupported(rng):
    dev = open_device("golden", **CONFIGS["8x8 int8"])
    a = rng.standard_normal((4, 4)).astype(np.float16)
    with pytest.raises(UnsupportedError, match="fp16"):
        dev.matmul(a, a)


def test_a_job_larger_than_the_window_raises_and_writes_nothing(rng):
    dev = open_device("golden", **CONFIGS["8x8 int8"], memory_size=1 << 16)
    before = dev.transport.memory.copy()
    a, b = _int8(rng, 300, 100), _int8(rng, 100, 300)
    with pytest.raises(WindowError, match="DMA window"):
        dev.matmul(a, b)
    np.testing.assert_array_equal(dev.transport.memory, before)
    assert dev.allocator.used == 0
    small = _int8(rng, 8, 8)
    np.testing.assert_array_equal(dev.matmul(small, small), int8_gemm(small, small))


def test_the_driver_reads_the_configuration_from_the_registers():
    dev = open_device("golden", **CONFIGS["16x16 int8 128"])
    c = dev.config
    assert (c.rows, c.cols, c.datapaths, c.beat_bytes, c.depth, c.slots) == \
        (16, 16, ("int8",), 16, 64, 3)


def test_allocator_first_fit_alignment_and_errors():
    heap = Allocator(0x1000, 1024, align=64)
    a = heap.alloc(10)
    b = heap.alloc(100)
    assert (a, b) == (0x1000, 0x1040)
    heap.free(a)
    assert heap.alloc(64) == 0x1000              # the hole is reused
    with pytest.raises(WindowError, match="needs 1024 bytes"):
        heap.alloc(1000)
    with pytest.raises(ValueError, match="no block"):
        heap.free(0x5000)
