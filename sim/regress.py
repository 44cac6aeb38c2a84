"""``make sim``: generate, build and run every array configuration; print the figures.

Usage: ``python -m sim.regress [--seed N] [--jobs N] [--only 4x4 ...] [--waves]``

For each configuration it prints the tiles run, MACs checked bit-exactly against the golden
model, cycles per tile for a back-to-back stream against the ideal (the array's fill + drain
latency plus K), and how many simulated cycles per second Verilator (driven by cocotb) ran.
Results also go to ``build/sim/summary.json``. Exit status 1 if any test failed.
"""
import argparse
import json
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

from tqdm import tqdm

from .cocotb_run import run_config
from .configs import REGRESSION
from .toolchain import BUILD_DIR

__all__ = ["main", "summary_rows", "format_table"]


def summary_rows(results):
    """One dict of printable figures per :class:`~sim.cocotb_run.RunResult`."""
    rows = []
    for result in results:
        m = result.metrics
        tiles = m.get("stream_tiles", 0) or 1
        rows.append({
            "config": result.config.name,
            "tests": f"{len(result.passed)}/{len(result.passed) + len(result.failed)}",
            "tiles": m.get("tiles", 0),
            "MACs checked": m.get("macs", 0),
            "cycles/tile": round(m.get("stream_cycles", 0) / tiles, 1),
            "ideal/tile": round(m.get("stream_ideal", 0) / tiles, 1),
            "MAC util": (f"{m['stream_k'] / m['stream_cycles']:.1%}"
                         if m.get("stream_cycles") else "-"),
            "1-tile cyc/ideal": f"{m.get('single_tile_cycles', '-')}/"
                                f"{m.get('single_tile_ideal', '-')}",
            "sim cycles/s": int(m["cycles"] / m["wall_s"]) if m.get("wall_s") else 0,
            "build s": round(result.build_s, 1),
            "status": "PASS" if result.ok else "FAIL",
        })
    return rows


def format_table(rows):
    if not rows:
        return "(no configurations run)"
    headers = list(rows[0])
    widths = {h: max(len(h), *(len(str(r[h])) for r in rows)) for h in headers}
    lines = ["  ".join(h.rjust(widths[h]) for h in headers),
             "  ".join("-" * widths[h] for h in headers)]
    lines += ["  ".join(str(r[h]).rjust(widths[h]) for h in headers) for r in rows]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sim.regress", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: fresh)")
    parser.add_argument("--jobs", type=int, default=2, help="configurations built in parallel")
    parser.add_argument("--only", nargs="*", default=None, metavar="RxC",
                        help="run only these shapes, e.g. --only 4x4 16x16")
    parser.add_argument("--waves", action="store_true", help="dump build/sim/<cfg>/dump.vcd")
    args = parser.parse_args(argv)

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    configs = [c for c in REGRESSION
               if args.only is None or f"{c.rows}x{c.cols}" in args.only]
    if not configs:
        parser.error(f"no configuration matches {args.only}; have "
                     f"{[f'{c.rows}x{c.cols}' for c in REGRESSION]}")
    print(f"loom regression: {len(configs)} configurations, seed {seed} "
          f"(repeat with: make sim SEED={seed})", flush=True)

    started = time.perf_counter()
    results = {}
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pool.submit(run_config, c, seed, waves=args.waves): c for c in configs}
        for future in tqdm(as_completed(futures), total=len(futures), desc="configurations",
                           unit="cfg"):
            config = futures[future]
            try:
                results[config] = future.result()
            except Exception as exc:  # a build error: report it, keep the others going
                tqdm.write(f"{config.name}: {exc}")
                results[config] = None

    ordered = [results[c] for c in configs if results[c] is not None]
    rows = summary_rows(ordered)
    print()
    print(format_table(rows))
    for result in ordered:
        for name, message in result.failed.items():
            print(f"FAILED {result.config.name}.{name}: {message}")
    broken = [c.name for c in configs if results[c] is None]
    for name in broken:
        print(f"ERROR {name}: did not build or run; see build/sim/{name}/")
    (BUILD_DIR / "sim").mkdir(parents=True, exist_ok=True)
    (BUILD_DIR / "sim" / "summary.json").write_text(json.dumps(
        {"seed": seed, "configs": rows}, indent=1))
    ok = not broken and all(r.ok for r in ordered)
    print(f"\n{'PASS' if ok else 'FAIL'}: {sum(len(r.passed) for r in ordered)} tests passed, "
          f"{sum(len(r.failed) for r in ordered) + len(broken)} failed, seed {seed}, "
          f"{time.perf_counter() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
