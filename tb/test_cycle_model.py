"""The cycle model (``sw/cycle_model.py``) against the RTL's PERF_TOTAL_CYCLES, and its limits.

The sweep runs >= 20 shapes (small, ragged, tall-skinny, GEMV-like M=1, K split over several
chunks, int8 requantised stores, larger ones; fp16 ones on the dual build) on two Verilator
builds and asserts the model
within 2 % of the measured cycles on every shape; the table is printed (``pytest -s``). A
shorter sweep does the same on the iCEBreaker row's build and its 32-bit bus.
"""
import numpy as np
import pytest

from sw import open_device
from sw.compiler import compile_gemms
from sw.config import HardwareConfig
from sw.cycle_model import (
    AXIRAM,
    Timing,
    gemm_program,
    predict,
    predict_gemm,
    project,
    projection_table,
)
from sw.gemm import gemm_spec

TOLERANCE = 0.02

BUILDS = {
    "8x8 int8 64-bit": dict(rows=8, cols=8, depth=64, data_width=64),
    "4x8 dual 64-bit": dict(rows=4, cols=8, depth=64, data_width=64,
                            datapaths=("int8", "fp16")),
}

#: (M, K, N, output): K > 64 splits over chunks (depth 64)
SWEEP = [
    (8, 8, 8, "int32"), (1, 8, 8, "int32"), (8, 1, 8, "int32"), (8, 64, 8, "int32"),
    (16, 64, 16, "int32"), (13, 37, 11, "int32"), (1, 64, 64, "int32"), (1, 200, 32, "int32"),
    (64, 16, 8, "int32"), (128, 32, 8, "int32"), (8, 32, 128, "int32"),
    (32, 128, 32, "int32"), (24, 200, 16, "int32"), (16, 256, 16, "int32"),
    (5, 300, 9, "int32"), (16, 64, 16, "int8"), (33, 50, 17, "int8"), (40, 64, 24, "int8"),
    (64, 64, 32, "int8"), (64, 64, 64, "int32"), (48, 96, 40, "int32"),
    (96, 48, 64, "int32"),
]

#: The iCEBreaker row's build: 4x4, one requantiser shared by the columns, one slot, 32-bit
#: counters, on its 32-bit bus (a descriptor is 8 beats: fetches compete with LOADs for the
#: reader; the model once let them overtake a LOAD and was up to 6.9 % high on int32 tiles)
NARROW_BUILD = dict(rows=4, cols=4, depth=128, data_width=32, slots=1, requantizer="shared",
                    counter_width=32, result_storage="shared_port", operand_registers=False,
                    clear_after_last=True, aligned_drain=True, broadcast_operands=True)
#: and exactly as the board builds it: the descriptor check's span multiplied a bit a cycle
#: (``span_multiplier="serial"``), which slows dispatch to one descriptor every 18 cycles.
#: The RTL is then faster on reader-bound shapes than with a one-cycle check (fewer
#: descriptor fetches take the reader from a LOAD). The model was once up to 3.5 % high on
#: this sweep (it missed the fetch woken a cycle after a dispatch and counted the serial
#: steps in the gap between dispatches only); it is now exact, and held to the same 2 %.
BOARD_BUILD = dict(NARROW_BUILD, span_multiplier="serial")
#: a few shapes of SWEEP on it: tiles bound by the reader (long programs), ragged and
#: split K, and one int8 (each row 4 x 65 cycles through the shared requantiser)
NARROW_SWEEP = [(8, 8, 8, "int32"), (13, 37, 11, "int32"), (64, 16, 8, "int32"),
                (128, 32, 8, "int32"), (1, 200, 32, "int32"), (16, 64, 16, "int8")]

#: fp16 GEMMs (builds with the fp16 datapath): "float32" / "float16" results
FP16_SWEEP = [(8, 8, 8, "float32"), (13, 37, 11, "float32"), (16, 64, 16, "float16"),
              (24, 200, 16, "float32"), (33, 50, 17, "float16")]


def _options(rng, n, out):
    if out == "float16":
        return dict(out="float16")
    if out != "int8":
        return {}
    return dict(out="int8", multiplier=rng.integers(1 << 29, 1 << 31, size=n),
                shift=rng.integers(6, 12, size=n), zero_point=rng.integers(-5, 5, size=n),
                bias=rng.integers(-999, 999, size=n), relu=bool(rng.integers(2)))


@pytest.fixture(scope="module", params=sorted(BUILDS))
def rtl(request):
    seed = int(__import__("os").environ["LOOM_SEED"])
    dev = open_device("rtl", seed=seed, progress=False, **BUILDS[request.param])
    yield request.param, dev
    dev.close()


@pytest.fixture(scope="module")
def narrow_rtl():
    seed = int(__import__("os").environ["LOOM_SEED"])
    dev = open_device("rtl", seed=seed, progress=False, **NARROW_BUILD)
    yield dev
    dev.close()


def _run(dev, a, b, options):
    """Compile ``a @ b`` (with ``options``) for ``dev``, run it, free its memory; return
    the program and the run's statistics."""
    program = compile_gemms([gemm_spec(a, b, **options)], dev.config, dev.allocator)
    try:
        return program, dev.run(program)
    finally:
        for at in program.allocations:
            dev.allocator.free(at)


def _sweep(name, dev, shapes, rng, tolerance=TOLERANCE):
    """Runs ``shapes`` on ``dev``, prints the table, asserts the model within
    ``tolerance``."""
    rows, failures = [], []
    for m, k, n, out in shapes:
        if out.startswith("float"):
            a = rng.standard_normal((m, k)).astype(np.float16)
            b = rng.standard_normal((k, n)).astype(np.float16)
        else:
            a = rng.integers(-128, 128, size=(m, k))
            b = rng.integers(-128, 128, size=(k, n))
        program, stats = _run(dev, a, b, _options(rng, n, out))
        pred = predict(program.descriptors, dev.config)
        error = (pred.cycles - stats.cycles) / stats.cycles
        rows.append(f"{m:>4} {k:>4} {n:>4} {out:>6} {stats.cycles:>8} {pred.cycles:>8} "
                    f"{100 * error:>+7.2f}% {100 * stats.utilisation:>6.1f}%")
        assert pred.compute_cycles == stats.array_active_cycles
        if abs(error) > tolerance:
            failures.append(f"{m}x{k}x{n} {out}: measured {stats.cycles}, predicted "
                            f"{pred.cycles} ({100 * error:+.2f} %)")
    print(f"\n{name}\n   M    K    N    out measured predicted  error   util")
    print("\n".join(rows))
    assert not failures, "\n".join(failures)


def test_sweep_on_rtl_within_two_percent(rtl, rng):
    name, dev = rtl
    _sweep(name, dev, SWEEP + (FP16_SWEEP if dev.config.fp16 else []), rng)


def test_sweep_on_a_32_bit_bus_within_two_percent(narrow_rtl, rng):
    """The iCEBreaker row's build on its 32-bit bus (its span multiply in one cycle),
    int32 and int8 outputs."""
    _sweep("4x4 shared 32-bit", narrow_rtl, NARROW_SWEEP, rng)


def test_sweep_on_the_board_build_within_two_percent(rng):
    """The iCEBreaker row's build with its serial span multiply (``BOARD_BUILD``)."""
    seed = int(__import__("os").environ["LOOM_SEED"])
    dev = open_device("rtl", seed=seed, progress=False, **BOARD_BUILD)
    try:
        assert dev.config.check_steps == 7
        _sweep("4x4 shared 32-bit, serial check", dev, NARROW_SWEEP, rng)
    finally:
        dev.close()


#: each PE's product over two registers (ARRAY_CONFIG.product_stages; three in the second
#: test), LUT and DSP PEs mixed
PIPELINED_BUILD = dict(rows=4, cols=4, depth=64, data_width=64, lut_multipliers=5,
                       product_stages=2)
PIPELINED_SWEEP = [(4, 4, 4, "int32"), (13, 37, 11, "int32"), (1, 64, 16, "int32"),
                   (16, 64, 16, "int8")]


@pytest.mark.parametrize("stages", [2, 3])
def test_pipelined_products_are_predicted_to_the_cycle(rng, stages):
    """The device reports ``product_stages`` (2 or 3) and the model counts the extra cycles
    of every COMPUTE: exact on int32 outputs, where the model without them is not. INT8
    stores on this 4x4 64-bit build are predicted 2 cycles short with one product stage as
    with more (the STORE write side's fit, see the module doc of ``sw/cycle_model.py``)."""
    from dataclasses import replace

    seed = int(__import__("os").environ["LOOM_SEED"])
    build = PIPELINED_BUILD | {"product_stages": stages}
    dev = open_device("rtl", seed=seed, progress=False, **build)
    try:
        assert dev.config.product_stages == stages
        one_stage = replace(dev.config, product_stages=1)
        misses = 0
        for m, k, n, out in PIPELINED_SWEEP:
            a, b = rng.integers(-128, 128, size=(m, k)), rng.integers(-128, 128, size=(k, n))
            program, stats = _run(dev, a, b, _options(rng, n, out))
            residue = 2 if out == "int8" else 0
            assert predict(program.descriptors, dev.config).cycles + residue == stats.cycles, \
                f"{m}x{k}x{n} {out}"
            misses += predict(program.descriptors, one_stage).cycles + residue != stats.cycles
        assert misses == len(PIPELINED_SWEEP)
    finally:
        dev.close()
    gold = open_device("golden", **build)
    assert gold.config.product_stages == stages


def test_golden_backend_reports_the_prediction(rng):
    dev = open_device("golden", rows=8, cols=8, depth=64, data_width=64)
    a, b = rng.integers(-128, 128, size=(20, 70)), rng.integers(-128, 128, size=(70, 30))
    program = compile_gemms([gemm_spec(a, b)], dev.config, dev.allocator)
    dev.run(program)
    assert dev.last_stats.cycles == predict(program.descriptors, dev.config).cycles > 0


def _config(rows=16, cols=16, beat=16, depth=1024):
    return HardwareConfig(rows=rows, cols=cols, int8=True, fp16=False, beat_bytes=beat,
                          addr_bits=32, depth=depth, slots=2)


def test_cycles_grow_with_every_dimension():
    config = _config(8, 8, 8, 64)
    base = predict(gemm_program(16, 64, 16, config)[0], config).cycles
    for m, k, n in ((24, 64, 16), (16, 72, 16), (16, 64, 24), (16, 200, 16)):
        assert predict(gemm_program(m, k, n, config)[0], config).cycles > base


def test_long_k_approaches_the_compute_bound():
    """Enough bandwidth (one B word a beat) and long K: each tile costs K + a fixed
    overhead of fill/drain and command latencies (plus loading the first A and B before
    anything overlaps), so utilisation -> K / (K + overhead)."""
    config = _config()
    utils = []
    tiles = 32
    for k in (128, 512, 1024):
        p = predict(gemm_program(16, k, 16 * tiles, config)[0], config)
        overhead = 2 * 16 + 16 + 16
        bound = tiles * k / (tiles * (k + overhead) + 2 * k)
        assert bound < p.utilisation < bound + 0.05
        assert p.cycles >= 16 * k          # never faster than the array
        utils.append(p.utilisation)
    assert utils == sorted(utils)


def test_half_the_bus_halves_utilisation():
    """A 16x16 array on a 64-bit bus gets half a B word a cycle: bound at 50 %."""
    config = _config(beat=8)
    p = predict(gemm_program(16, 1024, 16 * 32, config)[0], config)
    assert 0.45 < p.utilisation < 0.5
    assert p.dma_read_cycles > 0.9 * p.cycles            # the reader is the bottleneck


def test_memory_latency_slows_it_down():
    config = _config(8, 8, 8, 64)
    descriptors = gemm_program(32, 64, 32, config)[0]
    cycles = [predict(descriptors, config, Timing(read_latency=lat, write_latency=lat)).cycles
              for lat in (0, 10, 40)]
    assert cycles[0] < cycles[1] < cycles[2]
    assert predict(descriptors, config, AXIRAM).cycles == predict(descriptors, config).cycles


def test_extrapolation_matches_full_simulation():
    config = _config(8, 8, 16, 64)
    full = predict(gemm_program(96, 64, 512, config)[0], config).cycles
    short = predict_gemm(96, 64, 512, config, exact_limit=4).cycles
    assert abs(short - full) / full < 0.002


def test_a_program_that_never_gets_its_token_is_reported():
    from hw.isa import Opcode, encode
    program = [encode(Opcode.COMPUTE, a_slot=0, b_slot=0, acc_slot=0, k=8, wait_prev=1),
               encode(Opcode.END)]
    with pytest.raises(RuntimeError, match="token"):
        predict(program, _config(8, 8, 8, 64))


def test_projections_of_full_size_layers():
    table = project("gpt2-small", arrays=((16, 16), (32, 32)), bus_bits=(128, 256), mhz=(200,))
    totals = [p for p in table if p.gemm == "total"]
    assert len(totals) == 4 and len(table) == 4 * 7
    for p in table:
        r, c = map(int, p.array.split("x"))
        assert 0 < p.macs / (r * c * p.cycles) <= 1
        assert p.gops <= 2 * r * c * p.mhz / 1e3
    by = {(p.array, p.bus_bits): p.cycles for p in totals}
    assert by[("32x32", 256)] < by[("16x16", 256)]
    assert by[("32x32", 256)] < by[("32x32", 128)]     # 32-byte B words need the wider bus
    text = projection_table(table)
    assert "QK^T" in text and "MLP down" in text
