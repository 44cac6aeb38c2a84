"""Stream width converters between bus beats and wider buffer words (power-of-two ratios)."""
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BeatsToWords", "WordsToBeats"]


def _check(beat_width, ratio):
    if not isinstance(beat_width, int) or isinstance(beat_width, bool) or beat_width < 1:
        raise ValueError(f"beat_width must be a positive integer, not {beat_width!r}")
    if not isinstance(ratio, int) or isinstance(ratio, bool) or ratio < 1:
        raise ValueError(f"ratio must be a positive integer, not {ratio!r}")


class BeatsToWords(wiring.Component):
    """Gathers ``ratio`` consecutive beats into one word, the first beat in the low bits
    (little-endian, as bytes lie in host memory). A ``ratio`` of 1 is a plain wire.

    ``i``: stream of ``{data: beat_width, last}``; ``o``: stream of
    ``{data: beat_width * ratio, last}``, ``last`` taken from the word's final beat. A word
    leaves one cycle after its final beat arrives (the last beat is registered too, so
    ``i.ready`` never depends on ``o.ready`` combinationally when ``ratio > 1``).
    """

    def __init__(self, beat_width, ratio):
        _check(beat_width, ratio)
        self.beat_width, self.ratio = beat_width, ratio
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"data": beat_width, "last": 1}))),
            "o": Out(stream.Signature(data.StructLayout({"data": beat_width * ratio,
                                                         "last": 1}))),
        })

    def elaborate(self, platform):
        m = Module()
        if self.ratio == 1:
            m.d.comb += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload),
                         self.i.ready.eq(self.o.ready)]
            return m
        count = Signal(range(self.ratio))
        full = Signal()
        m.d.comb += [self.i.ready.eq(~full | self.o.ready), self.o.valid.eq(full)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += full.eq(0)
        with m.If(self.i.valid & self.i.ready):
            for n in range(self.ratio):
                with m.If(count == n):
                    part = slice(n * self.beat_width, (n + 1) * self.beat_width)
                    m.d.sync += self.o.payload.data[part].eq(self.i.payload.data)
            with m.If(count == self.ratio - 1):
                m.d.sync += [count.eq(0), full.eq(1),
                             self.o.payload.last.eq(self.i.payload.last)]
            with m.Else():
                m.d.sync += count.eq(count + 1)
        return m


class WordsToBeats(wiring.Component):
    """Splits each word into ``ratio`` beats, low bits first; ``last`` on the final beat of a
    word whose ``last`` is set. A ``ratio`` of 1 is a plain wire.

    ``i``: stream of ``{data: beat_width * ratio, last}``; ``o``: stream of
    ``{data: beat_width, last}``. One beat per cycle while ``o.ready``; a new word is taken
    in the cycle its predecessor's final beat leaves.
    """

    def __init__(self, beat_width, ratio):
        _check(beat_width, ratio)
        self.beat_width, self.ratio = beat_width, ratio
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"data": beat_width * ratio,
                                                        "last": 1}))),
            "o": Out(stream.Signature(data.StructLayout({"data": beat_width, "last": 1}))),
        })

    def elaborate(self, platform):
        m = Module()
        if self.ratio == 1:
            m.d.comb += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload),
                         self.i.ready.eq(self.o.ready)]
            return m
        count = Signal(range(self.ratio))
        final = count == self.ratio - 1
        for n in range(self.ratio):
            with m.If(count == n):
                part = slice(n * self.beat_width, (n + 1) * self.beat_width)
                m.d.comb += self.o.payload.data.eq(self.i.payload.data[part])
        m.d.comb += [
            self.o.valid.eq(self.i.valid),
            self.o.payload.last.eq(self.i.payload.last & final),
            self.i.ready.eq(self.o.ready & final),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += count.eq(Mux(final, 0, count + 1))
        return m
