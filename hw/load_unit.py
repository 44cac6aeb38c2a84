"""LOAD: host memory -> on-chip buffers, one 2-D DMA read per command."""
from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .dma_reader import dma_command_layout
from .width_converter import BeatsToWords

__all__ = ["LoadUnit"]


class LoadUnit(wiring.Component):
    """Copies ``count`` rows of host memory into words ``0 .. count-1`` of a buffer slot.

    ``targets`` maps each buffer's name to its word width in bits (a power-of-two multiple of
    the bus width): one host row fills one word, so a command reads ``count`` rows of
    ``word_width / beat_width`` beats, row ``n`` at ``addr + n * pitch``. The beats go to the
    DMA reader as a command on ``dma_cmd`` and come back on ``dma_data`` (the reader may be
    shared with other users; the arbitration is outside). Buffers take a word every cycle, so
    the write ports have no backpressure. One command at a time; ``busy`` while one runs.

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
        for name, width in targets.items():
            ratio = width // beat_width
            if width % beat_width or ratio & (ratio - 1):
                raise ValueError(f"target {name!r}: word width {width} must be a power-of-two "
                                 f"multiple of the {beat_width}-bit bus")
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
        index = Signal(16)
        pending = Signal()          # command taken, DMA command not yet accepted
        streaming = Signal()        # DMA data still to come

        m.d.comb += [cmd.ready.eq(~pending & ~streaming), self.busy.eq(pending | streaming)]
        with m.If(cmd.valid & cmd.ready):
            m.d.sync += [target.eq(cmd.payload.target), slot.eq(cmd.payload.slot),
                         index.eq(0), pending.eq(1),
                         self.dma_cmd.payload.addr.eq(cmd.payload.addr),
                         self.dma_cmd.payload.pitch.eq(cmd.payload.pitch),
                         self.dma_cmd.payload.rows.eq(cmd.payload.count)]
            with m.Switch(cmd.payload.target):
                for n, width in enumerate(self.targets.values()):
                    with m.Case(n):
                        m.d.sync += self.dma_cmd.payload.row_beats.eq(width // self.beat_width)
        m.d.comb += self.dma_cmd.valid.eq(pending)
        with m.If(self.dma_cmd.valid & self.dma_cmd.ready):
            m.d.sync += [pending.eq(0), streaming.eq(1)]

        for n, (name, width) in enumerate(self.targets.items()):
            gather = BeatsToWords(self.beat_width, width // self.beat_width)
            m.submodules[f"gather_{name}"] = gather
            selected = streaming & (target == n)
            port = getattr(self, f"write_{name}")
            m.d.comb += [
                gather.i.valid.eq(self.dma_data.valid & selected),
                gather.i.payload.eq(self.dma_data.payload),
                gather.o.ready.eq(1),
                port.valid.eq(gather.o.valid),
                port.slot.eq(slot), port.index.eq(index), port.data.eq(gather.o.payload.data),
            ]
            with m.If(selected):
                m.d.comb += self.dma_data.ready.eq(gather.i.ready)
            with m.If(gather.o.valid):
                m.d.sync += index.eq(index + 1)
                with m.If(gather.o.payload.last):
                    m.d.sync += streaming.eq(0)
        return m
