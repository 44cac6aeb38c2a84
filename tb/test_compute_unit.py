"""ComputeUnit in Amaranth's simulator: buffers -> array -> result slots, against golden."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.compute_unit import ComputeUnit
from tb.golden import fp16_gemm, int8_gemm, wrap_int32


def lanes_word(values, bits):
    return sum((int(v) & ((1 << bits) - 1)) << (bits * n) for n, v in enumerate(values))


def run(unit, a_slots, b_slots, commands, lane_bits, array_period=None, beats=None,
        lockstep=None):
    """Load the slots, issue ``commands`` back to back, return every result slot's rows.

    ``array_period``: the compute domain's clock period in ``sync`` periods (units built with
    ``domain="array"``); ``beats``: a list that receives the total of ``unit.beats``;
    ``lockstep``: a list that receives the number of compute-domain cycles in which the A
    and B buffers offered a word, after checking in every cycle that both offer one or
    neither (each buffer's ``ready`` is the register slice's alone, so they must)."""
    got = {}

    async def bench(ctx):
        for port, slots in ((unit.a_write, a_slots), (unit.b_write, b_slots)):
            for slot, words in slots.items():
                for index, word in enumerate(words):
                    ctx.set(port, {"valid": 1, "slot": slot, "index": index,
                                   "data": lanes_word(word, lane_bits)})
                    await ctx.tick()
            ctx.set(port.valid, 0)
        for command in commands:
            ctx.set(unit.cmd.valid, 1)
            ctx.set(unit.cmd.payload, command)
            await ctx.tick().until(unit.cmd.ready)
        ctx.set(unit.cmd.valid, 0)
        for _ in range(10_000):
            await ctx.tick()
            if not ctx.get(unit.busy):
                break
        else:
            raise AssertionError("compute unit stayed busy")
        ctx.set(unit.result_words.ready, 1)
        for slot in range(unit.slots):
            ctx.set(unit.result_read.valid, 1)
            ctx.set(unit.result_read.payload, {"slot": slot, "count": unit.rows})
            await ctx.tick().until(unit.result_read.ready)
            ctx.set(unit.result_read.valid, 0)
            rows = []
            while len(rows) < unit.rows:
                if ctx.get(unit.result_words.valid):
                    word = ctx.get(unit.result_words.payload.data)
                    rows.append([(word >> (32 * j)) & 0xFFFFFFFF for j in range(unit.cols)])
                await ctx.tick()
            got[slot] = np.array(rows, dtype=np.uint64).astype(np.uint32).view(np.int32)

    sim = Simulator(unit)
    sim.add_clock(1e-8)
    if array_period is not None:
        # an odd phase too, so the edges of the two clocks wander past each other
        sim.add_clock(array_period * 1e-8, phase=0.3e-8, domain="array")
    if beats is not None:
        beats.append(0)

        async def count_beats(ctx):
            async for _, _, value in ctx.tick().sample(unit.beats):
                beats[0] += value
        sim.add_process(count_beats)
    if lockstep is not None:
        lockstep.append(0)
        domain = "sync" if array_period is None else "array"

        async def check_lockstep(ctx):
            a, b = unit.a_buffer.words, unit.b_buffer.words
            async for _, _, a_valid, b_valid, a_ready, b_ready in ctx.tick(domain).sample(
                    a.valid, b.valid, a.ready, b.ready):
                assert (a_valid, a_ready) == (b_valid, b_ready)
                lockstep[0] += a_valid
        sim.add_process(check_lockstep)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("rows, cols, lut, stages, registers", [
    (2, 3, 0, 1, True), (3, 2, 0, 1, True), (3, 2, 4, 2, True), (3, 2, 3, 3, True),
    (3, 2, 0, 1, False)])
def test_int8_tiles_overwrite_and_accumulate(rng, rows, cols, lut, stages, registers):
    """(and with each PE's product over two or three registers, LUT and DSP PEs mixed; and with the
    operand buffers straight into the array)"""
    unit = ComputeUnit(rows, cols, depth=24, slots=2, lut_multipliers=lut,
                       product_stages=stages, operand_registers=registers)
    a = [rng.integers(-128, 128, size=(rows, 24)) for _ in range(2)]
    b = [rng.integers(-128, 128, size=(24, cols)) for _ in range(2)]
    k0, k1, k2 = 24, 1, 7  # includes K < rows: the array's own spacing applies
    commands = [
        {"a_slot": 0, "b_slot": 0, "k": k0, "acc_slot": 0, "accumulate": 0},
        {"a_slot": 1, "b_slot": 1, "k": k1, "acc_slot": 0, "accumulate": 1},
        {"a_slot": 0, "b_slot": 1, "k": k2, "acc_slot": 1, "accumulate": 0},
        {"a_slot": 1, "b_slot": 0, "k": k2, "acc_slot": 1, "accumulate": 1},
    ]
    lockstep = []
    got = run(unit, {s: a[s].T for s in range(2)}, {s: b[s] for s in range(2)}, commands, 8,
              lockstep=lockstep)
    assert lockstep[0] >= k0 + k1 + 2 * k2
    slot0 = wrap_int32(int8_gemm(a[0][:, :k0], b[0][:k0]).astype(np.int64)
                       + int8_gemm(a[1][:, :k1], b[1][:k1]))
    slot1 = wrap_int32(int8_gemm(a[0][:, :k2], b[1][:k2]).astype(np.int64)
                       + int8_gemm(a[1][:, :k2], b[0][:k2]))
    np.testing.assert_array_equal(got[0], slot0)
    np.testing.assert_array_equal(got[1], slot1)


@pytest.mark.parametrize("array_period", [0.37, 1.0, 2.3])
def test_compute_domain_with_its_own_clock(rng, array_period):
    """``domain="array"``: commands cross in a mailbox, ``busy`` and ``beats`` come back
    through synchronisers, the buffers' two sides are the two clocks: the same results as
    one clock, each beat counted once, with the array clock faster, equal (out of phase)
    and slower than ``sync``; int8 and fp16 tiles with three-stage adders."""
    rows, cols, depth = 2, 3, 12
    unit = ComputeUnit(rows, cols, datapaths=("int8", "fp16"), depth=depth, slots=2,
                       fp32_adder_stages=3, domain="array")
    a8, b8 = rng.integers(-128, 128, size=(rows, depth)), rng.integers(-128, 128, (depth, cols))
    a16 = rng.standard_normal((rows, depth)).astype(np.float16).view(np.uint16)
    b16 = rng.standard_normal((depth, cols)).astype(np.float16).view(np.uint16)
    commands = [
        {"a_slot": 0, "b_slot": 0, "k": depth, "acc_slot": 0, "accumulate": 0, "fp16": 0},
        {"a_slot": 0, "b_slot": 0, "k": 5, "acc_slot": 0, "accumulate": 1, "fp16": 0},
        {"a_slot": 1, "b_slot": 1, "k": 1, "acc_slot": 1, "accumulate": 0, "fp16": 1},
        {"a_slot": 1, "b_slot": 1, "k": depth, "acc_slot": 1, "accumulate": 1, "fp16": 1},
    ]
    beats, lockstep = [], []
    got = run(unit, {0: (a8 & 0xFF).T, 1: a16.T}, {0: b8 & 0xFF, 1: b16}, commands, 16,
              array_period=array_period, beats=beats, lockstep=lockstep)
    assert lockstep[0] >= sum(c["k"] for c in commands)
    np.testing.assert_array_equal(got[0], wrap_int32(
        int8_gemm(a8, b8).astype(np.int64) + int8_gemm(a8[:, :5], b8[:5])))
    expected = fp16_gemm(np.hstack([a16[:, :1], a16]), np.vstack([b16[:1], b16]),
                         k_chunk=[1, depth])
    np.testing.assert_array_equal(got[1].view(np.uint32), expected)
    assert beats == [sum(c["k"] for c in commands)]


def _busy_cycles(unit, k):
    """Cycles from a COMPUTE of ``k`` beats taken to ``busy`` low again (its rows landed)."""
    cycles = []

    async def bench(ctx):
        ctx.set(unit.cmd.valid, 1)
        ctx.set(unit.cmd.payload, {"a_slot": 0, "b_slot": 0, "k": k, "acc_slot": 0,
                                   "accumulate": 0})
        await ctx.tick().until(unit.cmd.ready)
        ctx.set(unit.cmd.valid, 0)
        for n in range(1, 1000):
            await ctx.tick()
            if not ctx.get(unit.busy):
                cycles.append(n)
                return

    sim = Simulator(unit)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return cycles[0]


@pytest.mark.parametrize("rows, cols", [(4, 4), (2, 3)])
def test_the_up5k_options_accumulate_in_one_block_ram_slot(rng, rows, cols):
    """The iCEBreaker's compute unit: one slot in one block RAM looked up a cycle ahead
    (``shared_port``, the array's ``next_row``), operand buffers straight into the array,
    accumulators cleared after the last beat, aligned drains, operands broadcast, paired
    multipliers; K split over
    four COMPUTEs taken back to back (K < rows among them) accumulates exactly."""
    unit = ComputeUnit(rows, cols, depth=24, slots=1, paired_multipliers=True,
                       result_storage="shared_port", operand_registers=False,
                       clear_after_last=True, aligned_drain=True, broadcast_operands=True)
    a, b = rng.integers(-128, 128, size=(rows, 24)), rng.integers(-128, 128, size=(24, cols))
    ks = [24, 1, 7, 3]
    commands = [{"a_slot": 0, "b_slot": 0, "k": k, "acc_slot": 0, "accumulate": int(n > 0)}
                for n, k in enumerate(ks)]
    got = run(unit, {0: a.T}, {0: b}, commands, 8)
    expected = sum(int8_gemm(a[:, :k], b[:k]).astype(np.int64) for k in ks)
    np.testing.assert_array_equal(got[0], wrap_int32(expected))


def test_direct_operands_take_two_cycles_fewer():
    """Without the operand output registers and the register slice a COMPUTE is 2 cycles
    shorter (``ARRAY_CONFIG.direct_operands``, the cycle model's ``- 2``)."""
    with_, without = (_busy_cycles(ComputeUnit(3, 2, depth=8, slots=2,
                                               operand_registers=registers), 5)
                      for registers in (True, False))
    assert without == with_ - 2, (with_, without)
    with pytest.raises(TypeError, match="operand_registers"):
        ComputeUnit(3, 2, depth=8, operand_registers=0)
    with pytest.raises(ValueError, match="operand_registers"):
        ComputeUnit(3, 2, depth=8, operand_registers=False, domain="array")


@pytest.mark.parametrize("option, cycles", [({"product_stages": 2}, 1),
                                            ({"product_stages": 3}, 2),
                                            ({"clear_after_last": True}, 1),
                                            ({"broadcast_operands": True}, -3)])
def test_the_unit_is_busy_for_the_arrays_latency(option, cycles):
    """``busy`` covers the array's latency: one cycle more with two product stages, and with
    results taken from the accumulators the cycle after the last beat; ``rows + cols - 2``
    fewer (3 on this 3x2) with operands broadcast."""
    plain, other = (_busy_cycles(ComputeUnit(3, 2, depth=8, slots=2, **options), 5)
                    for options in ({}, option))
    assert other == plain + cycles, (plain, other)


@pytest.mark.parametrize("depth", [32, 40])
def test_int8_extreme_sums_fit_the_narrow_accumulators(depth):
    """The PEs accumulate in only 16 + ceil(log2(depth)) bits (``pe_acc_width``): K = depth
    products of -128 x -128 (the largest), and of -128 x 127 (the smallest), are exact, and
    so is their sum over two COMPUTEs in the 32-bit result buffer."""
    rows, cols = 2, 3
    unit = ComputeUnit(rows, cols, depth=depth, slots=2)
    assert unit.array.acc_width == 16 + (depth - 1).bit_length() < 32
    a = np.full((rows, depth), -128)
    b = [np.full((depth, cols), -128), np.full((depth, cols), 127)]
    commands = [
        {"a_slot": 0, "b_slot": 0, "k": depth, "acc_slot": 0, "accumulate": 0},
        {"a_slot": 0, "b_slot": 0, "k": depth, "acc_slot": 0, "accumulate": 1},
        {"a_slot": 0, "b_slot": 1, "k": depth, "acc_slot": 1, "accumulate": 0},
    ]
    got = run(unit, {0: a.T}, {0: b[0], 1: b[1]}, commands, 8)
    np.testing.assert_array_equal(got[0], 2 * int8_gemm(a, b[0]))
    np.testing.assert_array_equal(got[1], int8_gemm(a, b[1]))


@pytest.mark.parametrize("stages", [1, 3])
def test_dual_unit_runs_int8_and_fp16_tiles(rng, stages):
    rows, cols, k = 2, 2, 9
    unit = ComputeUnit(rows, cols, datapaths=("int8", "fp16"), depth=k, slots=2,
                       fp32_adder_stages=stages)
    a8, b8 = rng.integers(-128, 128, size=(rows, k)), rng.integers(-128, 128, size=(k, cols))
    a16 = rng.standard_normal((rows, k)).astype(np.float16).view(np.uint16)
    b16 = rng.standard_normal((k, cols)).astype(np.float16).view(np.uint16)
    commands = [
        {"a_slot": 1, "b_slot": 1, "k": k, "acc_slot": 1, "accumulate": 0, "fp16": 1},
        {"a_slot": 0, "b_slot": 0, "k": k, "acc_slot": 0, "accumulate": 0, "fp16": 0},
    ]
    got = run(unit, {0: a8.T, 1: a16.T}, {0: b8, 1: b16}, commands, 16)
    np.testing.assert_array_equal(got[0], int8_gemm(a8, b8))
    np.testing.assert_array_equal(got[1].view(np.uint32), fp16_gemm(a16, b16))


@pytest.mark.parametrize("stages", [1, 3])
@pytest.mark.parametrize("rows, cols, datapaths", [(1, 2, ("fp16",)), (2, 3, ("fp16",)),
                                                   (2, 2, ("int8", "fp16")),
                                                   (1, 2, ("int8", "fp16"))])
def test_fp16_tiles_accumulate_over_k_chunks(rng, rows, cols, datapaths, stages):
    """fp16 K split into chunks (one COMPUTE each, back to back, the first overwriting):
    bit-exact against ``fp16_gemm(..., k_chunk=...)`` with signed zeros, Inf and NaN in the
    operands. A 1-row array writes the same result row for every tile, as often as the
    buffers let K = 1 tiles through (with three-stage adders every 3 cycles, the result
    buffer's closest legal spacing)."""
    from tb.tiles import FP16_PATTERNS

    depth = 6
    unit = ComputeUnit(rows, cols, datapaths=datapaths, depth=depth, slots=2,
                       fp32_adder_stages=stages)
    dual = len(datapaths) > 1
    patterns = ["random", "specials", "cancelling", "zeros"]
    a = [FP16_PATTERNS[patterns[s]](rng, (rows, depth)) for s in range(2)]
    b = [FP16_PATTERNS[patterns[2 + s]](rng, (depth, cols)) for s in range(2)]
    b[0][:, 0] = FP16_PATTERNS["random"](rng, (depth,))   # one column of plain values
    # slot 0: chunks (a0 b0 k=6) (a1 b1 k=1) (a0 b1 k=3) (a1 b0 k=1) (a1 b1 k=1)
    # slot 1: one K = 1 chunk, then a 6-long accumulation onto it
    chunks = {0: [(0, 0, 6), (1, 1, 1), (0, 1, 3), (1, 0, 1), (1, 1, 1)],
              1: [(1, 0, 1), (0, 0, 6)]}
    if rows == 1:   # K = 1 tiles back to back on one slot
        chunks[1] = [(0, 1, 1), (1, 0, 1), (1, 1, 1), (0, 0, 1)]
    commands = []
    for acc_slot in (0, 1):
        for n, (sa, sb, k) in enumerate(chunks[acc_slot]):
            command = {"a_slot": sa, "b_slot": sb, "k": k, "acc_slot": acc_slot,
                       "accumulate": int(n > 0)}
            if dual:
                command["fp16"] = 1
            commands.append(command)
    if dual:    # an int8 tile between them (on slot 1, overwritten before the fp16 ones)
        commands.insert(0, {"a_slot": 0, "b_slot": 0, "k": 2, "acc_slot": 1,
                            "accumulate": 0, "fp16": 0})
    got = run(unit, {s: a[s].T for s in range(2)}, {s: b[s] for s in range(2)}, commands, 16)
    for acc_slot in (0, 1):
        full_a = np.hstack([a[sa][:, :k] for sa, _, k in chunks[acc_slot]])
        full_b = np.vstack([b[sb][:k] for _, sb, k in chunks[acc_slot]])
        expected = fp16_gemm(full_a, full_b, k_chunk=[k for *_, k in chunks[acc_slot]])
        np.testing.assert_array_equal(got[acc_slot].view(np.uint32), expected,
                                      err_msg=f"result slot {acc_slot}")


@pytest.mark.parametrize("stages", [1, 3])
def test_fp16_accumulation_signed_zeros_and_specials(stages):
    """Directed chunk sums (one product each, K = 1 chunks on a 1 x 4 array): slot 0 holds
    ``b0 + b1``, slot 1 ``((b0 - b0) + b1) - b1``, per column: -0 + -0 = -0, x + -x = +0,
    Inf - Inf = NaN, Inf + finite = Inf, and a NaN operand."""
    f16 = np.float16
    unit = ComputeUnit(1, 4, datapaths=("fp16",), depth=1, slots=2, fp32_adder_stages=stages)
    a = {0: np.array([[1.0]], dtype=f16), 1: np.array([[-1.0]], dtype=f16)}
    b = {0: np.array([[-0.0, np.inf, np.inf, np.nan]], dtype=f16),
         1: np.array([[-0.0, -np.inf, 1.0, 0.5]], dtype=f16)}
    chunks = {0: [(0, 0), (0, 1)], 1: [(0, 0), (1, 0), (0, 1), (1, 1)]}
    commands = [{"a_slot": sa, "b_slot": sb, "k": 1, "acc_slot": slot, "accumulate": int(n > 0)}
                for slot in (0, 1) for n, (sa, sb) in enumerate(chunks[slot])]
    bits = {s: v.view(np.uint16) for s, v in a.items()}
    got = run(unit, {s: v.T for s, v in bits.items()},
              {s: v.view(np.uint16) for s, v in b.items()}, commands, 16)
    expected = {0: [0x80000000, 0x7FC00000, 0x7F800000, 0x7FC00000],
                1: [0x00000000, 0x7FC00000, 0x7FC00000, 0x7FC00000]}
    for slot in (0, 1):
        full_a = np.hstack([a[sa] for sa, _ in chunks[slot]])
        full_b = np.vstack([b[sb] for _, sb in chunks[slot]])
        golden = fp16_gemm(full_a, full_b, k_chunk=1)
        np.testing.assert_array_equal(golden[0], expected[slot])
        np.testing.assert_array_equal(got[slot].view(np.uint32)[0], golden[0])
