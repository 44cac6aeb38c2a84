"""The rtl backend (Verilator + cocotb, host memory in cocotbext-axi's AxiRam) runs the
same programs as the golden backend, bit-exactly, and reports device errors the same way."""
from dataclasses import replace

import numpy as np
import pytest

from sw import DeviceError, UnsupportedError, open_device
from sw.compiler import compile_gemms
from sw.cycle_model import AXIRAM, predict, predict_gemm
from sw.gemm import gemm_spec
from tb.golden import fp16_gemm, int8_gemm, requantize

BUILDS = {
    "int8": dict(rows=8, cols=8, depth=48),
    # 8-byte words on a 16-byte bus: operands, parameters and int8 results packed; the
    # binary32 adders in three stages (the ECP5 build's; the 1-stage dual builds are
    # tb/test_accelerator.py's and tb/test_cycle_model.py's)
    "dual": dict(rows=4, cols=4, datapaths=("int8", "fp16"), data_width=128, depth=40,
                 fp32_adder_stages=3),
    # the iCE40 build's options: bit-serial requantisers (same results, slower INT8 stores),
    # 32-bit performance counters, one operand/result slot (no double buffering)
    "serial": dict(rows=4, cols=4, depth=40, requantizer="serial", counter_width=32, slots=1),
    # ... and the iCEBreaker's: one requantiser for the four columns
    "shared": dict(rows=4, cols=4, depth=40, requantizer="shared", counter_width=32, slots=1),
    # the array on a clock of its own, 1.6x the system clock (edges wander past each other)
    "clk2": dict(rows=4, cols=4, depth=40, array_clock_ratio=1.6),
}
SHAPES = [(1, 1, 1), (5, 3, 70), (33, 9, 17), (9, 49, 9), (2, 130, 3), (24, 100, 40)]


@pytest.fixture(scope="module", params=sorted(BUILDS))
def devices(request):
    seed = int(__import__("os").environ["LOOM_SEED"])
    rtl = open_device("rtl", seed=seed, progress=False, **BUILDS[request.param])
    yield request.param, rtl, open_device("golden", **BUILDS[request.param])
    rtl.close()


def test_int8_gemms_on_rtl_equal_golden_backend_and_golden_model(devices, rng):
    name, rtl, gold = devices
    assert (rtl.config.serial_requant == (name in ("serial", "shared"))
            == gold.config.serial_requant)
    assert rtl.config.shared_requant == (name == "shared") == gold.config.shared_requant
    assert rtl.config.array_clock == (name == "clk2") == gold.config.array_clock
    assert (rtl.config.counter_bits == gold.config.counter_bits ==
            BUILDS[name].get("counter_width", 64))
    for m, k, n in SHAPES:
        a = rng.integers(-128, 128, size=(m, k))
        b = rng.integers(-128, 128, size=(k, n))
        got = rtl.matmul(a, b)
        np.testing.assert_array_equal(got, gold.matmul(a, b), err_msg=f"{name} {m}x{k}x{n}")
        np.testing.assert_array_equal(got, int8_gemm(a, b))
        assert rtl.last_stats.macs_issued == gold.last_stats.macs_issued
        assert rtl.last_stats.cycles > 0
        mult, shift = rng.integers(1 << 30, 1 << 31, size=n), rng.integers(4, 12, size=n)
        zp, bias = rng.integers(-20, 20, size=n), rng.integers(-9999, 9999, size=n)
        kw = dict(out="int8", multiplier=mult, shift=shift, zero_point=zp, bias=bias, relu=True)
        q = rtl.matmul(a, b, **kw)
        np.testing.assert_array_equal(q, gold.matmul(a, b, **kw))
        np.testing.assert_array_equal(q, requantize(int8_gemm(a, b), mult, shift, zp, bias,
                                                    True))


def test_a_batch_of_gemms_runs_as_one_job(devices, rng):
    name, rtl, gold = devices
    calls = [dict(a=rng.integers(-128, 128, (m, k)), b=rng.integers(-128, 128, (k, n)))
             for m, k, n in SHAPES[1:4]]
    for got, call in zip(rtl.gemms(calls), calls, strict=True):
        np.testing.assert_array_equal(got, int8_gemm(call["a"], call["b"]))


def test_fp16_gemms_on_rtl_equal_golden(devices, rng):
    name, rtl, gold = devices
    if name != "dual":          # the hardware says it has no fp16: the driver refuses
        a = rng.standard_normal((4, 4)).astype(np.float16)
        with pytest.raises(UnsupportedError, match="fp16"):
            rtl.matmul(a, a)
        return
    assert rtl.config.fp16_beat_cycles == gold.config.fp16_beat_cycles == 3
    for m, k, n in [(5, 3, 16), (9, 40, 8), (13, 97, 6)]:      # K = 97: three chunks
        a = rng.standard_normal((m, k)).astype(np.float16)
        b = rng.standard_normal((k, n)).astype(np.float16)
        program = compile_gemms([gemm_spec(a, b)], rtl.config, rtl.allocator)
        try:
            measured = rtl.run(program).cycles
        finally:
            for at in program.allocations:
                rtl.allocator.free(at)
        predicted = predict(program.descriptors, rtl.config).cycles
        assert abs(predicted - measured) <= MODEL_TOLERANCE[name] * measured, \
            f"fp16 {m}x{k}x{n}: measured {measured}, predicted {predicted}"
        c = rtl.matmul(a, b)
        np.testing.assert_array_equal(c, gold.matmul(a, b))
        if k <= 40:
            np.testing.assert_array_equal(c.view(np.uint32), fp16_gemm(a, b))
        h = rtl.matmul(a, b, out="float16")
        np.testing.assert_array_equal(h, gold.matmul(a, b, out="float16"))


def test_a_device_error_on_rtl_raises_and_the_next_job_runs(devices, rng):
    name, rtl, gold = devices
    a, b = rng.integers(-128, 128, (9, 9)), rng.integers(-128, 128, (9, 9))
    program = compile_gemms([gemm_spec(a, b)], rtl.config, rtl.allocator)
    program.descriptors[1] = b"\x55" + bytes(31)
    with pytest.raises(DeviceError, match="BAD_OPCODE"):
        rtl.run(program)
    for at in program.allocations:
        rtl.allocator.free(at)
    np.testing.assert_array_equal(rtl.matmul(a, b), int8_gemm(a, b))


#: The cycle model's bound per build: calibrated on 64-bit builds (2 %); the 128-bit build's
#: packed int8 rows measured within 1.9 % on these shapes (was 10 % before the model knew
#: that packed rows leave one a cycle; 4x4x4: 94 vs 93 cycles).
MODEL_TOLERANCE = {"int8": 0.02, "serial": 0.02, "shared": 0.02, "dual": 0.03,
                   # the crossings' synchroniser phases (fitted at ratios 0.5 to 2: 4 %)
                   "clk2": 0.05}


def _timing(name):
    """The cycle model's timing for a build: its array clock ratio, if any."""
    return replace(AXIRAM, array_ratio=BUILDS[name].get("array_clock_ratio", 1.0))


def test_cycle_model_predicts_requantised_gemms(devices, rng):
    """Including the serial requantiser's 66-cycle rows (the serial build)."""
    name, rtl, _ = devices
    tolerance = MODEL_TOLERANCE[name]
    for m, k, n in [(4, 4, 4), (13, 37, 11), (24, 40, 16)]:
        a = rng.integers(-128, 128, size=(m, k))
        b = rng.integers(-128, 128, size=(k, n))
        rtl.matmul(a, b, out="int8", multiplier=rng.integers(1 << 29, 1 << 31, size=n),
                   shift=rng.integers(6, 12, size=n), zero_point=rng.integers(-5, 5, n))
        measured = rtl.last_stats.cycles
        predicted = predict_gemm(m, k, n, rtl.config, out="int8", timing=_timing(name)).cycles
        assert abs(predicted - measured) <= tolerance * measured, \
            f"{name} {m}x{k}x{n}: measured {measured}, predicted {predicted}"
