"""Build a design with Verilator and run its cocotb tests (arrays and other blocks).

Each build gets its own directory ``build/sim/<name>/`` holding the generated
Verilog, the Verilator build, ``results.xml`` and ``metrics.json`` (and ``dump.vcd`` when run
with ``WAVES=1``), so configurations can build and run in parallel.
"""
import json
import os
import re
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field

from .configs import ArrayConfig
from .toolchain import BUILD_DIR, setup_verilator, verilator_waiver_args
from .verilog import write_verilog

__all__ = ["RunResult", "run_cocotb", "run_config"]

TOPLEVEL = "systolic_array"
TEST_MODULE = "tb.systolic_array_tb"
MESSAGE_CHARS = 600  # of a failure message kept for reports; results.xml has all of it


@dataclass
class RunResult:
    """What one cocotb run produced (``config``: the array configuration, if any)."""
    config: ArrayConfig | None
    passed: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)   # test name -> failure message
    metrics: dict = field(default_factory=dict)
    build_s: float = 0.0
    test_s: float = 0.0

    @property
    def ok(self):
        return bool(self.passed) and not self.failed


def _elaborate(config):
    from hw.systolic_array import SystolicArray
    from tb.mutants import MUTANTS

    kwargs = dict(config.array_kwargs)
    if config.mutant is not None:
        kwargs["pe_class"] = MUTANTS[config.mutant]
    return SystolicArray(config.rows, config.cols, **kwargs)


def _read_results(path):
    """(passed names, {failed name: message}, simulated ns, wall seconds) from results.xml."""
    passed, failed = [], {}
    sim_ns = wall_s = 0.0
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        wall_s += float(case.get("time", 0))
        for prop in case.iter("property"):
            if prop.get("name") == "sim_time_duration":
                sim_ns += float(prop.get("value"))
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is None:
            passed.append(case.get("name"))
        else:
            message = problem.get("message") or (problem.text or "").strip()
            failed[case.get("name")] = message[:MESSAGE_CHARS]
    return passed, failed, sim_ns, wall_s


def run_cocotb(component, toplevel, test_module, build_name, seed, *, tests=None, env=None,
               waves=None):
    """Generate ``component`` as Verilog module ``toplevel``, build it with Verilator in
    ``build/sim/<build_name>/`` and run cocotb ``test_module`` on it.

    ``tests`` lists test names to run (exact names; ``None``: all). ``env`` adds environment
    variables for the test module (``LOOM_SEED`` and ``LOOM_METRICS`` are always set).
    Returns ``(RunResult, build_dir)``; never raises for failing tests, raises
    :class:`RuntimeError` when the simulation produced no results at all.
    """
    from cocotb_tools.runner import get_runner

    setup_verilator()
    waves = bool(int(os.environ.get("WAVES", "0"))) if waves is None else waves
    build_dir = BUILD_DIR / "sim" / build_name
    source = write_verilog(component, toplevel, build_dir / f"{toplevel}.v")
    metrics_path = build_dir / "metrics.json"
    results_path = build_dir / "results.xml"
    for stale in (metrics_path, results_path):
        stale.unlink(missing_ok=True)

    runner = get_runner("verilator")
    started = time.perf_counter()
    runner.build(sources=[source], hdl_toplevel=toplevel, build_dir=build_dir,
                 build_args=[*verilator_waiver_args(), "-O3", "--x-assign", "fast",
                             "--x-initial", "fast"],
                 timescale=("1ns", "1ps"), waves=waves, log_file=build_dir / "build.log")
    built = time.perf_counter()
    test_env = {"LOOM_SEED": str(seed), "LOOM_METRICS": str(metrics_path), **(env or {})}
    # Exact names: cocotb's `testcase` list would also match longer names ending with one.
    test_filter = rf"\.({'|'.join(map(re.escape, tests))})$" if tests else None
    try:
        runner.test(test_module=test_module, hdl_toplevel=toplevel, build_dir=build_dir,
                    test_dir=build_dir, seed=seed, extra_env=test_env, test_filter=test_filter,
                    results_xml=str(results_path), waves=waves,
                    log_file=build_dir / "sim.log")
    except SystemExit:
        pass  # under pytest the runner exits on failures; the results file tells us which
    finished = time.perf_counter()
    if not results_path.exists():
        raise RuntimeError(f"{build_name}: simulation ended without results; see "
                           f"{build_dir / 'sim.log'}")
    passed, failed, sim_ns, wall_s = _read_results(results_path)
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    if "clock_ns" in metrics:
        metrics["cycles"] = int(sim_ns / metrics["clock_ns"])
        metrics["wall_s"] = wall_s
    return RunResult(None, passed, failed, metrics, built - started, finished - built)


def run_config(config, seed, *, waves=None):
    """Generate, build and simulate the array ``config``; return a :class:`RunResult`."""
    env = {"LOOM_ROWS": str(config.rows), "LOOM_COLS": str(config.cols),
           "LOOM_DATAPATHS": ",".join(config.datapaths),
           "LOOM_LUT_MULTIPLIERS": str(config.lut_multipliers),
           "LOOM_PRODUCT_STAGES": str(config.product_stages)}
    result = run_cocotb(_elaborate(config), TOPLEVEL, TEST_MODULE, config.name, seed,
                        tests=config.test_names, env=env, waves=waves)
    result.config = config
    return result
