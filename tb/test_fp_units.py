"""The floating-point units in Verilator against the golden model, bit for bit.

Each unit runs in :class:`sim.vector_harness.VectorHarness` (a C++ Verilator loop, millions
of vectors per second). ``make test`` runs a million random vectors per unit plus every
special-class combination; ``make test-full`` adds 20 million more per unit.
"""
import numpy as np
import pytest

from hw.fp16_multiplier import Fp16Multiplier
from hw.fp32_adder import Fp32Adder
from hw.fp32_to_fp16 import Fp32ToFp16
from sim.vector_harness import VectorHarness
from tb.fp_vectors import (
    FP16_SPECIALS,
    FP32_SPECIALS,
    adder_random_pairs,
    adder_structured_pairs,
    converter_subset,
    cross,
    fp16_exponent_boundaries,
)
from tb.golden import fp16_mul, fp32_add, fp32_to_fp16


class HalfUpAdder(Fp32Adder):
    """Mutant: rounds ties away from zero instead of to even."""

    def _round_half_up(self):
        return True


class HalfUpConverter(Fp32ToFp16):
    """Mutant: rounds ties away from zero instead of to even."""

    def _round_half_up(self):
        return True


@pytest.fixture(scope="module", params=[1, 2], ids=["one_stage", "two_stages"])
def multiplier(request):
    """The multiplier combinational and with a register after the significand multiply
    (the PEs with three-stage adders): the same results."""
    unit = Fp16Multiplier(stages=request.param)
    name = "fp16_multiplier" if request.param == 1 else "fp16_multiplier_2stage"
    return VectorHarness(unit, name, latency=unit.latency)


@pytest.fixture(scope="module", params=[1, 3], ids=["one_stage", "three_stages"])
def adder(request):
    """The adder as the PEs use it (combinational) and pipelined in three stages (a new
    pair every cycle, ``sum`` two cycles later): the same results."""
    unit = Fp32Adder(stages=request.param)
    name = "fp32_adder" if request.param == 1 else "fp32_adder_3stage"
    return VectorHarness(unit, name, latency=unit.latency)


@pytest.fixture(scope="module")
def converter():
    return VectorHarness(Fp32ToFp16(), "fp32_to_fp16")


def mismatches(inputs, got, expected, bits=32):
    """Indices where ``got != expected``, and a message showing the first few in hex."""
    got = got.astype(np.uint64)
    expected = np.asarray(expected).astype(np.uint64)
    bad = np.nonzero(got != expected)[0]
    def hex_(value, width=bits):
        return f"{int(value):#0{width // 4 + 2}x}"

    examples = [", ".join(f"{name}={hex_(v[i], 8 * v.itemsize)}" for name, v in inputs.items())
                + f": got {hex_(got[i])}, expected {hex_(expected[i])}" for i in bad[:8]]
    return bad, f"{len(bad)} of {len(got)} differ:\n" + "\n".join(examples)


def run_multiplier(multiplier, a, b):
    got = multiplier.run(a=a, b=b)["product"]
    return mismatches({"a": a, "b": b}, got, fp16_mul(a, b))


def run_adder(adder, a, b):
    got = adder.run(a=a, b=b)["sum"]
    return mismatches({"a": a, "b": b}, got, fp32_add(a, b))


def run_converter(converter, a):
    got = converter.run(a=a)["result"]
    return mismatches({"a": a}, got, fp32_to_fp16(a), bits=16)


def test_multiplier_random_pairs(multiplier, rng):
    a, b = (rng.integers(0, 2**16, size=1_000_000, dtype=np.uint16) for _ in range(2))
    bad, message = run_multiplier(multiplier, a, b)
    assert len(bad) == 0, message


def test_multiplier_specials_and_exponent_boundaries_times_every_value(multiplier):
    edges = np.unique(np.concatenate([FP16_SPECIALS, fp16_exponent_boundaries()]))
    every = np.arange(2**16, dtype=np.uint16)
    for a, b in (cross(edges, every), cross(every, edges)):
        bad, message = run_multiplier(multiplier, a, b)
        assert len(bad) == 0, message


def test_adder_random_pairs(adder, rng):
    a, b = adder_random_pairs(rng, 1_000_000)
    bad, message = run_adder(adder, a, b)
    assert len(bad) == 0, message


def test_adder_every_pair_of_special_classes(adder):
    a, b = cross(FP32_SPECIALS, FP32_SPECIALS)
    bad, message = run_adder(adder, a, b)
    assert len(bad) == 0, message


def test_adder_cancellation_ties_carries_subnormals(adder, rng):
    a, b = adder_structured_pairs(rng, 20_000)
    bad, message = run_adder(adder, a, b)
    assert len(bad) == 0, message


def test_converter_exhaustive_subset(converter):
    bad, message = run_converter(converter, converter_subset())
    assert len(bad) == 0, message


def test_converter_random(converter, rng):
    a = rng.integers(0, 2**32, size=1_000_000, dtype=np.uint32)
    bad, message = run_converter(converter, a)
    assert len(bad) == 0, message


def test_round_half_up_mutants_are_caught(rng):
    """The same checks must reject units that round ties away from zero."""
    adder = VectorHarness(HalfUpAdder(), "fp32_adder_mutant_half_up")
    bad, _ = run_adder(adder, *adder_structured_pairs(rng, 2_000))
    assert len(bad) > 0, "a half-up adder passed the tie tests"
    converter = VectorHarness(HalfUpConverter(), "fp32_to_fp16_mutant_half_up")
    bad, _ = run_converter(converter, converter_subset())
    assert len(bad) > 0, "a half-up converter passed the exhaustive subset"


@pytest.mark.slow
def test_twenty_million_random_vectors_per_unit(multiplier, adder, converter, rng):
    for _ in range(20):
        a, b = (rng.integers(0, 2**16, size=1_000_000, dtype=np.uint16) for _ in range(2))
        bad, message = run_multiplier(multiplier, a, b)
        assert len(bad) == 0, message
        bad, message = run_adder(adder, *adder_random_pairs(rng, 1_000_000))
        assert len(bad) == 0, message
        bad, message = run_converter(
            converter, rng.integers(0, 2**32, size=1_000_000, dtype=np.uint32))
        assert len(bad) == 0, message


def test_adder_stages_are_checked():
    with pytest.raises(ValueError, match="stages must be 1 or 3"):
        Fp32Adder(stages=2)


def test_multiplier_stages_are_checked():
    with pytest.raises(ValueError, match="stages must be 1 or 2"):
        Fp16Multiplier(stages=3)
