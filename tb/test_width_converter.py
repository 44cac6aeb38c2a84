"""Width converters in Amaranth's simulator: round trips under random backpressure."""
import pytest
from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.sim import Simulator

from hw.width_converter import BeatsToWords, WordsToBeats


class RoundTrip(wiring.Component):
    """words -> beats -> words: the output must equal the input."""

    def __init__(self, beat_width, ratio):
        self.split = WordsToBeats(beat_width, ratio)
        self.join = BeatsToWords(beat_width, ratio)
        word = data.StructLayout({"data": beat_width * ratio, "last": 1})
        super().__init__({"i": wiring.In(stream.Signature(word)),
                          "o": wiring.Out(stream.Signature(word)),
                          "beats": wiring.Out(16)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.split, m.submodules.join = self.split, self.join
        wiring.connect(m, wiring.flipped(self.i), self.split.i)
        wiring.connect(m, self.split.o, self.join.i)
        wiring.connect(m, self.join.o, wiring.flipped(self.o))
        with m.If(self.split.o.valid & self.split.o.ready):
            m.d.sync += self.beats.eq(self.beats + 1)
        return m


@pytest.mark.parametrize("ratio", [1, 2, 4])
@pytest.mark.parametrize("rate", [1.0, 0.5])
def test_words_survive_split_and_join(rng, ratio, rate):
    beat_width = 8
    dut = RoundTrip(beat_width, ratio)
    words = [(int(rng.integers(0, 2 ** (beat_width * ratio))), int(n % 3 == 2))
             for n in range(40)]
    got = []

    async def bench(ctx):
        pending = list(words)
        for _ in range(2000):
            offer = bool(pending) and rng.random() < rate
            ctx.set(dut.i.valid, offer)
            if offer:
                ctx.set(dut.i.payload, {"data": pending[0][0], "last": pending[0][1]})
            ready = rng.random() < rate
            ctx.set(dut.o.ready, ready)
            took = offer and ctx.get(dut.i.ready)
            if ready and ctx.get(dut.o.valid):
                got.append((ctx.get(dut.o.payload.data), ctx.get(dut.o.payload.last)))
            await ctx.tick()
            if took:
                pending.pop(0)
            if len(got) == len(words):
                break
        assert ctx.get(dut.beats) == len(words) * ratio

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == words
