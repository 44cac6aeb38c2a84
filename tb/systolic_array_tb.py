"""cocotb testbench of the SystolicArray in Verilator, against the NumPy golden model.

Run through ``sim/cocotb_run.py`` (``make sim``, or pytest's ``tb/test_systolic_array.py``),
which generates the Verilog for one array shape and passes the configuration here through
environment variables: ``LOOM_ROWS``, ``LOOM_COLS``, ``LOOM_DATAPATHS`` (comma-separated),
``LOOM_LUT_MULTIPLIERS``, ``LOOM_PRODUCT_STAGES`` (default 0 and 1), ``LOOM_SEED`` and
``LOOM_METRICS`` (a JSON file this module fills with the figures ``make sim`` prints).
"""
import json
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from hw.layouts import operand_layout, result_layout
from hw.systolic_array import SystolicArray
from tb.payload import pack, unpack
from tb.tiles import FP16_PATTERNS, PATTERNS, Tile, drained_rows, make_tile, tile_beats

CLOCK_NS = 10
ROWS = int(os.environ.get("LOOM_ROWS", "0"))
COLS = int(os.environ.get("LOOM_COLS", "0"))
DATAPATHS = tuple(os.environ.get("LOOM_DATAPATHS", "int8").split(","))
TIMING_DTYPE = "int8" if "int8" in DATAPATHS else "fp16"  # for the datapath-neutral tests
LUT_MULTIPLIERS = int(os.environ.get("LOOM_LUT_MULTIPLIERS", "0"))
PRODUCT_STAGES = int(os.environ.get("LOOM_PRODUCT_STAGES", "1"))
SEED = int(os.environ.get("LOOM_SEED", "0"))
METRICS = os.environ.get("LOOM_METRICS")


class OperandSource:
    """Drives the ``operands`` stream from a queue of beats, with random bubbles.

    ``valid`` is dropped for a cycle with probability ``bubble_rate``; a beat stays on the bus
    until the array accepts it (``ready`` sampled mid-cycle, when it has settled).
    """

    def __init__(self, dut, rows, cols, datapaths, rng):
        self.dut, self.rng = dut, rng
        self.datapaths = datapaths
        self.layout = operand_layout(rows, cols, datapaths)
        self.beats = []
        self.bubble_rate = 0.0
        self.accepted = 0
        self.first_accept_cycle = None
        self._task = None

    def start(self, clock_cycles):
        self._cycles = clock_cycles
        self._task = cocotb.start_soon(self._run())

    def stop(self):
        self._task.cancel()

    def send(self, tiles):
        for tile in tiles:
            self.beats.extend(pack(self.layout, beat)
                              for beat in tile_beats(tile, self.datapaths))

    async def _run(self):
        dut = self.dut
        dut.operands__valid.value = 0
        while True:
            offer = bool(self.beats) and self.rng.random() >= self.bubble_rate
            dut.operands__valid.value = int(offer)
            if offer:
                dut.operands__payload.value = self.beats[0]
            await FallingEdge(dut.clk)
            accepted = offer and bool(dut.operands__ready.value)
            await RisingEdge(dut.clk)
            if accepted:
                if self.first_accept_cycle is None:
                    self.first_accept_cycle = self._cycles() - 1
                self.beats.pop(0)
                self.accepted += 1


class ResultSink:
    """Collects ``results`` beats (the stream has no backpressure) with their cycle numbers."""

    def __init__(self, dut, rows, cols):
        self.dut = dut
        self.layout = result_layout(rows, cols)
        self.beats = []
        self.last_cycle = None
        self._task = None

    def start(self, clock_cycles):
        self._cycles = clock_cycles
        self._task = cocotb.start_soon(self._run())

    def stop(self):
        self._task.cancel()

    async def _run(self):
        while True:
            await FallingEdge(self.dut.clk)
            if self.dut.results__valid.value:
                word = self.dut.results__payload.value.to_unsigned()
                self.beats.append(unpack(self.layout, word))
                self.last_cycle = self._cycles()


class TB:
    """Owns the clock, reset, the operand source and result sink of one array."""

    def __init__(self, dut):
        if ROWS < 1 or COLS < 1:
            raise RuntimeError("LOOM_ROWS/LOOM_COLS are not set: run this through sim/cocotb_run")
        self.dut = dut
        self.rows, self.cols = ROWS, COLS
        # timing figures only
        self.model = SystolicArray(ROWS, COLS, datapaths=DATAPATHS,
                                   lut_multipliers=LUT_MULTIPLIERS, product_stages=PRODUCT_STAGES)
        self.rng = random.Random(SEED)
        self.np_rng = np.random.default_rng(SEED)
        self.cycle = 0
        self.source = OperandSource(dut, ROWS, COLS, DATAPATHS, self.rng)
        self.sink = ResultSink(dut, ROWS, COLS)
        record(clock_ns=CLOCK_NS)
        dut._log.info("array %dx%d %s, seed %d (set LOOM_SEED / --seed to repeat)", ROWS, COLS,
                      "+".join(DATAPATHS), SEED)

    async def start(self):
        cocotb.start_soon(Clock(self.dut.clk, CLOCK_NS, unit="ns").start())
        cocotb.start_soon(self._count_cycles())
        self.dut.operands__valid.value = 0
        self.dut.rst.value = 1
        for _ in range(3):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        self.source.start(lambda: self.cycle)
        self.sink.start(lambda: self.cycle)

    async def _count_cycles(self):
        while True:
            await RisingEdge(self.dut.clk)
            self.cycle += 1

    def tiles(self, ks, patterns=("random",), dtype="int8"):
        return [make_tile(self.np_rng, self.rows, self.cols, k, self.rng.choice(patterns), dtype)
                for k in ks]

    async def run(self, tiles, bubble_rate=0.0):
        """Stream ``tiles``, wait for all their rows, compare bit-exactly; return cycles used."""
        self.source.bubble_rate = bubble_rate
        self.source.first_accept_cycle = None
        self.sink.beats.clear()
        self.source.send(tiles)
        expected = [row for tile in tiles for row in drained_rows(tile.c)]
        budget = sum(max(t.k, self.rows) for t in tiles) * (1 + 20 * bubble_rate) + 100 * self.rows
        start = self.cycle
        while len(self.sink.beats) < len(expected):
            assert self.cycle - start < budget + 1000, (
                f"timeout: {len(self.sink.beats)} of {len(expected)} result rows after "
                f"{self.cycle - start} cycles")
            await RisingEdge(self.dut.clk)
        for _ in range(2 * (self.rows + self.cols)):  # nothing extra may follow
            await RisingEdge(self.dut.clk)
        assert len(self.sink.beats) == len(expected), "array produced extra result rows"
        for index, (got, want) in enumerate(zip(self.sink.beats, expected, strict=True)):
            tile = tiles[index // self.rows]
            if got != want:
                show = (lambda row: [f"{x & 0xFFFFFFFF:#010x}" for x in row["data"]]) \
                    if tile.dtype == "fp16" else (lambda row: row["data"])
                raise AssertionError(
                    f"tile {index // self.rows} ({tile.dtype} {tile.pattern}, K={tile.k}) row "
                    f"{want['row']}: got {show(got)} (row {got['row']}, last {got['last']}), "
                    f"expected {show(want)} (seed {SEED})")
        add_metrics(tiles=len(tiles), macs=sum(self.rows * self.cols * t.k for t in tiles))
        return self.sink.last_cycle - self.source.first_accept_cycle + 1


_metrics = {}


def _save_metrics():
    if METRICS:
        with open(METRICS, "w") as f:
            json.dump(_metrics, f, indent=1)


def record(**figures):
    """Set figures in this configuration's metrics file (read back by ``make sim``)."""
    _metrics.update(figures)
    _save_metrics()


def add_metrics(**figures):
    """Add to running totals in the metrics file (tiles, MACs, cycles, wall time)."""
    for key, value in figures.items():
        _metrics[key] = _metrics.get(key, 0) + value
    _save_metrics()


def with_tb(test):
    """Gives the test a started :class:`TB` (the name stays: cocotb's results report timing)."""
    async def wrapper(dut):
        tb = TB(dut)
        await tb.start()
        await test(tb)
    wrapper.__name__ = test.__name__
    wrapper.__qualname__ = test.__qualname__
    wrapper.__doc__ = test.__doc__
    return wrapper


@cocotb.test()
@with_tb
async def back_to_back_tiles_run_at_the_ideal_rate(tb):
    """Tiles with K >= rows, offered every cycle, need exactly ideal_cycles (no idle cycles)."""
    ks = [tb.rng.randint(tb.rows, 4 * tb.rows + 8) for _ in range(12)]
    cycles = await tb.run(tb.tiles(ks, dtype=TIMING_DTYPE))
    ideal = tb.model.ideal_cycles(ks)
    record(stream_cycles=cycles, stream_ideal=ideal, stream_k=sum(ks), stream_tiles=len(ks),
           latency=tb.model.latency)
    assert cycles == ideal, f"{cycles} cycles for K={ks}, ideal {ideal}"


@cocotb.test()
@with_tb
async def single_tile_latency(tb):
    """One tile: first beat to last result row is K + 2*rows + cols + product_stages - 2
    cycles."""
    k = tb.rows + 3
    cycles = await tb.run(tb.tiles([k], dtype=TIMING_DTYPE))
    record(single_tile_cycles=cycles, single_tile_ideal=tb.model.ideal_cycles([k]), single_k=k)
    assert cycles == tb.model.ideal_cycles([k])


@cocotb.test()
@with_tb
async def random_tiles_with_bubbles(tb):
    """Random K from 1 (shorter than the drain) to 3*rows+8, 30% bubbles, every pattern."""
    ks = [tb.rng.randint(1, 3 * tb.rows + 8) for _ in range(16)]
    await tb.run(tb.tiles(ks, patterns=tuple(PATTERNS)), bubble_rate=0.3)


@cocotb.test()
@with_tb
async def extreme_operands(tb):
    """All -128, all 127, alternating extremes, zeros, one-hot, each at K = 1, rows, 64."""
    tiles = [make_tile(tb.np_rng, tb.rows, tb.cols, k, pattern)
             for pattern in PATTERNS for k in (1, tb.rows, 64)]
    await tb.run(tiles, bubble_rate=0.1)


@cocotb.test()
@with_tb
async def long_reductions(tb):
    """K = 512 and 1024 (all -128: the largest sums) back to back with random tiles."""
    tiles = [make_tile(tb.np_rng, tb.rows, tb.cols, 512, "random"),
             make_tile(tb.np_rng, tb.rows, tb.cols, 1024, "all_min"),
             make_tile(tb.np_rng, tb.rows, tb.cols, 513, "alternating")]
    await tb.run(tiles, bubble_rate=0.05)


@cocotb.test()
@with_tb
async def accumulator_wraps_around(tb):
    """K = 2**17 + 5 products of (-128)(-128) and positive tails overflow int32: must wrap."""
    k = 2**17 + 5
    a = np.full((tb.rows, k), -128, dtype=np.int8)
    b = np.full((k, tb.cols), -128, dtype=np.int8)
    b[-5:, :] = tb.np_rng.integers(-128, 0, size=(5, tb.cols))  # products stay positive
    tile = Tile(a, b, "wrap")
    exact = a.astype(np.int64) @ b.astype(np.int64)
    assert (exact > 2**31 - 1).all(), "test set-up: every sum must exceed the int32 range"
    assert (tile.c < 0).all(), "golden model must wrap these sums to negative values"
    await tb.run([tile])


@cocotb.test()
@with_tb
async def fp16_random_tiles_with_bubbles(tb):
    """fp16 tiles of random K (1 to 3*rows+8) and every fp16 pattern, 30% bubbles."""
    ks = [tb.rng.randint(1, 3 * tb.rows + 8) for _ in range(16)]
    await tb.run(tb.tiles(ks, patterns=tuple(FP16_PATTERNS), dtype="fp16"), bubble_rate=0.3)


@cocotb.test()
@with_tb
async def fp16_special_values_in_random_positions(tb):
    """NaN, +-Inf, +-0, subnormals and +-65504 scattered through otherwise random tiles."""
    ks = [tb.rng.randint(tb.rows, 64) for _ in range(12)]
    await tb.run(tb.tiles(ks, patterns=("specials", "extremes"), dtype="fp16"),
                 bubble_rate=0.1)


@cocotb.test()
@with_tb
async def fp16_long_reductions(tb):
    """K = 1024 and 1500: long float32 sums, rounded at every step in the golden order."""
    tiles = [make_tile(tb.np_rng, tb.rows, tb.cols, 1024, "random", "fp16"),
             make_tile(tb.np_rng, tb.rows, tb.cols, 1500, "cancelling", "fp16")]
    await tb.run(tiles, bubble_rate=0.05)


@cocotb.test()
@with_tb
async def alternating_int8_and_fp16_tiles(tb):
    """A dual build switches datapath per tile, back to back at the ideal rate."""
    ks = [tb.rng.randint(tb.rows, 3 * tb.rows + 8) for _ in range(12)]
    tiles = [make_tile(tb.np_rng, tb.rows, tb.cols, k, "random", ("int8", "fp16")[n % 2])
             for n, k in enumerate(ks)]
    cycles = await tb.run(tiles)
    assert cycles == tb.model.ideal_cycles(ks), f"{cycles} cycles, ideal " \
                                                f"{tb.model.ideal_cycles(ks)}"
