"""The run's random seed: ``--seed N`` (what ``make test SEED=N`` passes and what every run's
header prints) is accepted, printed and handed to the tests' ``seed`` fixture."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_seed_fixture_is_a_32_bit_number(seed, request):
    assert 0 <= seed < 2**32
    print(f"base={request.config.loom_seed} test={seed}")


def _probe(seed):
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p",
                           "no:xdist", "-s", "-q", "--seed", str(seed),
                           # no path: the suite's testpaths, as `make test SEED=N` runs it
                           "-k", "test_the_seed_fixture_is_a_32_bit_number"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(r"base=(\d+) test=(\d+)", done.stdout)
    assert found, done.stdout
    return int(found[1]), int(found[2])


def test_seed_option_is_accepted_and_reaches_the_fixture():
    base, test = _probe(12345)
    assert base == 12345
    assert _probe(12345) == (12345, test)          # the same seed gives the same stream
    assert _probe(12346)[1] != test
