"""DescriptorGather: BeatsToWords' handshakes cycle for cycle, with only the kept bits of each
descriptor (a field's high bits as one flag)."""
import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.sim import Simulator

from hw.descriptor_gather import DescriptorGather
from hw.width_converter import BeatsToWords

#: word 0 whole, a 16-bit field in 8 bits, a 32-bit one in 17, a 64-bit one in 17 (its
#: high bits over two 32-bit beats), a 3-bit one whole
KEPT = ((0, 32, 32), (32, 16, 8), (64, 32, 17), (128, 64, 17), (200, 3, 5))


def kept_model(descriptor, kept):
    """The descriptor as DescriptorGather keeps it."""
    out = 0
    for bit, width, low in kept:
        value = (descriptor >> bit) & ((1 << width) - 1)
        low = min(low, width)
        out |= ((value & ((1 << low) - 1)) | (int(value >> low != 0) << low)) << bit
    return out


def simulate(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


class _Pair(Elaboratable):
    def __init__(self, beat_width):
        self.ours = DescriptorGather(beat_width, KEPT)
        self.reference = BeatsToWords(beat_width, 256 // beat_width)

    def elaborate(self, platform):
        m = Module()
        m.submodules.ours, m.submodules.reference = self.ours, self.reference
        return m


@pytest.mark.parametrize("beat_width", [32, 64])
@pytest.mark.parametrize("in_rate,out_rate", [(0.9, 0.3), (0.5, 0.9), (1, 1)])
def test_gathers_the_kept_bits_with_beats_to_words_timing(rng, beat_width, in_rate, out_rate):
    pair = _Pair(beat_width)
    ours, reference = pair.ours, pair.reference
    beats = 256 // beat_width
    # fields of 0, one bit (high bits in one beat only), all ones or random bits
    picks = [lambda w: 0, lambda w: 1 << int(rng.integers(w)), lambda w: (1 << w) - 1,
             lambda w: int(rng.integers(1 << min(w, 62))) << int(rng.integers(max(w - 61, 1)))]
    descriptors = [sum(picks[rng.integers(4)](w) << b for b, w, _ in KEPT) for _ in range(200)]
    got = []

    async def bench(ctx):
        n = 0
        while len(got) < len(descriptors):
            valid = n < beats * len(descriptors) and rng.random() < in_rate
            ready = rng.random() < out_rate
            beat = (descriptors[min(n // beats, len(descriptors) - 1)]
                    >> (beat_width * (n % beats))) & ((1 << beat_width) - 1)
            for gather in (ours, reference):
                ctx.set(gather.i.valid, valid)
                ctx.set(gather.i.payload.data, beat)
                ctx.set(gather.o.ready, ready)
            for port in ("i.ready", "o.valid"):
                a, b = (getattr(getattr(g, port[0]), port[2:]) for g in (ours, reference))
                assert ctx.get(a) == ctx.get(b), f"{port} differs after {n} beats"
            if ctx.get(ours.o.valid) and ready:
                got.append(ctx.get(ours.o.payload.data))
                assert got[-1] == kept_model(ctx.get(reference.o.payload.data), KEPT)
            if valid and ctx.get(ours.i.ready):
                n += 1
            await ctx.tick()

    simulate(pair, bench)
    assert got == [kept_model(d, KEPT) for d in descriptors]


@pytest.mark.parametrize("in_rate,out_rate", [(0.9, 0.3), (1, 1)])
def test_a_registered_ready_takes_no_beat_while_full(rng, in_rate, out_rate):
    """``ready_registered``: ``i.ready`` is ``not o.valid`` in every cycle, ``o.valid`` rises
    the cycle after a descriptor's final beat, and the descriptors are the same."""
    gather = DescriptorGather(32, KEPT, ready_registered=True)
    descriptors = [int(rng.integers(1 << 62)) << int(rng.integers(0, 190))
                   for _ in range(60)]
    got = []

    async def bench(ctx):
        n, final_taken = 0, False
        while len(got) < len(descriptors):
            valid = n < 8 * len(descriptors) and rng.random() < in_rate
            ready = rng.random() < out_rate
            ctx.set(gather.i.valid, valid)
            ctx.set(gather.i.payload.data,
                    (descriptors[min(n // 8, len(descriptors) - 1)] >> (32 * (n % 8)))
                    & 0xFFFF_FFFF)
            ctx.set(gather.o.ready, ready)
            full = ctx.get(gather.o.valid)
            assert ctx.get(gather.i.ready) == (not full), f"i.ready wrong after {n} beats"
            if final_taken:
                assert full, f"no descriptor the cycle after beat {n}"
            if full and ready:
                got.append(ctx.get(gather.o.payload.data))
            final_taken = valid and not full and n % 8 == 7
            if valid and not full:
                n += 1
            await ctx.tick()

    simulate(gather, bench)
    assert got == [kept_model(d, KEPT) for d in descriptors]


@pytest.mark.parametrize("kept, message", [
    (((0, 32, 32), (16, 8, 8)), "overlaps"),
    (((250, 16, 8),), "leaves the descriptor"),
    (((0, 8, 0),), "keeps no bits"),
])
def test_bad_fields_are_refused(kept, message):
    with pytest.raises(ValueError, match=message):
        DescriptorGather(32, kept)
