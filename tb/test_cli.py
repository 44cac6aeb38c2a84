"""The ``loom`` command line: runs, reports and fails with a message on bad input."""
from sw.cli import main


def test_loom_gemm_runs_checks_and_reports(capsys, seed):
    assert main(["gemm", "--m", "20", "--k", "300", "--n", "12", "--depth", "128",
                 "--seed", str(seed)]) == 0
    out = capsys.readouterr().out
    assert "bit-exact vs golden" in out and "MAC utilisation" in out
    assert f"--seed {seed}" in out
    assert main(["gemm", "--m", "9", "--k", "5", "--n", "3", "--dtype", "fp16",
                 "--seed", str(seed)]) == 0
    assert "max |error| vs float64" in capsys.readouterr().out


def test_loom_reports_bad_hardware_parameters_without_a_traceback(capsys):
    assert main(["gemm", "--m", "4", "--k", "3", "--n", "2", "--array", "3x8"]) == 2
    assert "power-of-two" in capsys.readouterr().err
