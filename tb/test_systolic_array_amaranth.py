"""SystolicArray in Amaranth's own simulator: small shapes, quick, no Verilator.

The full regression (every shape, long K, Verilator) is ``tb/test_systolic_array.py``; this
file checks the same contract at small sizes in seconds, plus the constructor's checks.
"""
import pytest
from amaranth.sim import Simulator

from hw.systolic_array import SystolicArray
from tb.payload import pack, unpack
from tb.tiles import drained_rows, make_tile, tile_beats


def run_tiles(array, tiles, rng, bubble_rate=0.0, timeout=100_000):
    """Stream ``tiles`` through ``array``; return (result beats, cycles first beat..last row)."""
    beats = [beat for tile in tiles for beat in tile_beats(tile, array.datapaths)]
    expected_beats = len(tiles) * array.rows
    operand_shape = array.operands.payload.shape()
    result_shape = array.results.payload.shape()
    got, stamps = [], {}

    async def bench(ctx):
        index = cycle = 0
        while len(got) < expected_beats:
            assert cycle < timeout, "array stopped producing results"
            offer = index < len(beats) and rng.random() >= bubble_rate
            ctx.set(array.operands.valid, offer)
            if offer:
                ctx.set(array.operands.payload.as_value(), pack(operand_shape, beats[index]))
            transfer = offer and ctx.get(array.operands.ready)
            if transfer and index == 0:
                stamps["first"] = cycle
            if ctx.get(array.results.valid):
                got.append(unpack(result_shape, ctx.get(array.results.payload.as_value())))
                stamps["last"] = cycle
            await ctx.tick()
            index += transfer
            cycle += 1

    sim = Simulator(array)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got, stamps["last"] - stamps["first"] + 1


def check_bubbled_tiles(array, rng, max_k):
    """Five tiles of every pattern, K from 1 to ``max_k - 1``, offered with bubbles: the
    drained rows are the golden model's."""
    tiles = [make_tile(rng, array.rows, array.cols, int(rng.integers(1, max_k)), pattern)
             for pattern in ["random", "all_min", "alternating", "one_hot", "random"]]
    got, _ = run_tiles(array, tiles, rng, bubble_rate=0.3)
    assert got == [row for tile in tiles for row in drained_rows(tile.c)]


def check_back_to_back_tiles(array, rng, ks):
    """Random tiles of ``ks`` offered every cycle: the golden model's rows at exactly
    ``array.ideal_cycles(ks)``."""
    tiles = [make_tile(rng, array.rows, array.cols, k) for k in ks]
    got, cycles = run_tiles(array, tiles, rng)
    assert got == [row for tile in tiles for row in drained_rows(tile.c)]
    assert cycles == array.ideal_cycles(ks)


@pytest.mark.parametrize("rows, cols", [(1, 1), (2, 2), (3, 2), (2, 4), (4, 1)])
def test_random_tiles_with_bubbles(rng, rows, cols):
    array = SystolicArray(rows, cols)
    tiles = [make_tile(rng, rows, cols, int(rng.integers(1, 3 * rows + 4)), pattern)
             for pattern in ["random", "all_min", "alternating", "one_hot", "random", "zeros"]]
    got, _ = run_tiles(array, tiles, rng, bubble_rate=0.3)
    assert got == [row for tile in tiles for row in drained_rows(tile.c)]


@pytest.mark.parametrize("rows, cols", [(2, 3), (4, 4)])
def test_back_to_back_tiles_meet_the_ideal_cycle_count(rng, rows, cols):
    array = SystolicArray(rows, cols)
    ks = [int(k) for k in rng.integers(1, 3 * rows, size=8)]
    tiles = [make_tile(rng, rows, cols, k) for k in ks]
    got, cycles = run_tiles(array, tiles, rng)
    assert got == [row for tile in tiles for row in drained_rows(tile.c)]
    assert cycles == array.ideal_cycles(ks)


@pytest.mark.parametrize("rows, cols, lut", [(3, 3, 0), (2, 4, 3)])
def test_paired_multipliers_give_the_same_results(rng, rows, cols, lut):
    """PEs sharing a dual multiplier two by two (an odd one out keeps its own, LUT PEs
    theirs): the same rows at the same cycles."""
    array = SystolicArray(rows, cols, lut_multipliers=lut, paired_multipliers=True)
    ks = [int(k) for k in rng.integers(1, 3 * rows + 4, size=6)]
    tiles = [make_tile(rng, rows, cols, k, pattern) for k, pattern in
             zip(ks, ["random", "all_min", "alternating", "random", "one_hot", "random"],
                 strict=True)]
    got, cycles = run_tiles(array, tiles, rng)
    assert got == [row for tile in tiles for row in drained_rows(tile.c)]
    assert cycles == array.ideal_cycles(ks)


@pytest.mark.parametrize("rows, cols, lut, paired", [(3, 2, 0, True), (2, 3, 2, False),
                                                   (1, 1, 0, False)])
def test_clear_after_last_gives_the_same_rows_a_cycle_later(rng, rows, cols, lut, paired):
    """``clear_after_last``: results taken from the accumulators the cycle after each tile's
    last beat, which clears them (as on the iCEBreaker, with paired multipliers): tiles
    with bubbles bit-exact; back-to-back tiles (K = 1 included: a last beat that is also a
    first) at the ideal cycle count, which is one cycle longer per tile."""
    array = SystolicArray(rows, cols, lut_multipliers=lut, paired_multipliers=paired,
                          clear_after_last=True)
    plain = SystolicArray(rows, cols, lut_multipliers=lut, paired_multipliers=paired)
    assert array.latency == plain.latency + 1
    long = 2 * plain.tile_spacing
    assert array.ideal_cycles([long] * 3) == plain.ideal_cycles([long] * 3) + 3
    check_bubbled_tiles(array, rng, 3 * rows + 4)
    check_back_to_back_tiles(array, rng,
                             [1, *(int(k) for k in rng.integers(1, 3 * rows, size=6)), 1, 1])
    with pytest.raises(ValueError, match="int8-only"):
        SystolicArray(rows, cols, datapaths=("int8", "fp16"), clear_after_last=True)
    with pytest.raises(TypeError, match="clear_after_last"):
        SystolicArray(rows, cols, clear_after_last=1)


@pytest.mark.parametrize("rows, cols, separate", [(3, 4, False), (4, 4, False), (2, 5, True),
                                                (1, 3, False), (4, 1, False)])
def test_aligned_drain_gives_the_same_rows_without_deskew(rng, rows, cols, separate):
    """``aligned_drain``: every column drains with the last one (no deskew registers):
    tiles with bubbles bit-exact, back-to-back tiles at the ideal cycle count, whose tile
    spacing is ``cols - 1`` longer; a tile alone takes as long as without."""
    array = SystolicArray(rows, cols, aligned_drain=True, separate_control=separate,
                          clear_after_last=True)
    plain = SystolicArray(rows, cols, clear_after_last=True)
    assert array.tile_spacing == plain.tile_spacing + cols - 1
    assert array.ideal_cycles([5]) == plain.ideal_cycles([5])
    check_bubbled_tiles(array, rng, 3 * (rows + cols))
    check_back_to_back_tiles(
        array, rng, [1, *(int(k) for k in rng.integers(1, 3 * (rows + cols), size=6)), 1, 2])


@pytest.mark.parametrize("stages, rows, cols, lut, separate", [
    (2, 2, 3, 3, False), (2, 5, 2, 4, True), (2, 1, 1, 1, False),
    (3, 3, 2, 3, True), (3, 1, 1, 1, True)])
def test_more_product_stages_give_the_same_rows_later(rng, stages, rows, cols, lut,
                                                      separate):
    """``product_stages`` 2 or 3, LUT and DSP PEs mixed (with ``separate_control``: two
    drain groups): tiles with bubbles bit-exact, back-to-back tiles at the ideal cycle
    count, which is ``stages - 1`` cycles more than with one stage."""
    array = SystolicArray(rows, cols, lut_multipliers=lut, product_stages=stages,
                          separate_control=separate)
    one_stage = SystolicArray(rows, cols)
    assert array.latency == one_stage.latency + stages - 1 == rows + cols + stages - 1
    check_bubbled_tiles(array, rng, 3 * rows + 4)
    ks = [int(k) for k in rng.integers(1, 3 * rows, size=8)]
    check_back_to_back_tiles(array, rng, ks)
    assert array.ideal_cycles(ks) == one_stage.ideal_cycles(ks) + stages - 1


@pytest.mark.parametrize("bubble_rate", [0.0, 0.3])
@pytest.mark.parametrize("rows, cols, datapaths", [
    (1, 1, ("fp16",)), (2, 3, ("fp16",)), (1, 2, ("int8", "fp16")), (3, 2, ("int8", "fp16"))])
def test_three_stage_fp16_adders_give_the_same_results(rng, rows, cols, datapaths,
                                                       bubble_rate):
    """``fp32_adder_stages=3``: fp16 beats one every 3 cycles, fp16 sums 2 cycles later;
    in dual builds int8 and fp16 tiles in random order, short and long, must still drain
    without overtaking each other."""
    array = SystolicArray(rows, cols, datapaths=datapaths, fp32_adder_stages=3)
    dtypes = ["fp16"] if len(datapaths) == 1 else ["int8", "fp16"]
    tiles = []
    for _ in range(10):
        dtype = dtypes[int(rng.integers(0, len(dtypes)))]
        pattern = (str(rng.choice(["random", "specials", "cancelling", "extremes"]))
                   if dtype == "fp16" else str(rng.choice(["random", "all_min"])))
        tiles.append(make_tile(rng, rows, cols, int(rng.integers(1, 2 * rows + 5)), pattern,
                               dtype))
    got, _ = run_tiles(array, tiles, rng, bubble_rate=bubble_rate)
    assert got == [row for tile in tiles for row in drained_rows(tile.c)]


@pytest.mark.parametrize("datapaths, dtype", [(("fp16",), "fp16"), (("int8", "fp16"), "fp16"),
                                             (("int8", "fp16"), "int8")])
def test_three_stage_fp16_adders_meet_the_ideal_cycle_count(rng, datapaths, dtype):
    rows, cols = 3, 2
    array = SystolicArray(rows, cols, datapaths=datapaths, fp32_adder_stages=3)
    ks = [int(k) for k in rng.integers(1, 3 * rows, size=8)]
    tiles = [make_tile(rng, rows, cols, k, dtype=dtype) for k in ks]
    got, cycles = run_tiles(array, tiles, rng)
    assert got == [row for tile in tiles for row in drained_rows(tile.c)]
    assert cycles == array.ideal_cycles(ks, fp16=dtype == "fp16")


@pytest.mark.parametrize("kwargs, error, message", [
    ({"rows": 2, "cols": 2, "paired_multipliers": 1}, TypeError, "paired_multipliers"),
    ({"rows": 2, "cols": 2, "paired_multipliers": True, "datapaths": ("int8", "fp16")},
     ValueError, "paired multipliers"),
    ({"rows": 0, "cols": 4}, ValueError, "rows must be at least 1"),
    ({"rows": 4, "cols": -1}, ValueError, "cols must be at least 1"),
    ({"rows": 4, "cols": "4"}, TypeError, "cols must be an integer"),
    ({"rows": 2.0, "cols": 4}, TypeError, "rows must be an integer"),
    ({"rows": 2, "cols": 2, "acc_width": 8}, ValueError, "acc_width"),
    ({"rows": 2, "cols": 2, "pe_class": object}, TypeError, "pe_class"),
    ({"rows": 2, "cols": 2, "fp32_adder_stages": 3}, ValueError, "needs the fp16 datapath"),
    ({"rows": 2, "cols": 2, "datapaths": ("fp16",), "fp32_adder_stages": 2}, ValueError,
     "fp32_adder_stages must be 1 or 3"),
    ({"rows": 2, "cols": 2, "product_stages": 4}, ValueError,
     "product_stages must be 1, 2 or 3"),
    ({"rows": 2, "cols": 2, "product_stages": 2.0}, TypeError,
     "product_stages must be an integer"),
    ({"rows": 2, "cols": 2, "product_stages": 2, "datapaths": ("int8", "fp16")}, ValueError,
     "int8-only"),
    ({"rows": 2, "cols": 2, "product_stages": 2, "paired_multipliers": True}, ValueError,
     "external"),
])
def test_rejects_bad_parameters(kwargs, error, message):
    with pytest.raises(error, match=message):
        SystolicArray(**kwargs)


def test_lut_multipliers_must_fit_the_array():
    with pytest.raises(ValueError, match="lut_multipliers"):
        SystolicArray(2, 2, lut_multipliers=5)


@pytest.mark.parametrize("rows, cols, datapaths, stages", [
    (6, 3, ("int8",), 1), (2, 2, ("int8", "fp16"), 1), (3, 2, ("int8", "fp16"), 3)])
def test_separate_control_gives_the_same_rows_at_the_same_cycles(rng, rows, cols, datapaths,
                                                                 stages):
    """``separate_control``: each PE's qualifiers and ``drain_start`` its own registers (a
    tree of two from ``done_early``; more than four rows: two groups), back-to-back tiles of
    every datapath at the ideal cycle count."""
    array = SystolicArray(rows, cols, datapaths=datapaths, fp32_adder_stages=stages,
                          separate_control=True)
    dtypes = ["int8", "fp16"] if len(datapaths) > 1 else ["int8"]
    for dtype in dtypes:
        ks = [int(k) for k in rng.integers(1, 3 * rows, size=8)]
        tiles = [make_tile(rng, rows, cols, k, dtype=dtype) for k in ks]
        got, cycles = run_tiles(array, tiles, rng)
        assert got == [row for tile in tiles for row in drained_rows(tile.c)]
        assert cycles == array.ideal_cycles(ks, fp16=dtype == "fp16")


@pytest.mark.parametrize("rows, cols, options", [
    (4, 4, {"paired_multipliers": True, "clear_after_last": True, "aligned_drain": True}),
    (3, 5, {"lut_multipliers": 4}), (2, 3, {"datapaths": ("int8", "fp16")}),
    (1, 1, {})])
def test_broadcast_operands_give_the_same_rows_sooner(rng, rows, cols, options):
    """``broadcast_operands`` (the iCEBreaker's 4x4 and its options first): tiles with
    bubbles bit-exact, back-to-back tiles at the ideal cycle count, every tile's rows
    ``rows + cols - 2`` cycles sooner; with ``aligned_drain`` no longer tile spacing."""
    array = SystolicArray(rows, cols, broadcast_operands=True, **options)
    flowing = SystolicArray(rows, cols, **options)
    assert array.latency == flowing.latency - (rows + cols - 2)
    assert array.tile_spacing == SystolicArray(rows, cols, **{**options,
                                                               "aligned_drain": False}
                                               ).tile_spacing
    check_bubbled_tiles(array, rng, 3 * rows + 4)
    ks = [1, *(int(k) for k in rng.integers(1, 3 * rows + 4, size=6)), 1, 2]
    check_back_to_back_tiles(array, rng, ks)
    with pytest.raises(TypeError, match="broadcast_operands"):
        SystolicArray(rows, cols, broadcast_operands=1)
