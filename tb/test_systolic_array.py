"""The Verilator regression from pytest: every shape of ``sim.configs.REGRESSION``, plus
mutated processing elements that the same tests must reject."""
import os

import pytest

from sim.cocotb_run import run_config
from sim.configs import DEFAULT_TESTS, REGRESSION, ArrayConfig
from tb.mutants import MUTANTS


def _seed():
    return int(os.environ["LOOM_SEED"])


@pytest.mark.parametrize("config", REGRESSION, ids=lambda c: c.name)
def test_array_matches_golden_model(config):
    result = run_config(config, _seed())
    print(f"{config.name}: seed {_seed()}, metrics {result.metrics}")
    assert result.failed == {}, f"seed {_seed()}: {result.failed}"
    assert sorted(result.passed) == sorted(config.tests or DEFAULT_TESTS)
    assert result.passed, "no cocotb test ran"


MUTANT_TESTS = ("random_tiles_with_bubbles", "extreme_operands")


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_regression_catches_mutated_processing_element(mutant):
    config = ArrayConfig(4, 4, tests=MUTANT_TESTS, mutant=mutant)
    result = run_config(config, _seed())
    assert sorted(result.failed) == sorted(MUTANT_TESTS), (
        f"mutant {mutant} survived {result.passed} (seed {_seed()})")
    assert all("expected" in message for message in result.failed.values()), result.failed
