"""``make bench``: the cycle model against the RTL on a sweep of GEMM shapes, with plots.

Usage: ``python -m sim.sweep [--builds 8x8 4x8dual] [--quick] [--seed N] [--out DIR]``

For each Verilator build it runs every shape of the sweep (int8 operands, random data, the
``sw.compiler`` program) on the rtl backend, reads PERF_TOTAL_CYCLES and prints a table:
measured cycles, the cycle model's prediction (``sw/cycle_model.py``), error %, MAC
utilisation (useful MACs / (rows * cols * cycles)), and the simulator's speed (device cycles
per wall second). It writes two PNG plots (matplotlib, Agg) under ``build/bench/``:
``sweep_utilisation.png`` (measured and predicted utilisation per shape) and
``sweep_roofline.png`` (achieved ops/cycle against arithmetic intensity, ops per byte read
(the read port, shared by fetch and LOADs, is the bound channel; writes have their own),
with the compute roof ``2 * rows * cols`` and the read-bandwidth roof ``intensity * beat
bytes``: one beat a cycle). Exit status 1 if any shape misses the model by more than 2 %.
"""
import argparse
import random
import sys
import time

import numpy as np

from .toolchain import BUILD_DIR

__all__ = ["BUILDS", "SHAPES", "main", "run_sweep"]

BUILDS = {
    "8x8": dict(rows=8, cols=8, depth=64, data_width=64),
    "4x8dual": dict(rows=4, cols=8, depth=64, data_width=64, datapaths=("int8", "fp16")),
    "16x16": dict(rows=16, cols=16, depth=256, data_width=128),
}

#: (M, K, N, output) — larger than the ``make test`` sweep
SHAPES = [
    (64, 64, 64, "int32"), (128, 64, 128, "int32"), (128, 256, 64, "int32"),
    (1, 1024, 256, "int32"), (1, 256, 512, "int8"), (512, 64, 8, "int32"),
    (256, 32, 16, "int32"), (8, 64, 512, "int32"), (100, 300, 90, "int8"),
    (77, 129, 53, "int32"), (192, 192, 192, "int8"), (64, 1000, 64, "int32"),
    (200, 48, 120, "int8"), (33, 65, 257, "int32"), (256, 128, 256, "int8"),
    (16, 2048, 16, "int32"), (3, 500, 700, "int32"), (320, 96, 64, "int8"),
    (128, 128, 128, "int32"), (24, 72, 640, "int8"),
]
QUICK = SHAPES[:6]
TOLERANCE = 0.02


def _options(rng, n, out):
    if out != "int8":
        return {}
    return dict(out="int8", multiplier=rng.integers(1 << 29, 1 << 31, size=n),
                shift=rng.integers(6, 12, size=n), zero_point=rng.integers(-5, 5, size=n),
                bias=rng.integers(-999, 999, size=n))


def run_sweep(build, shapes, seed, progress=True):
    """Run ``shapes`` on one build; a list of result dicts (cycles are device cycles)."""
    from tqdm import tqdm

    from sw import open_device
    from sw.compiler import compile_gemms
    from sw.cycle_model import predict
    from sw.gemm import gemm_spec

    rng = np.random.default_rng(seed)
    dev = open_device("rtl", seed=seed, progress=False, **BUILDS[build])
    results = []
    try:
        bar = tqdm(shapes, desc=f"rtl {build}", unit="shape", disable=not progress)
        for m, k, n, out in bar:
            bar.set_postfix_str(f"{m}x{k}x{n} {out}")
            a = rng.integers(-128, 128, size=(m, k))
            b = rng.integers(-128, 128, size=(k, n))
            program = compile_gemms([gemm_spec(a, b, **_options(rng, n, out))], dev.config,
                                    dev.allocator)
            started = time.perf_counter()
            try:
                stats = dev.run(program)
            finally:
                for at in program.allocations:
                    dev.allocator.free(at)
            wall = time.perf_counter() - started
            pred = predict(program.descriptors, dev.config)
            rows, cols = dev.config.rows, dev.config.cols
            results.append(dict(
                build=build, m=m, k=k, n=n, out=out, measured=stats.cycles,
                predicted=pred.cycles, error=(pred.cycles - stats.cycles) / stats.cycles,
                util=stats.utilisation, util_pred=m * k * n / (rows * cols * pred.cycles),
                ops_per_cycle=2 * m * k * n / stats.cycles,
                intensity=2 * m * k * n / max(1, stats.dma_read_bytes),
                peak=2 * rows * cols, beat=dev.config.beat_bytes,
                speed=stats.cycles / wall if wall else 0.0))
    finally:
        dev.close()
    return results


def table(results):
    head = (f"{'build':<8} {'M':>5} {'K':>5} {'N':>5} {'out':>5} {'measured':>9} "
            f"{'predicted':>9} {'error':>7} {'util':>6} {'cyc/s':>7}")
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(f"{r['build']:<8} {r['m']:>5} {r['k']:>5} {r['n']:>5} {r['out']:>5} "
                     f"{r['measured']:>9,} {r['predicted']:>9,} {100 * r['error']:>+6.2f}% "
                     f"{100 * r['util']:>5.1f}% {r['speed']:>7,.0f}")
    worst = max(results, key=lambda r: abs(r["error"]))
    lines.append(f"worst error {100 * worst['error']:+.2f} % ({worst['m']}x{worst['k']}x"
                 f"{worst['n']} on {worst['build']}); mean |error| "
                 f"{100 * np.mean([abs(r['error']) for r in results]):.2f} %")
    return "\n".join(lines)


def plot(results, out_dir):
    """Write the utilisation bar chart and the roofline; returns their paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    labels = [f"{r['build']} {r['m']}x{r['k']}x{r['n']}" for r in results]
    x = np.arange(len(results))
    fig, ax = plt.subplots(figsize=(max(8, 0.45 * len(results)), 5))
    ax.bar(x - 0.2, [100 * r["util"] for r in results], 0.4, label="measured (RTL)")
    ax.bar(x + 0.2, [100 * r["util_pred"] for r in results], 0.4, label="cycle model")
    ax.set_xticks(x, labels, rotation=75, fontsize=7)
    ax.set_ylabel("MAC utilisation (%)")
    ax.set_title("Loom: utilisation per GEMM shape")
    ax.legend()
    fig.tight_layout()
    util_path = out_dir / "sweep_utilisation.png"
    fig.savefig(util_path, dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 5))
    for build in dict.fromkeys(r["build"] for r in results):
        rs = [r for r in results if r["build"] == build]
        peak, beat = rs[0]["peak"], rs[0]["beat"]
        xs = np.logspace(np.log10(min(r["intensity"] for r in results) / 2),
                         np.log10(max(r["intensity"] for r in results) * 2), 100)
        line, = ax.plot(xs, np.minimum(peak, xs * beat), "--", lw=1)
        ax.scatter([r["intensity"] for r in rs], [r["ops_per_cycle"] for r in rs],
                   color=line.get_color(), label=f"{build} (roof {peak} ops/cycle, "
                                                 f"{beat} B/cycle)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (ops per DMA byte read)")
    ax.set_ylabel("achieved ops per cycle")
    ax.set_title("Loom roofline (RTL-measured)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    roof_path = out_dir / "sweep_roofline.png"
    fig.savefig(roof_path, dpi=120)
    plt.close(fig)
    return util_path, roof_path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sim.sweep")
    parser.add_argument("--builds", nargs="*", default=["8x8", "4x8dual"],
                        choices=sorted(BUILDS))
    parser.add_argument("--quick", action="store_true", help="the first six shapes only")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", default=str(BUILD_DIR / "bench"))
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"seed {seed} (repeat with --seed {seed})")
    shapes = QUICK if args.quick else SHAPES
    results = []
    for build in args.builds:
        results += run_sweep(build, shapes, seed)
    print(table(results))
    from pathlib import Path
    for path in plot(results, Path(args.out)):
        print(f"wrote {path}")
    return 0 if all(abs(r["error"]) <= TOLERANCE for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
