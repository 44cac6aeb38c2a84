"""Requantisation: the golden model against a transliteration of gemmlowp's reference code
and against real arithmetic, and the Requantizer RTL (Verilator) against the golden model."""
import numpy as np
import pytest
from amaranth.hdl import Mux

from hw.requantizer import Requantizer
from hw.serial_requantizer import SerialRequantizer
from sim.vector_harness import VectorHarness
from tb.golden import INT32_MAX, INT32_MIN, requantize


def gemmlowp_reference(acc, multiplier, shift, zero_point, bias, relu):
    """Scalar Python transliteration of gemmlowp's fixedpoint.h and TFLite's requantisation."""
    x = ((acc + bias + 2**31) % 2**32) - 2**31
    if x == INT32_MIN and multiplier == INT32_MIN:
        high = INT32_MAX
    else:
        ab = x * multiplier
        nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
        total = ab + nudge
        high = abs(total) // 2**31 * (1 if total >= 0 else -1)   # C truncates toward 0
    mask = (1 << shift) - 1
    remainder = high & mask
    threshold = (mask >> 1) + (1 if high < 0 else 0)
    scaled = (high >> shift) + (1 if remainder > threshold else 0)
    low = max(zero_point, -128) if relu else -128
    return min(max(scaled + zero_point, low), 127)


def random_cases(rng, n):
    acc = rng.integers(-(2**31), 2**31, n)
    acc[::3] = rng.integers(-20000, 20000, n)[::3]           # typical accumulator sizes
    bias = np.where(rng.random(n) < 0.5, 0, rng.integers(-(2**31), 2**31, n))
    multiplier = rng.integers(2**30, 2**31, n)               # normalised, as TFLite makes them
    multiplier[::5] = rng.integers(-(2**31), 2**31, n)[::5]  # and anything else
    shift = rng.integers(0, 32, n)
    zero_point = rng.integers(-128, 128, n)
    relu = rng.integers(0, 2, n).astype(bool)
    edges = [(INT32_MIN, INT32_MIN), (INT32_MIN, INT32_MAX), (INT32_MAX, INT32_MAX),
             (INT32_MAX, INT32_MIN), (-1, 2**30), (1, 2**30), (0, INT32_MIN)]
    for k, (a, m) in enumerate(edges):
        acc[k], multiplier[k], bias[k] = a, m, 0
    # exact ties of the rounding shift: high word = odd multiple of 2**(shift-1)
    ties = slice(len(edges), len(edges) + 64)
    acc[ties] = (2 * rng.integers(-1000, 1000, 64) + 1) << 4
    multiplier[ties], bias[ties], shift[ties] = 2**31 - 1, 0, 5
    return acc, multiplier, shift, zero_point, bias, relu


def test_golden_matches_gemmlowp_reference(rng):
    cases = random_cases(rng, 20_000)
    got = requantize(cases[0], cases[1], cases[2], cases[3], cases[4], cases[5])
    for i in range(len(got)):
        args = [int(c[i]) for c in cases[:5]] + [bool(cases[5][i])]
        assert got[i] == gemmlowp_reference(*args), f"case {args}"


def test_golden_is_within_one_step_of_real_arithmetic(rng):
    acc = rng.integers(-(2**24), 2**24, 50_000)
    scale = rng.uniform(1e-6, 0.99, 50_000)
    exponent = np.floor(np.log2(scale)).astype(np.int64)            # scale = q * 2**exponent
    multiplier = np.round(scale / 2.0**exponent * 2**30).astype(np.int64)  # q in [1, 2)
    multiplier = np.minimum(multiplier, 2**31 - 1)
    shift = np.clip(-exponent - 1, 0, 31)
    real = acc * (multiplier * 2.0**-31) * 2.0**-shift
    got = requantize(acc, multiplier, shift, 0).astype(np.float64)
    # two roundings (high word, then shift) can each lose up to half a step of their own
    assert np.all(np.abs(got - np.clip(real, -128, 127)) <= 1.0)


class FlooringRequantizer(Requantizer):
    """Mutant: the high word nudged by the product's sign and then floored (an arithmetic
    shift) instead of truncated toward zero as C does."""

    def _high_word(self, product):
        return (product + Mux(product >= 0, 1 << 30, 1 - (1 << 30))) >> 31


def run_rtl(harness, acc, multiplier, shift, zero_point, bias, relu):
    u32 = 0xFFFFFFFF
    out = harness.run(acc=acc & u32, bias=bias & u32, multiplier=multiplier & u32, shift=shift,
                      zero_point=zero_point & 0xFF, relu=relu.astype(np.uint64),
                      valid_in=np.ones(len(acc), dtype=np.uint64))
    assert (out["valid_out"] == 1).all()
    return ((out["result"].astype(np.int64) + 128) % 256) - 128


def test_requantizer_rtl_matches_golden(rng):
    harness = VectorHarness(Requantizer(), "requantizer", latency=Requantizer.latency)
    cases = random_cases(rng, 1_000_000)
    got = run_rtl(harness, *cases)
    expected = requantize(*cases[:5], relu=cases[5])
    bad = np.nonzero(got != expected)[0]
    assert len(bad) == 0, (f"{len(bad)} differ; first: inputs "
                           f"{[int(c[bad[0]]) for c in cases]}, got {got[bad[0]]}, "
                           f"expected {expected[bad[0]]}")


@pytest.mark.parametrize("mutant", [FlooringRequantizer])
def test_requantizer_mutant_is_caught(rng, mutant):
    harness = VectorHarness(mutant(), "requantizer_mutant_floor", latency=Requantizer.latency)
    cases = random_cases(rng, 100_000)
    got = run_rtl(harness, *cases)
    assert (got != requantize(*cases[:5], relu=cases[5])).any()


_GROUP = 68     # cycles given to each value of the serial requantiser (its latency is 65)


class UnsignedSerialRequantizer(SerialRequantizer):
    """Mutant: the last multiply step adds instead of subtracting (the multiplier's top bit
    read with weight +2**31, as if unsigned)."""

    def _top_bit_subtracts(self):
        return False


def run_serial(harness, acc, multiplier, shift, zero_point, bias, relu):
    """One value every ``_GROUP`` cycles, inputs held; returns (results, latency per value)."""
    u32 = 0xFFFFFFFF
    n = len(acc)
    repeat = lambda v: np.repeat(np.asarray(v).astype(np.int64), _GROUP)  # noqa: E731
    valid = np.zeros(n * _GROUP, dtype=np.uint64)
    valid[::_GROUP] = 1
    out = harness.run(acc=repeat(acc) & u32, bias=repeat(bias) & u32,
                      multiplier=repeat(multiplier) & u32, shift=repeat(shift),
                      zero_point=repeat(zero_point) & 0xFF,
                      relu=repeat(relu.astype(np.int64)), valid_in=valid)
    hits = np.nonzero(out["valid_out"] == 1)[0]
    assert len(hits) == n, f"{len(hits)} results for {n} values"
    assert (hits // _GROUP == np.arange(n)).all(), "a result fell outside its value's group"
    assert (out["ready"][_GROUP - 1::_GROUP] == 1).all(), "not idle again within the group"
    result = ((out["result"][hits].astype(np.int64) + 128) % 256) - 128
    return result, hits % _GROUP


def test_serial_requantizer_matches_golden_and_its_latency(rng):
    harness = VectorHarness(SerialRequantizer(), "serial_requantizer", latency=1)
    cases = random_cases(rng, 10_000)
    got, latency = run_serial(harness, *cases)
    expected = requantize(*cases[:5], relu=cases[5])
    bad = np.nonzero(got != expected)[0]
    assert len(bad) == 0, (f"{len(bad)} differ; first: inputs "
                           f"{[int(c[bad[0]]) for c in cases]}, got {got[bad[0]]}, "
                           f"expected {expected[bad[0]]}")
    # valid_out rises `latency` cycles after the take (the record with valid_in), every time
    assert (latency + 1 == SerialRequantizer.latency).all()


def test_serial_requantizer_mutant_is_caught(rng):
    harness = VectorHarness(UnsignedSerialRequantizer(), "serial_requantizer_mutant",
                            latency=1)
    cases = random_cases(rng, 2_000)
    got, _ = run_serial(harness, *cases)
    assert (got != requantize(*cases[:5], relu=cases[5])).any()
