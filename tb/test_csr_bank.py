"""The CSR bank in Verilator (cocotb + cocotbext-axi), and the generated register docs."""
import json
import os

import pytest

from hw.csr_bank import CsrBank
from hw.csr_map import markdown
from sim.cocotb_run import run_cocotb
from sim.toolchain import REPO_ROOT


def test_csr_bank_over_axi_lite():
    seed = int(os.environ["LOOM_SEED"])
    result = run_cocotb(CsrBank(), "csr_bank", "tb.csr_bank_tb", "csr_bank", seed)
    assert result.failed == {}, f"seed {seed}: {result.failed}"
    assert len(result.passed) == 5, result.passed


def test_registers_that_keep_their_low_bits_over_axi_lite():
    """The accelerator's address registers keep the bits its checks use (``kept_bits``):
    reads and ports show the low bits and whether any higher one is set."""
    seed = int(os.environ["LOOM_SEED"])
    kept = {"DESC_ADDR": 17, "DESC_COUNT": 13, "WINDOW_BASE": 17, "WINDOW_LIMIT": 32}
    test = "read_write_registers_hold_host_values_with_byte_strobes"
    result = run_cocotb(CsrBank(kept_bits=kept), "csr_bank", "tb.csr_bank_tb",
                        "csr_bank_kept", seed, tests=[test],
                        env={"LOOM_KEPT_BITS": json.dumps(kept)})
    assert result.failed == {}, f"seed {seed}: {result.failed}"
    assert sorted(result.passed) == [test]


@pytest.mark.parametrize("kept, message", [
    ({"STATUS": 4}, "names rw registers"), ({"NOPE": 4}, "names rw registers"),
    ({"DESC_ADDR": 64}, "from 1 to 63"), ({"DESC_COUNT": 0}, "from 1 to 31"),
    ({"WINDOW_BASE": True}, "from 1 to 63")])
def test_kept_bits_are_checked(kept, message):
    with pytest.raises(ValueError, match=message):
        CsrBank(kept_bits=kept)


def test_register_docs_are_generated_from_the_table():
    committed = (REPO_ROOT / "docs" / "registers.md").read_text()
    assert committed == markdown(), "docs/registers.md is stale: run " \
                                    "'.venv/bin/python -m hw.csr_map > docs/registers.md'"
