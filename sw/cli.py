"""``loom``: the command line of Loom's driver.

    loom gemm --m 64 --k 256 --n 64 --dtype int8 --backend rtl
    loom layer --preset gpt2-small --seq 16 --backend rtl
    loom predict --preset gpt2-small --seq 512 --array 16x16 --bus 128 --mhz 100

Hardware options (``--array``, ``--datapaths``, ``--bus``, ``--depth``) describe the device a
simulated backend builds; the driver then reads the configuration back from its registers,
as it would from a board.
"""
import argparse
import sys
import time

import numpy as np

__all__ = ["main"]


def _array(text):
    try:
        rows, cols = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--array takes ROWSxCOLS, e.g. 8x8, not {text!r}") \
            from None
    return rows, cols


def _hardware_options(parser):
    group = parser.add_argument_group("hardware (golden and rtl backends)")
    group.add_argument("--array", type=_array, default=(8, 8), help="ROWSxCOLS (8x8)")
    group.add_argument("--datapaths", default=None,
                       help="int8, fp16 or int8,fp16 (default: what --dtype needs)")
    group.add_argument("--bus", type=int, default=64, help="AXI data width in bits (64)")
    group.add_argument("--depth", type=int, default=256, help="operand buffer depth (256)")
    parser.add_argument("--backend", default="golden", choices=("golden", "rtl", "serial"))
    parser.add_argument("--port", default=None, help="serial port (serial backend)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (printed)")


def _open(args, dtype="int8"):
    from . import open_device
    if args.backend == "serial":
        return open_device("serial", port=args.port)
    datapaths = args.datapaths.split(",") if args.datapaths else [dtype]
    options = dict(rows=args.array[0], cols=args.array[1], datapaths=datapaths,
                   data_width=args.bus, depth=args.depth)
    if args.backend == "rtl":
        options["seed"] = args.seed
        print(f"building/starting the rtl simulation ({args.array[0]}x{args.array[1]}, "
              f"{'+'.join(datapaths)}, {args.bus}-bit bus)...", flush=True)
    return open_device(args.backend, **options)


def _seed(args):
    if args.seed is None:
        args.seed = int(np.random.SeedSequence().entropy % 2**32)
    print(f"seed {args.seed} (repeat with --seed {args.seed})")
    return np.random.default_rng(args.seed)


def _predicted(dev, program_descriptors):
    try:
        from .cycle_model import predict
    except ImportError:
        return None
    return predict(program_descriptors, dev.config).cycles


def cmd_gemm(args):
    from tb.golden import fp16_gemm, int8_gemm

    from .compiler import compile_gemms
    from .gemm import gemm_spec
    rng = _seed(args)
    m, k, n = args.m, args.k, args.n
    if args.dtype == "int8":
        a = rng.integers(-128, 128, size=(m, k), dtype=np.int64)
        b = rng.integers(-128, 128, size=(k, n), dtype=np.int64)
    else:
        a = rng.standard_normal((m, k)).astype(np.float16)
        b = rng.standard_normal((k, n)).astype(np.float16)
    with _open(args, args.dtype) as dev:
        print(f"device: {dev.config.describe()} on {args.backend}")
        spec = gemm_spec(a, b)
        program = compile_gemms([spec], dev.config, dev.allocator)
        predicted = _predicted(dev, program.descriptors)
        try:
            stats = dev.run(program, expected_cycles=predicted)
            c = program.outputs[0].read(dev.transport.read_memory)
        finally:
            for at in program.allocations:
                dev.allocator.free(at)
    if args.dtype == "int8":
        exact = np.array_equal(c, int8_gemm(a, b))
        error = "bit-exact vs golden" if exact else "MISMATCH vs golden"
    else:
        ref = a.astype(np.float64) @ b.astype(np.float64)
        exact = True
        if k <= dev.config.depth:
            exact = np.array_equal(c.view(np.uint32), fp16_gemm(a, b))
        error = (f"{'bit-exact' if exact else 'MISMATCH'} vs golden; max |error| vs float64 "
                 f"{np.abs(c - ref).max():.3g}")
    print(f"GEMM {m}x{k}x{n} {args.dtype}: {len(program.descriptors)} descriptors, "
          f"{program.tiles} tiles")
    print(f"  cycles {stats.cycles:,}  array-active {stats.array_active_cycles:,}  "
          f"MAC utilisation {stats.utilisation:.1%}  DMA read {stats.dma_read_bytes:,} B  "
          f"write {stats.dma_write_bytes:,} B")
    if predicted is not None and args.backend != "golden":
        error_pct = (predicted - stats.cycles) / stats.cycles
        print(f"  predicted {predicted:,} cycles ({error_pct:+.2%} vs measured)")
    print(f"  result: {error}; wall {stats.wall_s:.2f} s")
    return 0 if exact else 1


def cmd_layer(args):
    from .layers import run_layer
    from .presets import preset
    rng = _seed(args)
    config = preset(args.preset)
    if args.scale != 1:
        from .presets import scaled
        config = scaled(config, args.scale)
    started = time.perf_counter()
    with _open(args, args.dtype) as dev:
        print(f"device: {dev.config.describe()} on {args.backend}")
        result = run_layer(dev, config, seq=args.seq, rng=rng, dtype=args.dtype)
    print(result.table())
    print(f"wall {time.perf_counter() - started:.1f} s")
    return 0


def cmd_predict(args):
    from .cycle_model import project
    print(project(preset=args.preset, seq=args.seq, array=args.array, bus=args.bus,
                  mhz=args.mhz, depth=args.depth))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="loom", description="Loom accelerator driver")
    sub = parser.add_subparsers(dest="command", required=True)
    gemm = sub.add_parser("gemm", help="run a random GEMM and check it")
    for dim in "mkn":
        gemm.add_argument(f"--{dim}", type=int, required=True)
    gemm.add_argument("--dtype", default="int8", choices=("int8", "fp16"))
    _hardware_options(gemm)
    gemm.set_defaults(run=cmd_gemm)
    layer = sub.add_parser("layer", help="run a transformer layer, compare with float32")
    layer.add_argument("--preset", default="gpt2-small")
    layer.add_argument("--seq", type=int, default=16)
    layer.add_argument("--scale", type=int, default=1,
                       help="divide the model's widths by this (faster simulation)")
    layer.add_argument("--dtype", default="int8", choices=("int8", "fp16"))
    _hardware_options(layer)
    layer.set_defaults(run=cmd_layer)
    predict = sub.add_parser("predict", help="project full-size layers with the cycle model")
    predict.add_argument("--preset", default="gpt2-small")
    predict.add_argument("--seq", type=int, default=512)
    predict.add_argument("--array", type=_array, default=(16, 16))
    predict.add_argument("--bus", type=int, default=128)
    predict.add_argument("--depth", type=int, default=1024)
    predict.add_argument("--mhz", type=float, default=100.0)
    predict.set_defaults(run=cmd_predict)
    args = parser.parse_args(argv)
    from .errors import LoomError
    try:
        return args.run(args)
    except (LoomError, ValueError) as exc:      # bad arguments or hardware parameters
        print(f"loom: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
