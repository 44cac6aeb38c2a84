"""Bus beats -> descriptors, keeping only the bits their user reads."""
from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .isa import DESCRIPTOR_BYTES

__all__ = ["DescriptorGather"]


class DescriptorGather(wiring.Component):
    """Gathers the ``256 / beat_width`` beats of a descriptor (the first in the low bits),
    keeping only the bits listed in ``kept``; every other bit of ``o`` is 0.

    ``kept``: ``(bit, width, low)`` fields of the 256-bit descriptor. The field's ``low``
    least significant bits are kept as they are; its bit ``low`` becomes whether any of
    its bits ``low`` and up is set (``low >= width``: the whole field is kept). The kept
    value is then the field's if that is below ``2**low``, else ``2**low`` plus its low
    bits: its low bits, whether it is zero and how it compares with a constant below
    ``2**low`` are the field's. A field's bits above ``low`` may come in several beats.
    Fields must not overlap.

    ``i``: stream of ``{data: beat_width}``; ``o``: stream of ``{data: 256}``, valid from
    the cycle after a descriptor's final beat until ``o.ready`` takes it (no further beat
    is taken meanwhile, except in the cycle it is taken). On a 32-bit bus whose user reads
    the descriptor's fields, pitch and address in ``addr_width`` bits, that is ~75
    flip-flops instead of 256 (on the iCE40 each loaded straight from the bus takes a
    logic cell of its own).

    With ``ready_registered``, ``i.ready`` is ``not o.valid`` alone, a register: no beat is
    taken in the cycle ``o`` is taken either, so a descriptor's first beat comes a cycle
    later, and nothing of what decides ``o.ready`` reaches ``i.ready`` (for the sequencer
    on a 32-bit bus: its dispatch decision stays off the descriptor queue's read enable,
    the UP5K's clock).
    """

    def __init__(self, beat_width, kept, *, ready_registered=False):
        width = 8 * DESCRIPTOR_BYTES
        if beat_width not in (8, 16, 32, 64, 128, 256):
            raise ValueError(f"beat_width must be a power of two from 8 to 256, not "
                             f"{beat_width!r}")
        used = set()
        for bit, field_width, low in kept:
            bits = set(range(bit, bit + field_width))
            if bits & used or not 0 <= bit < bit + field_width <= width or low < 1:
                raise ValueError(f"kept field {(bit, field_width, low)} overlaps another, "
                                 f"leaves the descriptor or keeps no bits")
            used |= bits
        self.beat_width, self.kept = beat_width, tuple(kept)
        self.ready_registered = bool(ready_registered)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"data": beat_width}))),
            "o": Out(stream.Signature(data.StructLayout({"data": width}))),
        })

    def elaborate(self, platform):
        m = Module()
        width, beat = 8 * DESCRIPTOR_BYTES, self.beat_width
        beats = width // beat
        out = self.o.payload.data
        count = Signal(range(beats))
        full = Signal()
        m.d.comb += [self.i.ready.eq(~full if self.ready_registered else ~full | self.o.ready),
                     self.o.valid.eq(full)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += full.eq(0)
        with m.If(self.i.valid & self.i.ready):
            for n in range(beats):
                with m.If(count == n):
                    self._take(m, out, n * beat, self.i.payload.data)
            with m.If(count == beats - 1):
                m.d.sync += [count.eq(0), full.eq(1)]
            with m.Else():
                m.d.sync += count.eq(count + 1)
        return m

    def _take(self, m, out, first, beat):
        """The kept bits of the beat holding descriptor bits ``[first, first + width)``."""
        end = first + len(beat)
        for bit, field_width, low in self.kept:
            low = min(low, field_width)
            # bits kept as they are
            lo, hi = max(bit, first), min(bit + low, end)
            if lo < hi:
                m.d.sync += out[lo:hi].eq(beat[lo - first:hi - first])
            # the high bits' flag, at bit + low: set by the beat holding the first of them,
            # ORed in by later ones
            lo, hi = max(bit + low, first), min(bit + field_width, end)
            if lo < hi:
                flag = out[bit + low]
                seen = beat[lo - first:hi - first].any()
                m.d.sync += flag.eq(seen if lo == bit + low else flag | seen)
