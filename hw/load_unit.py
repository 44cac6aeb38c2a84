"""LOAD: host memory -> on-chip buffers, one 2-D DMA read per command."""
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .dma_reader import dma_command_layout
from .width_converter import BeatsToWords, word_ratio

__all__ = ["LoadUnit"]


class LoadUnit(wiring.Component):
    """Copies ``count`` rows of host memory into words ``0 .. count-1`` of a buffer slot.

    ``targets`` maps each buffer's name to its word width in bits: a power-of-two multiple
    or a power-of-two fraction of the bus width. The beats go to the DMA reader as a command
    on ``dma_cmd`` and come back on ``dma_data`` (the reader may be shared with other users;
    the arbitration is outside).

    * Words of ``r >= 1`` beats: ``count`` host rows of ``r`` beats, row ``n`` at
      ``addr + n * pitch`` (one word each).
    * Words of ``1/p`` beat, *packed* (``pitch`` equals the word size in bytes): the ``count``
      words lie back to back from ``addr``; they are read as one block of
      ``ceil(count / p)`` beats, ``p`` words a beat, low bytes first; the words of the final
      beat past ``count`` are read but dropped.
    * Words of ``1/p`` beat, strided (any other ``pitch``, a multiple of the beat): one beat
      per row at ``addr + n * pitch``, its low word used.

    A target given as ``(row_width, word_width)`` is written *lane by lane*: each host row of
    ``row_width`` bits (whole beats, row ``n`` at ``addr + n * pitch``) becomes
    ``row_width / word_width`` consecutive words, low bits first, so ``count`` rows fill
    words ``0 .. count * row_width / word_width - 1``; ``word_width`` is the beat or a
    power-of-two fraction of it. (The parameter buffer of builds with one shared bit-serial
    requantiser, which takes a column's parameters at a time: no gather register, and a
    32-bit-wide block RAM instead of a row-wide one.)

    (Address and pitch rules and the DMA window are the sequencer's checks.) Buffers take a
    word every cycle, so the write ports have no backpressure: a packed block fills the
    buffer at one word per cycle, and the bus is held to one beat every ``p`` cycles. One
    command at a time; ``busy`` while one runs.

    Ports
    -----
    cmd : In(stream of ``{target, slot, addr, pitch, count}``)
    dma_cmd : Out(stream of :func:`~hw.dma_reader.dma_command_layout`)
    dma_data : In(stream of ``{data: beat_width, last}``)
    write_<target> : Out(``{valid, slot, index, data}``) per target
    busy : Out(1)
    """

    def __init__(self, *, beat_width, addr_width, targets, slots=2):
        targets = dict(targets)
        self.ratios = {}
        #: lane-by-lane targets: name -> (beats per host row, words per beat)
        self.lane_targets = {}
        for name, width in list(targets.items()):
            row_width, word_width = width if isinstance(width, tuple) else (width, width)
            try:
                self.ratios[name] = word_ratio(row_width, beat_width)
                if row_width != word_width:
                    row_beats, per_beat = self.ratios[name]
                    lane_beats, lanes_per_beat = word_ratio(word_width, beat_width)
                    if per_beat != 1 or lane_beats != 1:
                        raise ValueError(f"lane by lane needs rows of whole beats and words "
                                         f"of at most a beat, not {row_width} and "
                                         f"{word_width} bits on the {beat_width}-bit bus")
                    self.lane_targets[name] = (row_beats, lanes_per_beat)
            except ValueError as error:
                raise ValueError(f"target {name!r}: {error}") from None
            targets[name] = word_width
        self.beat_width, self.addr_width, self.targets = beat_width, addr_width, targets
        self.slots = slots
        members = {
            "cmd": In(stream.Signature(data.StructLayout({
                "target": range(len(targets)), "slot": range(slots), "addr": addr_width,
                "pitch": addr_width, "count": 16}))),
            "dma_cmd": Out(stream.Signature(dma_command_layout(addr_width))),
            "dma_data": In(stream.Signature(data.StructLayout({"data": beat_width,
                                                               "last": 1}))),
            "busy": Out(1),
        }
        for name, width in targets.items():
            members[f"write_{name}"] = Out(data.StructLayout({
                "valid": 1, "slot": range(slots), "index": 16, "data": width}))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cmd = self.cmd
        target = Signal.like(cmd.payload.target)
        slot = Signal.like(cmd.payload.slot)
        count = Signal(16)
        packed = Signal()           # narrow words back to back: several per beat
        index = Signal(16)
        pending = Signal()          # command taken, DMA command not yet accepted
        streaming = Signal()        # DMA data still to come

        m.d.comb += [cmd.ready.eq(~pending & ~streaming), self.busy.eq(pending | streaming)]
        with m.If(cmd.valid & cmd.ready):
            p = cmd.payload
            m.d.sync += [target.eq(p.target), slot.eq(p.slot), count.eq(p.count),
                         index.eq(0), pending.eq(1),
                         self.dma_cmd.payload.addr.eq(p.addr),
                         self.dma_cmd.payload.pitch.eq(p.pitch),
                         self.dma_cmd.payload.rows.eq(p.count), packed.eq(0)]
            with m.Switch(p.target):
                for n, (name, width) in enumerate(self.targets.items()):
                    beats, words = self.ratios[name]
                    with m.Case(n):
                        if name in self.lane_targets:
                            m.d.sync += self.dma_cmd.payload.row_beats.eq(beats)
                        elif words == 1:
                            m.d.sync += self.dma_cmd.payload.row_beats.eq(beats)
                        else:
                            is_packed = p.pitch == width // 8
                            shift = words.bit_length() - 1
                            m.d.sync += [
                                packed.eq(is_packed),
                                self.dma_cmd.payload.rows.eq(Mux(is_packed, 1, p.count)),
                                self.dma_cmd.payload.row_beats.eq(Mux(
                                    is_packed, (p.count + words - 1) >> shift, 1)),
                            ]
        m.d.comb += self.dma_cmd.valid.eq(pending)
        with m.If(self.dma_cmd.valid & self.dma_cmd.ready):
            m.d.sync += [pending.eq(0), streaming.eq(1)]

        for n, name in enumerate(self.targets):
            beats, words = self.ratios[name]
            lanes = name in self.lane_targets
            if lanes:           # every beat split into its words (none gathered)
                beats, words = 1, self.lane_targets[name][1]
            gather = BeatsToWords(self.beat_width, beats, words_per_beat=words)
            m.submodules[f"gather_{name}"] = gather
            selected = streaming & (target == n)
            port = getattr(self, f"write_{name}")
            m.d.comb += [
                gather.i.valid.eq(self.dma_data.valid & selected),
                gather.i.payload.data.eq(self.dma_data.payload.data),
                gather.i.payload.last.eq(self.dma_data.payload.last),
                gather.o.ready.eq(1),
                port.valid.eq(gather.o.valid),
                port.slot.eq(slot), port.index.eq(index), port.data.eq(gather.o.payload.data),
            ]
            if words > 1 and lanes:
                m.d.comb += gather.i.payload.words.eq(words)
            elif words > 1:
                # words meant in this beat: all, but fewer in a packed block's final beat
                tail = ((count - 1) & (words - 1)) + 1
                m.d.comb += gather.i.payload.words.eq(
                    Mux(packed, Mux(self.dma_data.payload.last, tail, words), 1))
            with m.If(selected):
                m.d.comb += self.dma_data.ready.eq(gather.i.ready)
            with m.If(gather.o.valid):
                m.d.sync += index.eq(index + 1)
                with m.If(gather.o.payload.last):
                    m.d.sync += streaming.eq(0)
        return m
