"""``make lint`` / ``make verilog``: write the generated Verilog and lint it with Verilator.

Usage: ``python -m sim.lint [--generate-only]``

Every array of the regression and every floating-point unit is written to
``build/verilog/<design>.v`` and,
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
    """Write the Verilog of every regression array and of the fp units; return
    ``[(path, top module name)]``."""
    from hw.accelerator import Accelerator
    from hw.csr_bank import CsrBank
    from hw.dma_reader import DmaReader
    from hw.dma_writer import DmaWriter
    from hw.fp16_multiplier import Fp16Multiplier
    from hw.fp32_adder import Fp32Adder
    from hw.fp32_to_fp16 import Fp32ToFp16
    from hw.load_unit import LoadUnit
    from hw.requantizer import Requantizer
    from hw.serial_requantizer import SerialRequantizer
    from hw.store_unit import StoreUnit
    from hw.systolic_array import SystolicArray

    out = BUILD_DIR / "verilog"
    designs = {c.name.replace("array", "systolic_array"):
               SystolicArray(c.rows, c.cols, **c.array_kwargs) for c in REGRESSION}
    designs.update(fp16_multiplier=Fp16Multiplier(), fp32_adder=Fp32Adder(),
                   fp32_to_fp16=Fp32ToFp16(), csr_bank=CsrBank(),
                   dma_reader=DmaReader(), dma_writer=DmaWriter(), requantizer=Requantizer(),
                   load_unit=LoadUnit(beat_width=128, addr_width=32,
                                      targets={"a": 128, "b": 128, "params": 512}),
                   store_unit=StoreUnit(rows=16, cols=16, beat_width=128, addr_width=32),
                   accelerator=Accelerator(16, 16, data_width=128, depth=256),
                   # 128-bit words on a 256-bit bus: the packed load and store paths
                   accelerator_256=Accelerator(16, 16, data_width=256, depth=256),
                   # the small-FPGA options: bit-serial requantisers, LUT multipliers
                   serial_requantizer=SerialRequantizer(),
                   accelerator_serial=Accelerator(4, 4, data_width=64, depth=64,
                                                  requantizer="serial", lut_multipliers=8),
                   # the ECP5 clock options: pipelined fp16 adders, the array's own clock
                   accelerator_clocks=Accelerator(4, 4, datapaths=("int8", "fp16"),
                                                  data_width=64, depth=64,
                                                  fp32_adder_stages=3, array_clock=True))
    return [(write_verilog(design, name, out / f"{name}.v"), name)
            for name, design in designs.items()]


def lint(path, top):
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
    designs = generate()
    for path, _ in designs:
        print(f"wrote {path.relative_to(BUILD_DIR.parent)}")
    if args.generate_only:
        return 0
    print(f"verilator -Wall, waived: {', '.join(VERILATOR_WAIVERS)}")
    failures = 0
    for path, top in designs:
        ok, output = lint(path, top)
        print(f"{'clean' if ok else 'WARNINGS'}: {path.name}")
        if not ok:
            failures += 1
            print(output)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
