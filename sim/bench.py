"""``make bench``: an int8 GEMM through the whole Accelerator per AXI bus width.

Usage: ``python -m sim.bench [--m 256 --k 768 --n 768] [--rows 16 --cols 16]
[--widths 64 128 256] [--layout auto|rows|tiles] [--seed N]``

For each bus width it builds the accelerator, runs the GEMM from a descriptor program with
double buffering (``tb/programs.py``), checks the result bit-exactly and prints the
performance counters: total cycles, array-active cycles, MAC utilisation
``MACs / (rows * cols * total cycles)``, DMA bytes. Operands and C lie row-major in host
memory (``rows``) or tile by tile (``tiles``, which buses wider than a buffer word need:
packed rows); ``auto`` picks ``tiles`` only where the bus needs it. Widths the
configuration cannot use are reported as such. Slow: the host memory model is Python (about
2,000 simulated cycles per second); ``--m 64 --n 128`` is a quick look.
"""
import argparse
import json
import random
import sys
from concurrent.futures import ProcessPoolExecutor

from .cocotb_run import run_cocotb
from .toolchain import BUILD_DIR

__all__ = ["main"]


def _run(rows, cols, width, m, k, n, seed, layout):
    from hw.accelerator import Accelerator

    try:
        top = Accelerator(rows, cols, data_width=width, depth=max(k, 64), timeout=1 << 16)
    except ValueError as exc:
        return width, {"unsupported": str(exc)}
    if layout == "auto":      # int8 operand words and int8 rows: rows / cols bytes
        layout = "tiles" if min(rows, cols) < width // 8 else "rows"
    name = f"bench_{rows}x{cols}_{width}"
    env = {"LOOM_ROWS": str(rows), "LOOM_COLS": str(cols), "LOOM_DATA_WIDTH": str(width),
           "LOOM_M": str(m), "LOOM_K": str(k), "LOOM_N": str(n),
           "LOOM_TILED": str(int(layout == "tiles"))}
    result = run_cocotb(top, "accelerator", "tb.accelerator_bench", name, seed, env=env)
    if result.failed:
        return width, {"failed": result.failed}
    metrics = json.loads((BUILD_DIR / "sim" / name / "metrics.json").read_text())
    metrics["wall_s"] = round(result.test_s, 1)
    metrics["layout"] = layout
    return width, metrics


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sim.bench")
    parser.add_argument("--m", type=int, default=256)
    parser.add_argument("--k", type=int, default=768)
    parser.add_argument("--n", type=int, default=768)
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--cols", type=int, default=16)
    parser.add_argument("--widths", type=int, nargs="*", default=[64, 128, 256])
    parser.add_argument("--layout", choices=("auto", "rows", "tiles"), default="auto")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"int8 GEMM {args.m}x{args.k}x{args.n} on a {args.rows}x{args.cols} array, "
          f"seed {seed}", flush=True)
    with ProcessPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(_run, args.rows, args.cols, w, args.m, args.k, args.n, seed,
                            args.layout) for w in args.widths]
        results = dict(run.result() for run in runs)
    print(f"{'bus':>5} {'cycles':>9} {'active':>9} {'util':>7} {'read MB':>8} {'write MB':>9} "
          f"{'stall':>8} {'wall s':>7} {'layout':>6}")
    ok = True
    for width in args.widths:
        r = results[width]
        if "unsupported" in r or "failed" in r:
            ok &= "unsupported" in r
            print(f"{width:>5}  {r.get('unsupported') or r.get('failed')}")
            continue
        util = r["perf_macs"] / (args.rows * args.cols * r["perf_total_cycles"])
        print(f"{width:>5} {r['perf_total_cycles']:>9} {r['perf_array_active_cycles']:>9} "
              f"{util:>7.1%} {r['perf_dma_read_bytes'] / 1e6:>8.2f} "
              f"{r['perf_dma_write_bytes'] / 1e6:>9.2f} {r['perf_dma_stall_cycles']:>8} "
              f"{r['wall_s']:>7} {r['layout']:>6}")
    (BUILD_DIR / "bench").mkdir(parents=True, exist_ok=True)
    (BUILD_DIR / "bench" / "accelerator.json").write_text(json.dumps(
        {"gemm": [args.m, args.k, args.n], "seed": seed,
         "results": {str(w): r for w, r in results.items()}}, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
