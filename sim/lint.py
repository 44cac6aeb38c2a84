"""``make lint`` / ``make verilog``: write the generated Verilog and lint it with Verilator.

Usage: ``python -m sim.lint [--generate-only]``

Every shape of the regression is written to ``build/verilog/systolic_array_<R>x<C>.v`` and,
unless ``--generate-only``, checked with ``verilator --lint-only -Wall`` with exactly the
waivers of :data:`sim.toolchain.VERILATOR_WAIVERS` (the list the cocotb builds use too).
Any other warning fails the run.
"""
import argparse
import subprocess
import sys

from .configs import REGRESSION
from .toolchain import BUILD_DIR, VERILATOR_WAIVERS, setup_verilator, verilator_waiver_args
from .verilog import write_verilog

__all__ = ["generate", "lint", "main"]


def generate():
    """Write the Verilog of every regression shape; return the paths."""
    from hw.systolic_array import SystolicArray

    shapes = sorted({(c.rows, c.cols) for c in REGRESSION})
    return [write_verilog(SystolicArray(rows, cols), "systolic_array",
                          BUILD_DIR / "verilog" / f"systolic_array_{rows}x{cols}.v")
            for rows, cols in shapes]


def lint(path, top="systolic_array"):
    """Run ``verilator --lint-only -Wall`` on one file; return (ok, output)."""
    setup_verilator()
    command = ["verilator", "--lint-only", "-Wall", *verilator_waiver_args(),
               "--top-module", top, str(path)]
    done = subprocess.run(command, capture_output=True, text=True)
    return done.returncode == 0, (done.stdout + done.stderr).strip()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sim.lint")
    parser.add_argument("--generate-only", action="store_true",
                        help="write the Verilog under build/verilog/ and stop")
    args = parser.parse_args(argv)
    paths = generate()
    for path in paths:
        print(f"wrote {path.relative_to(BUILD_DIR.parent)}")
    if args.generate_only:
        return 0
    print(f"verilator -Wall, waived: {', '.join(VERILATOR_WAIVERS)}")
    failures = 0
    for path in paths:
        ok, output = lint(path)
        print(f"{'clean' if ok else 'WARNINGS'}: {path.name}")
        if not ok:
            failures += 1
            print(output)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
