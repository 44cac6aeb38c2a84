"""OperandBuffer in Amaranth's simulator: slot isolation, streaming, and backpressure."""
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


@pytest.mark.parametrize("ready_rate", [1.0, 0.5])
def test_streams_the_requested_words_of_each_slot(rng, ready_rate):
    depth, slots = 32, 3
    buffer = OperandBuffer(width=24, depth=depth, slots=slots)
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
