"""OperandBuffer in Amaranth's simulator: slot isolation, streaming, and backpressure."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.operand_buffer import OperandBuffer


def simulate(buffer, writes, reads, ready_rate, rng, timeout=20_000):
    """Write ``writes`` [(slot, index, value)], then run ``reads`` [(slot, count)] back to
    back with a consumer that is ready with probability ``ready_rate``; return the words."""
    got = []

    async def bench(ctx):
        for slot, index, value in writes:
            ctx.set(buffer.write, {"valid": 1, "slot": slot, "index": index, "data": value})
            await ctx.tick()
        ctx.set(buffer.write.valid, 0)
        pending = list(reads)
        cycles = 0
        expected = sum(count for _, count in reads)
        while len(got) < expected:
            assert cycles < timeout, "buffer stopped streaming"
            if pending:
                ctx.set(buffer.read.valid, 1)
                ctx.set(buffer.read.payload, {"slot": pending[0][0], "count": pending[0][1]})
            else:
                ctx.set(buffer.read.valid, 0)
            ready = rng.random() < ready_rate
            ctx.set(buffer.words.ready, ready)
            took_cmd = pending and ctx.get(buffer.read.ready)
            if ready and ctx.get(buffer.words.valid):
                got.append((ctx.get(buffer.words.payload.data),
                            ctx.get(buffer.words.payload.last)))
            await ctx.tick()
            if took_cmd:
                pending.pop(0)
            cycles += 1
        ctx.set(buffer.words.ready, 1)
        for _ in range(5):  # nothing more may come out
            assert not ctx.get(buffer.words.valid)
            await ctx.tick()

    sim = Simulator(buffer)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("output_register", [False, True, "ecp5"])
@pytest.mark.parametrize("ready_rate", [1.0, 0.5])
def test_streams_the_requested_words_of_each_slot(rng, ready_rate, output_register,
                                                  monkeypatch):
    """(``"ecp5"``: the output register inside the RAM, :class:`~hw.ecp5_block_ram.
    Ecp5OutregRam`, as the ECP5 build chooses it, simulated through its behaviour)"""
    if output_register == "ecp5":
        import hw.operand_buffer
        monkeypatch.setattr(hw.operand_buffer, "is_ecp5", lambda platform: True)
        output_register = True
    depth, slots = 32, 3
    buffer = OperandBuffer(width=24, depth=depth, slots=slots, output_register=output_register)
    contents = {(s, i): int(rng.integers(0, 2**24)) for s in range(slots) for i in range(depth)}
    writes = [(s, i, v) for (s, i), v in contents.items()]
    rng.shuffle(writes)
    reads = [(int(rng.integers(0, slots)), int(rng.integers(1, depth + 1))) for _ in range(8)]
    reads += [(1, 1), (0, depth), (2, 1)]
    got = simulate(buffer, writes, reads, ready_rate, rng)
    expected = [(contents[(s, i)], int(i == n - 1)) for s, n in reads for i in range(n)]
    assert got == expected


@pytest.mark.parametrize("kwargs", [{"width": 0, "depth": 4}, {"width": 8, "depth": "4"},
                                    {"width": 8, "depth": 4, "slots": 0}])
def test_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        OperandBuffer(**kwargs)


@pytest.mark.parametrize("storage", ["ram", "registers"])
def test_result_buffer_overwrites_and_accumulates_with_wraparound(rng, storage):
    from hw.result_buffer import ResultBuffer
    from tb.golden import wrap_int32

    lanes, depth, slots = 3, 4, 2
    buffer = ResultBuffer(lanes=lanes, depth=depth, slots=slots, storage=storage)
    model = {(s, i): [0] * lanes for s in range(slots) for i in range(depth)}
    writes = []
    for _ in range(60):  # back to back, often the same row twice in a row
        slot, index = int(rng.integers(0, slots)), int(rng.integers(0, depth))
        if writes and rng.random() < 0.3:
            slot, index = writes[-1][0], writes[-1][1]
        values = [int(v) for v in rng.integers(-(2**31), 2**31, size=lanes)]
        accumulate = bool(rng.random() < 0.6)
        writes.append((slot, index, values, accumulate))
        old = model[(slot, index)]
        model[(slot, index)] = [int(wrap_int32(o + v)) if accumulate else v
                                for o, v in zip(old, values, strict=True)]
    got = _run_writes(buffer, writes, slots, depth)
    for slot in range(slots):
        assert got[slot] == [_lanes_word(model[(slot, i)]) for i in range(depth)], \
            f"slot {slot}"


def test_shared_port_result_buffer_accumulates_rows_two_cycles_apart(rng):
    """``storage="shared_port"``: one slot, a write's row looked up through the read port;
    writes to one row at least 2 cycles apart (often exactly 2), bubbles between some."""
    from hw.result_buffer import ResultBuffer
    from tb.golden import wrap_int32

    lanes, depth = 3, 4
    buffer = ResultBuffer(lanes=lanes, depth=depth, slots=1, storage="shared_port")
    model = {(0, i): [0] * lanes for i in range(depth)}
    schedule = []
    for _ in range(80):
        if rng.random() < 0.15:
            schedule.append(None)
            continue
        index = int(rng.integers(0, depth))
        previous = schedule[-1] if schedule else None
        if previous is not None and previous[1] == index:
            index = (index + 1) % depth          # not the row of the cycle before
        if len(schedule) > 1 and schedule[-2] is not None and rng.random() < 0.3:
            index = schedule[-2][1]                # the row of 2 cycles before
            if previous is not None and previous[1] == index:
                index = (index + 1) % depth
        values = [int(v) for v in rng.integers(-(2**31), 2**31, size=lanes)]
        accumulate = bool(rng.random() < 0.7)
        schedule.append((0, index, values, accumulate))
        model[(0, index)] = [int(wrap_int32(o + v)) if accumulate else v
                             for o, v in zip(model[(0, index)], values, strict=True)]
    gaps = [n - m for n, w in enumerate(schedule) if w is not None
            for m in range(max(0, n - 2), n) if schedule[m] is not None
            and schedule[m][1] == w[1]]
    assert gaps and min(gaps) == 2, "the schedule must write a row again 2 cycles later"
    got = _run_writes(buffer, schedule, 1, depth)
    assert got[0] == [_lanes_word(model[(0, i)]) for i in range(depth)]


@pytest.mark.parametrize("kwargs", [{"slots": 2}, {"slots": 1, "depth": 1},
                                    {"slots": 1, "fp32": True}])
def test_shared_port_result_buffer_rejects_what_it_cannot_serve(kwargs):
    from hw.result_buffer import ResultBuffer

    with pytest.raises(ValueError, match="shared_port"):
        ResultBuffer(lanes=2, **{"depth": 4, **kwargs}, storage="shared_port")


def _lanes_word(values):
    return sum((v & 0xFFFFFFFF) << (32 * n) for n, v in enumerate(values))


def _fp32_write(rng, model, slot, index, lanes):
    """A random write to ``(slot, index)``: lanes with fp32 specials, ``accumulate`` and
    ``fp32`` flags; applied to ``model`` as the golden adds do it."""
    from tb.fp_vectors import FP32_SPECIALS
    from tb.golden import fp32_add, wrap_int32

    values = rng.integers(0, 2**32, size=lanes, dtype=np.uint64).astype(np.uint32)
    values[rng.random(lanes) < 0.3] = rng.choice(np.array(FP32_SPECIALS, dtype=np.uint32))
    accumulate, fp32 = bool(rng.random() < 0.8), bool(rng.random() < 0.7)
    old = np.array(model[(slot, index)], dtype=np.uint32)
    if not accumulate:
        new = values
    elif fp32:
        new = fp32_add(old, values)
    else:
        new = wrap_int32(old.view(np.int32).astype(np.int64) + values.view(np.int32))
    model[(slot, index)] = [int(v) for v in np.asarray(new).view(np.uint32)]
    return slot, index, [int(v) for v in values], accumulate, fp32


def _run_writes(buffer, schedule, slots, depth):
    """Present ``schedule`` (per cycle a write ``(slot, index, lane values, accumulate[,
    fp32])`` or ``None``), let the last one land, and return every slot's rows as read
    back."""
    from amaranth.sim import Simulator

    got = {}

    async def bench(ctx):
        for entry in schedule:
            if entry is None:
                ctx.set(buffer.write.valid, 0)
            else:
                slot, index, values, accumulate, *fp32 = entry
                ctx.set(buffer.write, {"valid": 1, "slot": slot, "index": index,
                                       "data": _lanes_word(values),
                                       "accumulate": int(accumulate),
                                       **({"fp32": int(fp32[0])} if fp32 else {})})
            await ctx.tick()
        ctx.set(buffer.write.valid, 0)
        await ctx.tick().repeat(buffer.write_latency)
        ctx.set(buffer.words.ready, 1)
        got.update(await _read_slots(ctx, buffer, slots, depth))

    sim = Simulator(buffer)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("storage", ["ram", "registers"])
@pytest.mark.parametrize("depth", [1, 4])
def test_result_buffer_accumulates_fp32_and_int32_back_to_back(rng, depth, storage):
    """fp32 accumulation with specials, mixed with int32 ones and overwrites, one write per
    cycle, the same row again and again (depth 1: every write hits the row the previous
    one is still adding into)."""
    from hw.result_buffer import ResultBuffer

    lanes, slots = 3, 2
    buffer = ResultBuffer(lanes=lanes, depth=depth, slots=slots, fp32=True, storage=storage)
    model = {(s, i): [0] * lanes for s in range(slots) for i in range(depth)}
    writes = []
    for _ in range(150):
        slot, index = int(rng.integers(0, slots)), int(rng.integers(0, depth))
        if writes and rng.random() < 0.4:
            slot, index = writes[-1][0], writes[-1][1]
        writes.append(_fp32_write(rng, model, slot, index, lanes))
    got = _run_writes(buffer, writes, slots, depth)
    for slot in range(slots):
        assert got[slot] == [_lanes_word(model[(slot, i)]) for i in range(depth)], \
            f"slot {slot}"


@pytest.mark.parametrize("depth", [1, 4])
def test_result_buffer_with_three_stage_adders_keeps_rows_four_cycles_apart(rng, depth):
    """``fp32_adder_stages=3``: fp32, int32 and overwrite writes in one stream, each row
    written again exactly 4 cycles later as often as possible (the bypass from the write
    being stored), else 5 or more later (the RAM), never 1 to 3 (the documented limit)."""
    from hw.result_buffer import ResultBuffer

    lanes, slots = 2, 2
    buffer = ResultBuffer(lanes=lanes, depth=depth, slots=slots, fp32=True,
                          fp32_adder_stages=3)
    assert buffer.write_latency == 5
    model = {(s, i): [0] * lanes for s in range(slots) for i in range(depth)}
    schedule = []   # one entry a cycle: a write, or None
    for _ in range(200):
        recent = [w[:2] for w in schedule[-3:] if w is not None]
        if len(schedule) >= 4 and schedule[-4] is not None and rng.random() < 0.5:
            slot, index = schedule[-4][:2]
        else:
            slot, index = int(rng.integers(0, slots)), int(rng.integers(0, depth))
        if (slot, index) in recent:
            schedule.append(None)
            continue
        schedule.append(_fp32_write(rng, model, slot, index, lanes))
    gaps = [n - m for n, w in enumerate(schedule) if w is not None
            for m in range(max(0, n - 4), n) if schedule[m] is not None
            and schedule[m][:2] == w[:2]]
    assert 4 in gaps and min(gaps) == 4, "the schedule must exercise the 4-cycle bypass"
    got = _run_writes(buffer, schedule, slots, depth)
    for slot in range(slots):
        assert got[slot] == [_lanes_word(model[(slot, i)]) for i in range(depth)], \
            f"slot {slot}"


@pytest.mark.parametrize("kwargs, message", [
    ({"fp32_adder_stages": 2, "fp32": True}, "1 or 3"),
    ({"fp32_adder_stages": 3}, "needs fp32=True"),
    ({"fp32_adder_stages": 3, "fp32": True, "storage": "registers"}, "storage='ram'"),
])
def test_result_buffer_rejects_bad_adder_stages(kwargs, message):
    from hw.result_buffer import ResultBuffer

    with pytest.raises(ValueError, match=message):
        ResultBuffer(lanes=2, depth=4, **kwargs)


def test_result_buffer_rejects_fp32_on_narrow_lanes():
    from hw.result_buffer import ResultBuffer
    with pytest.raises(ValueError, match="storage must be one of"):
        ResultBuffer(lanes=2, depth=4, storage="flops")

    with pytest.raises(ValueError, match="32-bit lanes"):
        ResultBuffer(lanes=2, lane_width=16, depth=4, fp32=True)
    with pytest.raises(ValueError, match="fp32"):
        ResultBuffer(lanes=2, depth=4, fp32=1)


async def _read_slots(ctx, buffer, slots, depth):
    """Stream every slot of a result buffer out; ``{slot: [row data, ...]}``."""
    got = {}
    for slot in range(slots):
        ctx.set(buffer.read.valid, 1)
        ctx.set(buffer.read.payload, {"slot": slot, "count": depth})
        await ctx.tick()
        ctx.set(buffer.read.valid, 0)
        rows = []
        while len(rows) < depth:
            if ctx.get(buffer.words.valid):
                rows.append(ctx.get(buffer.words.payload.data))
            await ctx.tick()
        got[slot] = rows
    return got


def test_the_ecp5_buffer_registers_its_words_inside_the_dp16kd_blocks():
    """On an ECP5 a buffer with an output register reads through
    :class:`~hw.ecp5_block_ram.Ecp5OutregRam` (its blocks' ``OUTREG``), enabled as the
    fabric register was (its stall), and drops the fabric register: 128 flip-flops fewer
    after synthesis, the same 8 DP16KD."""
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    from fpga.synth_stats import cell_counts
    from hw.ecp5_block_ram import Ecp5OutregRam

    def buffer():
        return OperandBuffer(width=128, depth=512, slots=2, output_register=True)
    platform = ULX3S_85F_Platform()
    ram = buffer().elaborate(platform).submodules["ram"]
    assert isinstance(ram, Ecp5OutregRam) and ram.blocks == 8 and ram.depth == 1024
    fabric = cell_counts(buffer(), "operand_buffer_fabric_outreg", "ecp5")
    inside = cell_counts(buffer(), "operand_buffer_dp16kd_outreg", "ecp5", platform=platform)
    assert fabric["DP16KD"] == inside["DP16KD"] == 8, (fabric, inside)
    assert inside["TRELLIS_FF"] == fabric["TRELLIS_FF"] - 128, (fabric, inside)


@pytest.mark.parametrize("depth, slots", [(3, 4), (5, 3)])
def test_slots_of_a_depth_not_a_power_of_two_stay_apart(rng, depth, slots):
    """(the parameter buffer's shape: ``slot * depth`` as a choice of constants)"""
    buffer = OperandBuffer(width=16, depth=depth, slots=slots)
    contents = {(s, i): int(rng.integers(0, 2**16)) for s in range(slots) for i in range(depth)}
    writes = [(s, i, v) for (s, i), v in contents.items()]
    rng.shuffle(writes)
    reads = [(s, depth) for s in reversed(range(slots))] + [(1, 1), (slots - 1, 2)]
    got = simulate(buffer, writes, reads, 0.7, rng)
    assert got == [(contents[(s, i)], int(i == n - 1)) for s, n in reads for i in range(n)]


def test_the_slot_base_of_a_depth_3_buffer_takes_no_multiplier_on_ecp5():
    from fpga.synth_stats import cell_counts

    cells = cell_counts(OperandBuffer(width=96, depth=3, slots=4), "operand_buffer_depth3",
                        "ecp5")
    assert "MULT18X18D" not in cells, cells
