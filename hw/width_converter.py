"""Stream width converters between bus beats and buffer words (power-of-two ratios both ways).

Buffer words can be wider than a bus beat (several beats make a word) or narrower (a beat
carries several consecutive words: *packed* rows, see ``docs/isa.md``). Either way the
first byte in host memory is the lowest byte of the wider side (little-endian).
"""
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BeatsToWords", "WordsToBeats", "word_ratio"]


def word_ratio(word_width, beat_width):
    """``(beats per word, words per beat)`` of ``word_width``-bit words on a
    ``beat_width``-bit bus: ``(r, 1)`` for words of ``r`` beats, ``(1, p)`` for words of
    ``1/p`` beat, ``r`` and ``p`` powers of two (the arguments of the converters below).
    Raises ``ValueError`` for any other width."""
    wide = word_width >= beat_width
    big, small = (word_width, beat_width) if wide else (beat_width, word_width)
    ratio = big // small if small > 0 else 0
    if small <= 0 or big % small or ratio & (ratio - 1):
        raise ValueError(f"{word_width} bits is not a power-of-two multiple or fraction of "
                         f"the {beat_width}-bit bus")
    return (ratio, 1) if wide else (1, ratio)


def _check(beat_width, ratio, words_per_beat):
    for name, value in (("beat_width", beat_width), ("ratio", ratio),
                        ("words_per_beat", words_per_beat)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    if ratio > 1 and words_per_beat > 1:
        raise ValueError(f"ratio {ratio} (beats per word) and words_per_beat "
                         f"{words_per_beat} exclude each other: one side is the wider")
    if beat_width % words_per_beat:
        raise ValueError(f"words_per_beat {words_per_beat} does not divide the "
                         f"{beat_width}-bit beat")


class BeatsToWords(wiring.Component):
    """Bus beats -> buffer words.

    ``ratio`` > 1 (words wider than beats): gathers ``ratio`` consecutive beats into one
    word, the first beat in the low bits. ``i``: stream of ``{data: beat_width, last}``;
    ``o``: stream of ``{data: beat_width * ratio, last}``, ``last`` taken from the word's final
    beat. A word leaves one cycle after its final beat arrives (the last beat is registered
    too, so ``i.ready`` never depends on ``o.ready`` combinationally).

    ``words_per_beat`` = ``p`` > 1 (words narrower than beats, packed): splits each beat into
    up to ``p`` words of ``beat_width / p`` bits, low bits first. ``i``: stream of
    ``{data: beat_width, last, words}`` where ``words`` (1 .. ``p``) says how many of the
    beat's words are meant (the final beat of a block that is not a whole number of beats
    carries fewer; its other words are dropped, as are words of a beat that carries one row
    of a strided region); ``o``: stream of ``{data: beat_width / p, last}``, ``last`` on the
    final word of a beat whose ``last`` is set. The beat is registered: its first word leaves
    the cycle after it arrives, then one word per cycle while ``o.ready``; the next beat is
    taken in the cycle the current one's final word leaves, so words flow every cycle.

    Both 1: a plain wire.
    """

    def __init__(self, beat_width, ratio=1, *, words_per_beat=1):
        _check(beat_width, ratio, words_per_beat)
        self.beat_width, self.ratio, self.words_per_beat = beat_width, ratio, words_per_beat
        self.word_width = beat_width * ratio // words_per_beat
        beat = {"data": beat_width, "last": 1}
        if words_per_beat > 1:
            beat["words"] = range(words_per_beat + 1)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout(beat))),
            "o": Out(stream.Signature(data.StructLayout({"data": self.word_width,
                                                         "last": 1}))),
        })

    def elaborate(self, platform):
        m = Module()
        if self.words_per_beat > 1:
            self._split(m)
        elif self.ratio > 1:
            self._gather(m)
        else:
            m.d.comb += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload),
                         self.i.ready.eq(self.o.ready)]
        return m

    def _gather(self, m):
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

    def _split(self, m):
        width = self.word_width
        held = Signal(self.beat_width)           # the beat, shifted down a word per word out
        left = Signal(range(self.words_per_beat + 1))   # words of it still to send
        last = Signal()
        final = left == 1
        m.d.comb += [
            self.o.valid.eq(left != 0),
            self.o.payload.data.eq(held[:width]),
            self.o.payload.last.eq(last & final),
            self.i.ready.eq((left == 0) | (final & self.o.ready)),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [held.eq(held[width:]), left.eq(left - 1)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [held.eq(self.i.payload.data), left.eq(self.i.payload.words),
                         last.eq(self.i.payload.last)]


class WordsToBeats(wiring.Component):
    """Buffer words -> bus beats.

    ``ratio`` > 1 (words wider than beats): splits each word into ``ratio`` beats, low bits
    first; ``last`` on the final beat of a word whose ``last`` is set. ``i``: stream of
    ``{data: beat_width * ratio, last}``; ``o``: stream of ``{data: beat_width, last}``. One
    beat per cycle while ``o.ready``; a new word is taken in the cycle its predecessor's final
    beat leaves.

    ``words_per_beat`` = ``p`` > 1 (words narrower than beats, packed): gathers ``p``
    consecutive words of ``beat_width / p`` bits into a beat, the first word in the low bits.
    A word with ``last`` set closes its beat early: a block that is not a whole number of
    beats ends in a partial beat whose missing words are zero (writers that must not touch
    those bytes keep their blocks whole beats, as the store unit does). ``i``: stream of
    ``{data: beat_width / p, last}``; ``o``: stream of ``{data: beat_width, last}``. A beat
    leaves one cycle after its final word arrives; words are taken every cycle while the
    output is empty or leaving.

    Both 1: a plain wire.
    """

    def __init__(self, beat_width, ratio=1, *, words_per_beat=1):
        _check(beat_width, ratio, words_per_beat)
        self.beat_width, self.ratio, self.words_per_beat = beat_width, ratio, words_per_beat
        self.word_width = beat_width * ratio // words_per_beat
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"data": self.word_width,
                                                        "last": 1}))),
            "o": Out(stream.Signature(data.StructLayout({"data": beat_width, "last": 1}))),
        })

    def elaborate(self, platform):
        m = Module()
        if self.words_per_beat > 1:
            self._pack(m)
        elif self.ratio > 1:
            self._serialise(m)
        else:
            m.d.comb += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload),
                         self.i.ready.eq(self.o.ready)]
        return m

    def _serialise(self, m):
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

    def _pack(self, m):
        width, words = self.word_width, self.words_per_beat
        count = Signal(range(words))
        full = Signal()
        m.d.comb += [self.i.ready.eq(~full | self.o.ready), self.o.valid.eq(full)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += full.eq(0)
        with m.If(self.i.valid & self.i.ready):
            word = self.i.payload.data
            with m.If(count == 0):          # a new beat: clear the words not yet written
                m.d.sync += self.o.payload.data.eq(word)
            for n in range(1, words):
                with m.If(count == n):
                    m.d.sync += self.o.payload.data[n * width:(n + 1) * width].eq(word)
            closes = (count == words - 1) | self.i.payload.last
            with m.If(closes):
                m.d.sync += [count.eq(0), full.eq(1),
                             self.o.payload.last.eq(self.i.payload.last)]
            with m.Else():
                m.d.sync += count.eq(count + 1)
