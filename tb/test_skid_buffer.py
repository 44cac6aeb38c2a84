"""SkidBuffer in Amaranth's simulator: order, no loss under random stalls, registered
handshakes, full throughput."""
import pytest
from amaranth.sim import Simulator

from hw.skid_buffer import SkidBuffer


def run(skid, bench):
    sim = Simulator(skid)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("valid_rate,ready_rate", [(1.0, 1.0), (0.7, 0.4), (0.3, 0.9),
                                                   (1.0, 0.5)])
@pytest.mark.parametrize("copies", [0, 3])
def test_delivers_every_payload_in_order_under_random_stalls(rng, valid_rate, ready_rate,
                                                             copies):
    """(and with ``ready_copies``, every copy equals ``i.ready`` in every cycle)"""
    skid = SkidBuffer(16, ready_copies=copies)
    sent = [int(v) for v in rng.integers(0, 2**16, 300)]
    got = []

    async def bench(ctx):
        pending = list(sent)
        for _ in range(5_000):
            if not pending and len(got) == len(sent):
                break
            offer = bool(pending) and rng.random() < valid_rate
            ctx.set(skid.i.valid, offer)
            ctx.set(skid.i.payload, pending[0] if offer else 0xdead)
            ctx.set(skid.o.ready, rng.random() < ready_rate)
            taken = offer and ctx.get(skid.i.ready)
            if copies:
                assert ctx.get(skid.ready_copy) == (0b111 if ctx.get(skid.i.ready) else 0)
            if ctx.get(skid.o.valid) and ctx.get(skid.o.ready):
                got.append(ctx.get(skid.o.payload))
            await ctx.tick()
            if taken:
                pending.pop(0)
        ctx.set(skid.i.valid, 0)
        ctx.set(skid.o.ready, 1)
        for _ in range(4):                      # nothing more comes out
            assert not ctx.get(skid.o.valid)
            await ctx.tick()

    run(skid, bench)
    assert got == sent


def test_handshakes_are_registered():
    """Within a cycle, ``i.ready`` does not follow ``o.ready`` and ``o`` does not follow
    ``i``: the slice cuts both combinational paths."""
    skid = SkidBuffer(8)

    async def bench(ctx):
        ctx.set(skid.i.valid, 1)
        ctx.set(skid.o.ready, 0)
        for value in (1, 2):                    # fill the output and the skid register
            ctx.set(skid.i.payload, value)
            await ctx.tick()
        for o_ready in (0, 1):
            ctx.set(skid.o.ready, o_ready)
            assert ctx.get(skid.i.ready) == 0   # full, whatever o.ready says now
        for value in (7, 8):
            ctx.set(skid.i.payload, value)
            assert (ctx.get(skid.o.valid), ctx.get(skid.o.payload)) == (1, 1)
        ctx.set(skid.o.ready, 1)
        await ctx.tick()                        # 1 leaves; 2 moves up from the skid
        assert (ctx.get(skid.o.payload), ctx.get(skid.i.ready)) == (2, 1)

    run(skid, bench)


def test_one_payload_a_cycle_one_cycle_late():
    skid = SkidBuffer(8)

    async def bench(ctx):
        ctx.set(skid.o.ready, 1)
        ctx.set(skid.i.valid, 1)
        seen = []
        for cycle in range(10):
            ctx.set(skid.i.payload, cycle)
            assert ctx.get(skid.i.ready)
            if ctx.get(skid.o.valid):
                seen.append((cycle, ctx.get(skid.o.payload)))
            await ctx.tick()
        assert seen == [(cycle, cycle - 1) for cycle in range(1, 10)]

    run(skid, bench)


def test_rejects_a_bad_shape():
    with pytest.raises(TypeError):
        SkidBuffer("wide")


@pytest.mark.parametrize("copies", [-1, 1.0, True])
def test_rejects_a_bad_copy_count(copies):
    with pytest.raises(ValueError, match="ready_copies"):
        SkidBuffer(8, ready_copies=copies)


def test_ready_copies_stay_apart_on_ecp5():
    """Each copy of ``i.ready`` is a flip-flop of its own after synthesis (yosys merges
    identical plain registers): 4 copies, 3 flip-flops more than 1."""
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    from fpga.synth_stats import cell_counts
    platform = ULX3S_85F_Platform()
    one, four = (cell_counts(SkidBuffer(4, ready_copies=n), f"skid_copies_{n}", "ecp5",
                             platform=platform) for n in (1, 4))
    assert four["TRELLIS_FF"] - one["TRELLIS_FF"] == 3, (one, four)
