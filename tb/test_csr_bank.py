"""The CSR bank in Verilator (cocotb + cocotbext-axi), and the generated register docs."""
import os

from hw.csr_bank import CsrBank
from hw.csr_map import markdown
from sim.cocotb_run import run_cocotb
from sim.toolchain import REPO_ROOT


def test_csr_bank_over_axi_lite():
    seed = int(os.environ["LOOM_SEED"])
    result = run_cocotb(CsrBank(), "csr_bank", "tb.csr_bank_tb", "csr_bank", seed)
    assert result.failed == {}, f"seed {seed}: {result.failed}"
    assert len(result.passed) == 5, result.passed


def test_register_docs_are_generated_from_the_table():
    committed = (REPO_ROOT / "docs" / "registers.md").read_text()
    assert committed == markdown(), "docs/registers.md is stale: run " \
                                    "'.venv/bin/python -m hw.csr_map > docs/registers.md'"
