"""The Verilator regression from pytest: every shape of ``sim.configs.REGRESSION``, plus
mutated processing elements that the same tests must reject."""
import os

import pytest

from sim.cocotb_run import run_config
from sim.configs import REGRESSION, ArrayConfig


def _seed():
    return int(os.environ["LOOM_SEED"])


@pytest.mark.parametrize("config", REGRESSION, ids=lambda c: c.name)
def test_array_matches_golden_model(config):
    result = run_config(config, _seed())
    print(f"{config.name}: seed {_seed()}, metrics {result.metrics}")
    assert result.failed == {}, f"seed {_seed()}: {result.failed}"
    assert sorted(result.passed) == sorted(config.test_names)
    assert result.passed, "no cocotb test ran"


MUTANT_TESTS = ("random_tiles_with_bubbles", "extreme_operands")


@pytest.mark.parametrize("mutant", ["product_bit_flip", "unsigned_product"])
def test_regression_catches_mutated_processing_element(mutant):
    config = ArrayConfig(4, 4, tests=MUTANT_TESTS, mutant=mutant)
    result = run_config(config, _seed())
    assert sorted(result.failed) == sorted(MUTANT_TESTS), (
        f"mutant {mutant} survived {result.passed} (seed {_seed()})")
    assert all("expected" in message for message in result.failed.values()), result.failed


def test_regression_catches_round_half_up_accumulation():
    """fp16 tiles must notice an accumulator that breaks ties away from zero; int8 tiles on
    the same dual array, which never round, must still pass."""
    config = ArrayConfig(4, 4, ("int8", "fp16"), mutant="fp_round_half_up",
                         tests=("random_tiles_with_bubbles", "fp16_long_reductions"))
    result = run_config(config, _seed())
    assert result.passed == ["random_tiles_with_bubbles"], result.failed
    assert list(result.failed) == ["fp16_long_reductions"], (
        f"half-up rounding survived (seed {_seed()})")
