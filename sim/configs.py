"""The array configurations the regression (``make sim`` / ``make test``) runs."""
from dataclasses import dataclass

__all__ = ["ArrayConfig", "DEFAULT_TESTS", "REGRESSION"]


@dataclass(frozen=True)
class ArrayConfig:
    """One Verilator build of the array and the cocotb tests to run on it.

    ``tests`` names tests of ``tb/systolic_array_tb.py`` (``None``: all but the long
    wrap-around run); ``mutant`` names an entry of ``tb.mutants.MUTANTS`` to build in place of
    the real processing element.
    """
    rows: int
    cols: int
    tests: tuple | None = None
    mutant: str | None = None

    @property
    def name(self):
        name = f"array_{self.rows}x{self.cols}"
        return f"{name}_mutant_{self.mutant}" if self.mutant else name


#: Every test except the 131k-cycle wrap-around runs on every shape; that one runs on 2x2.
DEFAULT_TESTS = ("back_to_back_tiles_run_at_the_ideal_rate", "single_tile_latency",
                 "random_tiles_with_bubbles", "extreme_operands", "long_reductions")

REGRESSION = [
    ArrayConfig(2, 2, tests=(*DEFAULT_TESTS, "accumulator_wraps_around")),
    ArrayConfig(4, 4),
    ArrayConfig(8, 8),
    ArrayConfig(4, 8),
    ArrayConfig(8, 4),
    ArrayConfig(16, 16),
]
