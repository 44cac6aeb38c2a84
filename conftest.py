"""pytest fixtures shared by Loom's tests: one printed, settable random seed per run."""
import os
import random

import numpy as np
import pytest


def pytest_addoption(parser):
    parser.addoption("--seed", type=int, default=None,
                     help="seed for every random test (default: $LOOM_SEED or a fresh one)")


def pytest_configure(config):
    seed = config.getoption("--seed")
    if seed is None:
        seed = int(os.environ.get("LOOM_SEED", random.SystemRandom().randrange(2**32)))
    os.environ["LOOM_SEED"] = str(seed)  # xdist workers and cocotb simulations inherit it
    config.loom_seed = seed


def pytest_report_header(config):
    return f"loom seed: {config.loom_seed} (rerun with --seed {config.loom_seed})"


@pytest.fixture
def seed(request):
    """The run's seed, mixed with the test's name so tests draw independent streams."""
    base = request.config.loom_seed
    print(f"seed: {base} (rerun with --seed {base})")
    return (base + sum(map(ord, request.node.nodeid))) % 2**32


@pytest.fixture
def rng(seed):
    return np.random.default_rng(seed)


def pytest_collection_modifyitems(session, config, items):
    """Tests marked ``first`` (long single-core jobs: a bitstream build) run before the
    rest, so that with ``-n 2`` the other worker runs everything else alongside instead of
    the long one starting last and running alone."""
    items.sort(key=lambda item: item.get_closest_marker("first") is None)
