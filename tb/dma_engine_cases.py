"""What the DMA reader's and writer's Verilator tests share: the builds they run and how."""
import os

from sim.cocotb_run import run_cocotb

#: (data_width, max_outstanding): every bus width with four bursts in flight, and the
#: boards' one burst (behind a RAM that serves one burst at a time: the same transfers
#: with never a second burst in flight, though the host memory would take one)
CASES = [(32, 4), (64, 4), (128, 4), (256, 4), (32, 1)]


def run_engine(engine_class, name, data_width, max_outstanding):
    """Build ``engine_class`` and run ``tb.<name>_tb`` on it; assert its four tests pass."""
    seed = int(os.environ["LOOM_SEED"])
    engine = engine_class(data_width=data_width, max_outstanding=max_outstanding,
                          timeout=256)
    build = f"{name}_{data_width}" + ("_one_outstanding" if max_outstanding == 1 else "")
    result = run_cocotb(engine, name, f"tb.{name}_tb", build, seed,
                        env={"LOOM_DATA_WIDTH": str(data_width), "LOOM_TIMEOUT": "256",
                             "LOOM_MAX_OUTSTANDING": str(max_outstanding)})
    assert result.failed == {}, f"seed {seed}: {result.failed}"
    assert len(result.passed) == 4, result.passed
