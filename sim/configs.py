"""The array configurations the regression (``make sim`` / ``make test``) runs."""
from dataclasses import dataclass

__all__ = ["ArrayConfig", "TIMING_TESTS", "INT8_TESTS", "FP16_TESTS", "DUAL_TESTS", "WRAP_TEST",
           "REGRESSION"]

#: Datapath-neutral tests (they use int8 tiles where the build has int8, else fp16).
TIMING_TESTS = ("back_to_back_tiles_run_at_the_ideal_rate", "single_tile_latency")
INT8_TESTS = ("random_tiles_with_bubbles", "extreme_operands", "long_reductions")
FP16_TESTS = ("fp16_random_tiles_with_bubbles", "fp16_special_values_in_random_positions",
              "fp16_long_reductions")
DUAL_TESTS = ("alternating_int8_and_fp16_tiles",)
WRAP_TEST = "accumulator_wraps_around"  # 131k cycles: run on one small int8 shape


@dataclass(frozen=True)
class ArrayConfig:
    """One Verilator build of the array and the cocotb tests of ``tb/systolic_array_tb.py``
    to run on it.

    ``tests`` (``None``: every test the datapaths support, except the long wrap-around run);
    ``mutant`` names an entry of ``tb.mutants.MUTANTS`` to build in place of the real PE;
    ``lut_multipliers`` and ``product_stages`` are the array's (``SystolicArray``).
    """
    rows: int
    cols: int
    datapaths: tuple = ("int8",)
    tests: tuple | None = None
    mutant: str | None = None
    lut_multipliers: int = 0
    product_stages: int = 1

    @property
    def name(self):
        kinds = {("int8",): "", ("fp16",): "_fp16", ("int8", "fp16"): "_dual"}
        name = f"array_{self.rows}x{self.cols}{kinds[tuple(self.datapaths)]}"
        if self.lut_multipliers:
            name += f"_lut{self.lut_multipliers}"
        if self.product_stages != 1:
            name += f"_p{self.product_stages}"
        return f"{name}_mutant_{self.mutant}" if self.mutant else name

    @property
    def array_kwargs(self):
        """The ``SystolicArray`` parameters besides the shape (no mutant)."""
        return {"datapaths": self.datapaths, "lut_multipliers": self.lut_multipliers,
                "product_stages": self.product_stages}

    @property
    def test_names(self):
        if self.tests is not None:
            return self.tests
        names = list(TIMING_TESTS)
        if "int8" in self.datapaths:
            names += INT8_TESTS
        if "fp16" in self.datapaths:
            names += FP16_TESTS
        if len(self.datapaths) > 1:
            names += DUAL_TESTS
        return tuple(names)


REGRESSION = [
    ArrayConfig(2, 2, tests=(*TIMING_TESTS, *INT8_TESTS, WRAP_TEST)),
    ArrayConfig(4, 4),
    ArrayConfig(8, 8),
    ArrayConfig(4, 8),
    ArrayConfig(8, 4),
    ArrayConfig(16, 16),
    ArrayConfig(4, 4, ("int8", "fp16")),
    ArrayConfig(8, 8, ("int8", "fp16")),
    ArrayConfig(3, 5, ("fp16",)),
    # each PE's product over two (three) registers, LUT and DSP PEs mixed
    ArrayConfig(4, 4, lut_multipliers=6, product_stages=2),
    ArrayConfig(4, 4, lut_multipliers=6, product_stages=3),
]
