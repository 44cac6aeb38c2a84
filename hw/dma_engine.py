"""What the AXI4 DMA reader and writer share: parameters, commands, bursts, watchdog."""
from amaranth.hdl import Cat, Const, Mux, Signal
from amaranth.lib import data, wiring

from .bit_ops import at_least

__all__ = ["PAGE", "dma_command_layout", "DmaEngine"]

#: AXI: no burst may cross a 4 KiB boundary.
PAGE = 4096


def dma_command_layout(addr_width):
    """A 2-D transfer: ``rows`` rows of ``row_beats`` bus beats, row ``r`` starting at
    ``addr + r * pitch`` (bytes). ``addr`` must be a multiple of the bus width in bytes, and
    so must ``pitch`` when ``rows > 1`` (one row, e.g. a packed block, never uses it);
    ``rows``, ``row_beats`` at least 1: the sequencer checks this (and the DMA window)
    before it issues a command."""
    return data.StructLayout({
        "addr": addr_width, "pitch": addr_width, "rows": 16, "row_beats": 16,
    })


def _check(name, value, allowed):
    if not isinstance(value, int) or isinstance(value, bool) or value not in allowed:
        raise ValueError(f"{name} must be one of {allowed!r}, not {value!r}")


class DmaEngine(wiring.Component):
    """Base of :class:`~hw.dma_reader.DmaReader` and :class:`~hw.dma_writer.DmaWriter`.

    Checks and keeps the parameters (``data_width`` 32/64/128/256, ``addr_width`` 12..64,
    ``max_burst`` 1..256 beats, ``max_outstanding`` 1..16 bursts, ``timeout`` cycles) and
    provides the burst splitter and the watchdog both engines use.
    """

    def __init__(self, members, *, data_width, addr_width, max_burst, max_outstanding,
                 timeout):
        _check("data_width", data_width, (32, 64, 128, 256))
        if (not isinstance(addr_width, int) or isinstance(addr_width, bool)
                or not 12 <= addr_width <= 64):
            raise ValueError(f"addr_width must be an integer from 12 (a 4 KiB page) to 64, "
                             f"not {addr_width!r}")
        _check("max_burst", max_burst, range(1, 257))
        _check("max_outstanding", max_outstanding, range(1, 17))
        _check("timeout", timeout, range(16, 1 << 24))
        self.data_width = data_width
        self.addr_width = addr_width
        self.max_burst = max_burst
        self.max_outstanding = max_outstanding
        self.timeout_cycles = timeout
        self.beat_bytes = data_width // 8
        super().__init__(members)

    @property
    def _shift(self):
        """log2 of the beat size in bytes (AXI ``size``)."""
        return self.beat_bytes.bit_length() - 1

    def _requests(self, m, start, done):
        """The address side of a command, shared by both engines: with ``start`` it takes
        ``cmd.payload``; each ``done`` (an address handshake) moves on by one burst. Returns
        the burst's byte address and beats, whether bursts are left to request, and whether
        the next one may be requested now.

        Addresses and the pitch are kept in beats: a command's are multiples of the beat.
        A row's bursts run from ``row_addr`` (where the row starts) up; the row after starts
        ``pitch`` further on.

        A command's first burst is requested three cycles after ``start`` at the earliest,
        not one: its length is worked out from the registers ``start`` loads, never from
        ``cmd.payload``, so the logic that arbitrates and drives ``cmd`` (the sequencer's
        fetch against LOAD on the reader) stays off the page and row compares. That was the
        UP5K's critical path, 47 ns. The cycle model counts the cycles
        (``Timing.dma_setup``).

        With one burst in flight (``max_outstanding == 1``, the boards) the next burst's
        length is worked out over the two cycles after the address moves (:meth:`_burst`,
        a register stage between its compares and its choice) and held in registers, so
        the page and row compares stay off the handshake's paths too. That burst may be
        requested two cycles later, while the one in flight still has data or a response
        to come, so no cycle is lost. With more bursts in flight the length is worked out
        as the address moves, and the first burst waits as long, so that both kinds of
        engine request the same bursts in the same cycles."""
        aw = self.addr_width - self._shift
        pitch, row_addr, addr = Signal(aw), Signal(aw), Signal(aw)
        row_beats = Signal(16)
        rows = Signal(16)             # rows still to request, including the current one
        beats = Signal(16)            # beats of the current row still to request
        p = self.cmd.payload
        with m.If(start):
            m.d.sync += [pitch.eq(p.pitch[self._shift:]), row_beats.eq(p.row_beats),
                         row_addr.eq(p.addr[self._shift:]), addr.eq(p.addr[self._shift:]),
                         rows.eq(p.rows), beats.eq(p.row_beats)]
        settled = Signal()              # ``burst`` and ``row_end`` describe addr and beats
        half = Signal()                 # the first of the two cycles that takes
        if self.max_outstanding == 1:
            next_burst, next_row_end = self._burst(m, addr, beats, registered=True)
            burst, row_end = Signal.like(next_burst), Signal()
            more = Signal()             # rows != 0
            m.d.sync += [burst.eq(next_burst), row_end.eq(next_row_end),
                         half.eq(~start & ~done), settled.eq(half & ~start & ~done)]
            with m.If(start):
                m.d.sync += more.eq(p.rows != 0)
            with m.Elif(done & row_end):
                m.d.sync += more.eq(rows != 1)
        else:
            burst, row_end = self._burst(m, addr, beats)
            more = rows != 0
            m.d.sync += [half.eq(~start), settled.eq(half & ~start)]
        with m.If(done):
            with m.If(row_end):                      # the row is fully requested
                m.d.sync += [rows.eq(rows - 1), beats.eq(row_beats),
                             row_addr.eq(row_addr + pitch), addr.eq(row_addr + pitch)]
            with m.Else():
                m.d.sync += [beats.eq(beats - burst), addr.eq(addr + burst)]
        return Cat(Const(0, self._shift), addr), burst, more, more & settled

    def _burst(self, m, addr, beats_left, registered=False):
        """The next burst from ``addr`` (in beats): its beats (the rest of the row,
        ``beats_left``, at most ``max_burst`` and never past the next 4 KiB boundary) and
        whether they are the rest of the row. ``registered``: the compares go through a
        register before the choice (the result a cycle later).

        The page's limit and the row's end are worked out side by side, each with one adder
        and compares against constants, not one after the other (subtract, compare, then
        compare with the difference: three carry chains in a row were the UP5K's critical
        path once the command came from registers)."""
        page_beats = PAGE // self.beat_bytes
        offset = addr[:12 - self._shift]             # beats into the 4 KiB page
        cap = min(self.max_burst, page_beats)
        to_page = Signal(range(page_beats + 1))
        m.d.comb += to_page.eq(page_beats - offset)
        # to_page < max_burst, i.e. offset > page_beats - max_burst: the page ends first
        page_first = Signal()
        m.d.comb += page_first.eq(at_least(offset, page_beats - self.max_burst + 1))
        # beats_left <= longest: within a burst, and offset + beats_left within the page
        # (that sum only matters when the first holds, so it takes beats_left's low bits)
        low = Signal(range(cap + 1))
        m.d.comb += low.eq(beats_left)
        reach = Signal(max(len(offset), self.max_burst.bit_length()) + 1)
        m.d.comb += reach.eq(offset + beats_left[:self.max_burst.bit_length()])
        fits = Signal()
        m.d.comb += fits.eq(~at_least(beats_left, self.max_burst + 1)
                            & ~at_least(reach, page_beats + 1))
        if registered:
            facts = (to_page, page_first, low, fits)
            held = [Signal.like(fact, name=f"{fact.name}_q") for fact in facts]
            m.d.sync += [q.eq(fact) for q, fact in zip(held, facts, strict=True)]
            to_page, page_first, low, fits = held
        longest = Signal(range(cap + 1))             # from addr
        m.d.comb += longest.eq(Mux(page_first, to_page, cap))
        burst = Signal.like(longest)
        m.d.comb += burst.eq(Mux(fits, low, longest))
        return burst, fits

    def _watchdog(self, m, active, progress):
        """Set the sticky ``timeout`` after ``timeout`` cycles of ``active`` without
        ``progress``. The restart condition is registered (the handshakes that make
        ``progress`` stay off the counter's paths) and the limit one lower: the same
        cycle."""
        idle = Signal(range(self.timeout_cycles + 1))
        quiet = Signal()
        m.d.sync += quiet.eq(~active | progress)
        with m.If(quiet):
            m.d.sync += idle.eq(0)
        with m.Elif(idle == self.timeout_cycles - 1):
            m.d.sync += self.timeout.eq(1)
        with m.Else():
            m.d.sync += idle.eq(idle + 1)
