"""Double-buffered on-chip store of operand words, read out as a stream for the array."""
from amaranth.hdl import Array, Const, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .block_ram import block_ram
from .ecp5_block_ram import Ecp5OutregRam
from .platforms import is_ecp5

__all__ = ["OperandBuffer"]


class OperandBuffer(wiring.Component):
    """``slots`` slots of ``depth`` words of ``width`` bits, in one block RAM.

    One slot is filled through ``write`` while another streams out through ``read``:
    double buffering with the default two slots. A read command names a slot and a word
    count ``count`` (the tile's ``K``, 1 to ``depth``); words ``0 .. count-1`` of that slot
    then leave on ``words``, one per cycle while ``words.ready`` is high, the last one marked
    ``last``. The RAM's own read register is the output register: a stall holds the word,
    so no beat is lost or repeated and no skid buffer is needed.

    With ``output_register=True`` a second register follows the RAM's: the RAM's slow
    clock-to-output then ends in a register instead of in the logic the words feed (the
    array's operand inputs, on the ECP5 critical path without it). Both registers hold on a
    stall; the first word comes one cycle later. Elaborated for an ECP5 (up to 1,024 words)
    that register is the DP16KD blocks' own output register (``OUTREG``,
    :class:`~hw.ecp5_block_ram.Ecp5OutregRam`, instanced by hand: yosys maps block RAMs
    without it and leaves the register in the fabric, where it was placed up to 23 tiles
    from its block, after the block's 5.8 ns clock-to-output).

    ``read_domain``: the clock domain of the read side (``read``, ``words``, the RAM's read
    port); writes are in ``sync``. A block RAM with one port per clock is the crossing: a
    slot is written in one domain and read in the other, never both at once (below).

    Writes and reads of *different* slots never interfere; writing the slot being read is
    the sequencer's mistake to avoid (its dependency flags do), not something this buffer
    arbitrates.

    Ports
    -----
    write : In(``{slot, index, data}`` with a ``valid`` strobe; no backpressure)
    read : In(stream of ``{slot, count}``); ``ready`` while no read command is running
    words : Out(stream of ``{data: width bits, last: 1}``)
    """

    #: Further fields of the ``write`` port (subclasses with other write behaviour add some).
    _extra_write_fields = {}

    def __init__(self, *, width, depth, slots=2, output_register=False, read_domain="sync"):
        for name, value, low in (("width", width, 1), ("depth", depth, 1), ("slots", slots, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if not isinstance(output_register, bool):
            raise ValueError(f"output_register must be True or False, not {output_register!r}")
        self.output_register = output_register
        if not isinstance(read_domain, str):
            raise TypeError(f"read_domain must be a clock domain name, not {read_domain!r}")
        self.read_domain = read_domain
        self.width, self.depth, self.slots = width, depth, slots
        slot_shape = range(slots)
        super().__init__({
            "write": In(data.StructLayout({
                "valid": 1, "slot": slot_shape, "index": range(depth), "data": width,
                **self._extra_write_fields})),
            "read": In(stream.Signature(data.StructLayout({
                "slot": slot_shape, "count": range(depth + 1)}))),
            "words": Out(stream.Signature(data.StructLayout({"data": width, "last": 1}))),
        })

    def elaborate(self, platform):
        m = Module()
        words = self.slots * self.depth
        if self.output_register and is_ecp5(platform) and words <= 1024:
            # the output register inside the DP16KD blocks (yosys leaves it in the fabric,
            # after the blocks' 5.8 ns clock-to-output: hw/ecp5_block_ram.py)
            m.submodules.ram = ram = Ecp5OutregRam(width=self.width, depth=words,
                                                   read_domain=self.read_domain)
            m.d.comb += [ram.w_addr.eq(self._slot_base(self.write.slot) + self.write.index),
                         ram.w_data.eq(self.write.data), ram.w_en.eq(self.write.valid)]
            self._read_path(m, _OutregReadPort(ram))
            return m
        # block_ram: a read of the slot being written is the sequencer's mistake (above),
        # and a read while no read command runs is never used
        m.submodules.ram = ram = block_ram(shape=self.width, depth=words)
        self._write_path(m, ram, platform)
        self._read_path(m, ram.read_port(domain=self.read_domain))
        return m

    def _slot_base(self, slot):
        """The address of ``slot``'s first word, ``slot * depth``: a shift when ``depth`` is
        a power of two, else a choice among the ``slots`` constants. (yosys builds the
        product with a non-power-of-two ``depth`` from a MULT18X18D: the parameter buffer's
        write address, ``depth`` 3, ran through one and was the 16x16 ECP5 system clock's
        critical path, 18.1 ns.)"""
        if self.depth & (self.depth - 1) == 0:
            return slot * self.depth
        return Array(Const(n * self.depth, range(self.slots * self.depth))
                     for n in range(self.slots))[slot]

    def _write_path(self, m, ram, platform):
        wr = ram.write_port()
        m.d.comb += [
            wr.addr.eq(self._slot_base(self.write.slot) + self.write.index),
            wr.data.eq(self.write.data),
            wr.en.eq(self.write.valid),
        ]

    def _read_path(self, m, rd):
        local = m.d[self.read_domain]
        base = Signal(range(self.slots * self.depth + 1))
        index = Signal(range(self.depth + 1))
        # the command's last index (count - 1), held so that the compare in front of
        # ``active`` has no subtraction
        last_index = Signal(range(self.depth + 1))
        active = Signal()          # words still to read
        out_valid = Signal()
        out_last = Signal()
        advance = ~out_valid | self.words.ready
        m.d.comb += [
            # not ``& advance``: a command may start while the words before it wait in the
            # output registers (they hold until taken, and the RAM's address only matters
            # at the next ``advance``), so the stream's ``ready`` never reaches back here
            self.read.ready.eq(~active),
            rd.addr.eq(base + index),
            rd.en.eq(advance),
        ]
        ram_valid, ram_last = out_valid, out_last     # what the RAM's read register holds
        if self.output_register:
            ram_valid, ram_last = Signal(), Signal()
            with m.If(advance):
                local += [out_valid.eq(ram_valid), out_last.eq(ram_last)]
            if isinstance(rd, _OutregReadPort):
                m.d.comb += rd.oe.eq(advance)        # the RAM's own output register
                out_data = rd.data
            else:
                out_data = Signal(self.width, reset_less=True)   # data: out_valid says when
                with m.If(advance):
                    local += out_data.eq(rd.data)
        else:
            out_data = rd.data
        m.d.comb += [
            self.words.valid.eq(out_valid),
            self.words.payload.data.eq(out_data),
            self.words.payload.last.eq(out_last),
        ]
        with m.If(advance):
            local += [ram_valid.eq(active), ram_last.eq(active & (index == last_index))]
            with m.If(active):
                local += index.eq(index + 1)
                with m.If(index == last_index):
                    local += active.eq(0)
        with m.If(self.read.valid & self.read.ready):
            local += [
                base.eq(self._slot_base(self.read.payload.slot)), index.eq(0),
                last_index.eq(self.read.payload.count - 1),
                active.eq(self.read.payload.count != 0),
            ]


class _OutregReadPort:
    """An :class:`~hw.ecp5_block_ram.Ecp5OutregRam`'s read side as :meth:`OperandBuffer.
    _read_path` uses a memory read port (``addr``, ``en``, ``data``), plus ``oe``, the
    output register's enable; ``data`` is that register."""

    def __init__(self, ram):
        self.addr, self.en, self.oe, self.data = ram.r_addr, ram.r_en, ram.r_oe, ram.r_data
