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


def stream_through(dut, items, rng, rate, out_fields=("data", "last"), limit=4000):
    """Offer ``items`` (payload dicts) on ``dut.i`` and collect ``dut.o`` under random
    valid/ready (probability ``rate``); also return how often ``i.ready`` was high while a
    word waited to leave (to check words flow without gaps when nothing stalls)."""
    got = []

    async def bench(ctx):
        pending = list(items)
        for _ in range(limit):
            offer = bool(pending) and rng.random() < rate
            ctx.set(dut.i.valid, offer)
            if offer:
                ctx.set(dut.i.payload, pending[0])
            ready = rng.random() < rate
            ctx.set(dut.o.ready, ready)
            took = offer and ctx.get(dut.i.ready)
            if ready and ctx.get(dut.o.valid):
                got.append(tuple(ctx.get(getattr(dut.o.payload, f)) for f in out_fields))
            await ctx.tick()
            if took:
                pending.pop(0)
            if not pending and not ctx.get(dut.o.valid):
                break
        assert not pending, "the converter stopped taking input"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("words_per_beat", [2, 4, 8])
@pytest.mark.parametrize("rate", [1.0, 0.5])
def test_beats_split_into_their_meant_words(rng, words_per_beat, rate):
    """Packed loads: each beat yields its first ``words`` words, low bits first; ``last``
    on the final word of a ``last`` beat; the rest of a partial beat is dropped."""
    beat_width = 64
    width = beat_width // words_per_beat
    dut = BeatsToWords(beat_width, words_per_beat=words_per_beat)
    assert dut.word_width == width
    beats = [{"data": int(rng.integers(0, 2**63)) | int(rng.integers(0, 2)) << 63,
              "words": int(rng.integers(1, words_per_beat + 1)),
              "last": int(rng.random() < 0.2)} for _ in range(60)]
    expected = [((b["data"] >> (width * n)) & ((1 << width) - 1),
                 int(b["last"] and n == b["words"] - 1))
                for b in beats for n in range(b["words"])]
    assert stream_through(dut, beats, rng, rate) == expected


def test_split_words_flow_every_cycle(rng):
    """Without stalls a packed block leaves at one word per cycle: beat b is taken in the
    cycle its predecessor's final word leaves."""
    dut = BeatsToWords(64, words_per_beat=4)
    beats = [{"data": n, "words": 4, "last": int(n == 9)} for n in range(10)]
    cycles = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        pending = list(beats)
        for cycle in range(60):
            ctx.set(dut.i.valid, bool(pending))
            if pending:
                ctx.set(dut.i.payload, pending[0])
            took = pending and ctx.get(dut.i.ready)
            if ctx.get(dut.o.valid):
                cycles.append(cycle)
            await ctx.tick()
            if took:
                pending.pop(0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert cycles == list(range(1, 41))


@pytest.mark.parametrize("words_per_beat", [2, 4])
@pytest.mark.parametrize("rate", [1.0, 0.5])
def test_words_pack_into_beats(rng, words_per_beat, rate):
    """Packed stores: ``p`` words per beat, the first in the low bits; a ``last`` word closes
    its beat early with the missing words zero."""
    beat_width = 32
    width = beat_width // words_per_beat
    dut = WordsToBeats(beat_width, words_per_beat=words_per_beat)
    words = [{"data": int(rng.integers(1, 2**width)), "last": int(rng.random() < 0.15)}
             for _ in range(70)]
    words[-1]["last"] = 1
    expected, beat, count = [], 0, 0
    for w in words:
        beat |= w["data"] << (width * count)
        count += 1
        if count == words_per_beat or w["last"]:
            expected.append((beat, w["last"]))
            beat, count = 0, 0
    assert stream_through(dut, words, rng, rate) == expected


@pytest.mark.parametrize("words_per_beat", [2, 4])
def test_packed_words_survive_pack_and_split(rng, words_per_beat):
    """Whole beats: words -> WordsToBeats -> BeatsToWords (every beat meant whole) -> words."""
    beat_width = 64
    width = beat_width // words_per_beat
    pack = WordsToBeats(beat_width, words_per_beat=words_per_beat)
    words = [{"data": int(rng.integers(0, 2**width)), "last": int(n % (3 * words_per_beat)
                                                                  == 3 * words_per_beat - 1)}
             for n in range(12 * words_per_beat)]
    beats = stream_through(pack, words, rng, 0.5)
    assert len(beats) == len(words) // words_per_beat
    split = BeatsToWords(beat_width, words_per_beat=words_per_beat)
    back = stream_through(split, [{"data": d, "last": last, "words": words_per_beat}
                                  for d, last in beats], rng, 0.5)
    assert back == [(w["data"], w["last"]) for w in words]


@pytest.mark.parametrize("args, kwargs", [((64, 2), {"words_per_beat": 2}),
                                          ((64,), {"words_per_beat": 3}),
                                          ((64, 0), {}), ((64,), {"words_per_beat": True})])
def test_rejects_bad_ratios(args, kwargs):
    for cls in (BeatsToWords, WordsToBeats):
        with pytest.raises(ValueError):
            cls(*args, **kwargs)
