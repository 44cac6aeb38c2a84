"""``make pe-cost``: what one processing element costs on an ECP5-85F, per datapath.

Usage: ``python -m fpga.pe_cost [--freq MHZ] [--seed N]``

Each variant (int8, fp16, dual) is wrapped with registers on every input and output (so the
multiplier's input path and the accumulator loop are reg-to-reg paths nextpnr times), then
synthesised with ``synth_ecp5`` and placed and routed out of context on an LFE5U-85F
(CABGA381) by :mod:`fpga.out_of_context` (elaborated for the ULX3S, as the board builds:
the int8 product registered inside its MULT18X18D). The table lists the PE's cell counts
(the wrapper's flip-flops subtracted) and nextpnr's Fmax; it is written to
``build/fpga/pe_cost/pe_cost.md`` as well. Uses the YoWASP tools from .venv.
"""
import argparse
import sys

from fpga.out_of_context import place_and_route
from hw.processing_element import ProcessingElement
from sim.toolchain import BUILD_DIR

__all__ = ["measure", "main"]

VARIANTS = {"int8": ("int8",), "fp16": ("fp16",), "dual": ("int8", "fp16")}


def measure(name, datapaths, freq_mhz=100, seed=1):
    """Synthesise and place one variant (``fpga.out_of_context``: ports registered, the
    board flow's RTLIL for the ULX3S-85F); return a dict of resources and Fmax (MHz)."""
    result = place_and_route(ProcessingElement(datapaths=datapaths), f"pe_cost_{name}",
                             mhz=freq_mhz, seed=seed)
    cells = result["cells"]
    return {
        "variant": name,
        "LUT4": cells.get("LUT4", 0),
        "CCU2C": cells.get("CCU2C", 0),
        "MULT18X18D": cells.get("MULT18X18D", 0),
        "FF (PE)": cells.get("TRELLIS_FF", 0) - result["wrapper_ff"],
        "Fmax MHz": round(result["fmax_mhz"], 1),
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
    out = BUILD_DIR / "fpga" / "pe_cost"
    out.mkdir(parents=True, exist_ok=True)
    (out / "pe_cost.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
