"""Block RAM whose same-address read-during-write is a don't-care, and a FIFO built on it.

Amaranth's :class:`~amaranth.lib.memory.Memory` promises that a read port which is not
transparent for a write port returns the *old* word when both use the same address in the
same cycle. FPGA block RAMs (iCE40 ``SB_RAM40_4K``, ECP5 ``DP16KD`` in some modes) do not, so
yosys builds that promise in logic: a register of the write data, an address compare and a
multiplexer on every read bit. On the iCE40UP5K that was ~2 flip-flops and ~1 LUT4 per bit
of every queue and buffer in Loom (~1,400 flip-flops in the system, counted per block).

:func:`block_ram` returns a memory with yosys's ``no_rw_check`` attribute: a same-address
read in a write cycle returns undefined data on the FPGA (simulation still returns the old
word). Use it only where such a read never happens or its data is never used, and say why
at the call site. :class:`BlockRamFifo` is one such use.
"""
from amaranth.hdl import Elaboratable, Module, Mux, Signal
from amaranth.lib.fifo import FIFOInterface
from amaranth.lib.memory import Memory

__all__ = ["BlockRamFifo", "block_ram"]


def block_ram(*, shape, depth, init=(), style=None):
    """A :class:`~amaranth.lib.memory.Memory` of ``depth`` words of ``shape`` (initially
    ``init``, then zeros), whose read data is undefined on the FPGA when its address is
    written in the same cycle (see the module docstring). ``style="block"`` asks yosys for
    block RAM even where it would build a memory this shallow from flip-flops."""
    if style not in (None, "block"):
        raise ValueError(f"style must be None or 'block', not {style!r}")
    attrs = {"no_rw_check": 1, **({"ram_style": "block"} if style else {})}
    return Memory(shape=shape, depth=depth, init=list(init), attrs=attrs)


class BlockRamFifo(Elaboratable, FIFOInterface):
    """First in, first out queue in block RAM: :class:`~amaranth.lib.fifo.SyncFIFOBuffered`'s
    ports, timing and ``level``, without the read-during-write logic around the RAM.

    ``depth - 1`` words live in a :func:`block_ram` and one in the RAM's read register, which
    is the output (``r_data``); a word written to an empty queue is readable two cycles
    later. The RAM reads address ``consume`` only while it holds an unread word, and a write
    to ``produce == consume`` happens only when the RAM holds none (with all ``depth - 1``
    words unread, ``w_rdy`` is low), so no read that is used ever meets a write to its
    address.

    Parameters
    ----------
    width : int
        Bits per word.
    depth : int
        Words, at least 2.

    Attributes
    ----------
    level : Signal(range(depth + 1)), out
        Words in the queue (the RAM's and the output register's).
    """

    def __init__(self, *, width, depth):
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 2:
            raise ValueError(f"depth must be an integer of at least 2, not {depth!r}")
        super().__init__(width=width, depth=depth)
        self.level = Signal(range(depth + 1))

    def elaborate(self, platform):
        m = Module()
        inner_depth = self.depth - 1
        inner_level = Signal(range(inner_depth + 1))
        produce = Signal(range(inner_depth))
        consume = Signal(range(inner_depth))
        m.submodules.storage = storage = block_ram(shape=self.width, depth=inner_depth)
        w_port, r_port = storage.write_port(), storage.read_port()
        self._ports = w_port, r_port      # for the test that no used read meets a write

        do_write = self.w_rdy & self.w_en
        # move a word from the RAM to the output register when that is empty or being read
        do_inner_read = (inner_level != 0) & (~self.r_rdy | self.r_en)

        def advance(pointer):
            if inner_depth & (inner_depth - 1) == 0:
                return pointer + 1              # wraps by truncation
            return Mux(pointer == inner_depth - 1, 0, pointer + 1)

        m.d.comb += [
            self.w_rdy.eq(inner_level != inner_depth),
            w_port.addr.eq(produce), w_port.data.eq(self.w_data), w_port.en.eq(do_write),
            r_port.addr.eq(consume), r_port.en.eq(do_inner_read), self.r_data.eq(r_port.data),
            self.level.eq(inner_level + self.r_rdy),
            self.w_level.eq(self.level), self.r_level.eq(self.level),
        ]
        with m.If(do_write):
            m.d.sync += produce.eq(advance(produce))
        with m.If(do_inner_read):
            m.d.sync += [consume.eq(advance(consume)), self.r_rdy.eq(1)]
        with m.Elif(self.r_en):
            m.d.sync += self.r_rdy.eq(0)
        with m.If(do_write & ~do_inner_read):
            m.d.sync += inner_level.eq(inner_level + 1)
        with m.If(do_inner_read & ~do_write):
            m.d.sync += inner_level.eq(inner_level - 1)
        return m
