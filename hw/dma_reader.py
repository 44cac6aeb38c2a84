"""AXI4 read DMA: strided 2-D transfers from host memory into a stream of bus-wide beats."""
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .axi import BURST_INCR, RESP_OKAY, AxiSignature

__all__ = ["DmaReader", "dma_command_layout"]

_PAGE = 4096  # AXI: no burst may cross a 4 KiB boundary


def dma_command_layout(addr_width):
    """A 2-D transfer: ``rows`` rows of ``row_beats`` bus beats, row ``r`` starting at
    ``addr + r * pitch`` (bytes). ``addr`` and ``pitch`` must be multiples of the bus width
    in bytes and ``rows``, ``row_beats`` at least 1: the sequencer checks this (and the DMA
    window) before it issues a command."""
    return data.StructLayout({
        "addr": addr_width, "pitch": addr_width, "rows": 16, "row_beats": 16,
    })


def _check(name, value, allowed):
    if not isinstance(value, int) or isinstance(value, bool) or value not in allowed:
        raise ValueError(f"{name} must be one of {allowed!r}, not {value!r}")


class DmaReader(wiring.Component):
    """Reads 2-D regions of host memory over the read half of an AXI4 port.

    Bursts are INCR, full bus width, at most ``max_burst`` beats and never cross a 4 KiB
    boundary. Up to ``max_outstanding`` bursts are in flight at once (addresses run ahead of
    data), all with ID 0 so data returns in order. ``rready`` follows the ``data`` stream's
    ``ready``: the consumer's backpressure reaches the bus, no beat is buffered or dropped.
    One command runs at a time; the next is taken after its last beat.

    Errors never hang it: a beat answered ``SLVERR``/``DECERR`` still counts (its data is
    whatever the bus returned) and sets the sticky ``error``; if neither an address nor a
    data beat moves for ``timeout`` cycles while a command runs, the sticky ``timeout`` is
    set. Both stay set until reset (the accelerator's soft reset).

    Ports
    -----
    cmd : In(stream of :func:`dma_command_layout`)
    data : Out(stream of ``{data: data_width bits, last: 1}``); ``last`` on a command's final
        beat. Beats are in address order, rows one after the other.
    bus : Out(AxiSignature(..., channels="read"))
    busy, error, timeout : Out(1)

    Parameters
    ----------
    data_width : int
        AXI data bus width in bits: 64, 128 or 256.
    addr_width : int
        AXI address width in bits (32 or 64).
    max_burst : int
        Beats per burst, 1 to 256.
    max_outstanding : int
        Bursts in flight, 1 to 16.
    timeout : int
        Watchdog cycles without bus progress before ``timeout`` is raised.
    """

    def __init__(self, *, data_width=128, addr_width=32, max_burst=256, max_outstanding=4,
                 timeout=4096):
        _check("data_width", data_width, (64, 128, 256))
        _check("addr_width", addr_width, (32, 64))
        _check("max_burst", max_burst, range(1, 257))
        _check("max_outstanding", max_outstanding, range(1, 17))
        _check("timeout", timeout, range(16, 1 << 24))
        self.data_width = data_width
        self.addr_width = addr_width
        self.max_burst = max_burst
        self.max_outstanding = max_outstanding
        self.timeout_cycles = timeout
        self.beat_bytes = data_width // 8
        super().__init__({
            "cmd": In(stream.Signature(dma_command_layout(addr_width))),
            "data": Out(stream.Signature(data.StructLayout({"data": data_width, "last": 1}))),
            "bus": Out(AxiSignature(addr_width=addr_width, data_width=data_width,
                                    channels="read")),
            "busy": Out(1),
            "error": Out(1),
            "timeout": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        bus, cmd = self.bus, self.cmd
        shift = self.beat_bytes.bit_length() - 1

        active = Signal()
        pitch = Signal(self.addr_width)
        row_beats = Signal(16)
        # Address side: where the next burst starts and what is left to request.
        row_addr = Signal(self.addr_width)
        addr = Signal(self.addr_width)
        ar_rows = Signal(16)          # rows still to request, including the current one
        ar_beats = Signal(16)         # beats of the current row still to request
        # Data side: what is left to receive (data returns in order).
        r_rows = Signal(16)
        r_beats = Signal(16)
        outstanding = Signal(range(self.max_outstanding + 1))

        m.d.comb += [cmd.ready.eq(~active), self.busy.eq(active)]
        with m.If(cmd.valid & ~active):
            p = cmd.payload
            m.d.sync += [
                active.eq(1), pitch.eq(p.pitch), row_beats.eq(p.row_beats),
                row_addr.eq(p.addr), addr.eq(p.addr), ar_rows.eq(p.rows),
                ar_beats.eq(p.row_beats), r_rows.eq(p.rows), r_beats.eq(p.row_beats),
            ]

        # Burst length: the row's rest, the burst limit, or up to the 4 KiB boundary.
        to_page = Signal(range(_PAGE // self.beat_bytes + 1))
        length = Signal(range(max(self.max_burst, _PAGE // self.beat_bytes) + 1))
        m.d.comb += [
            to_page.eq((_PAGE - addr[:12]) >> shift),
            length.eq(Mux(ar_beats < to_page, ar_beats, to_page)),
        ]
        burst = Signal(range(self.max_burst + 1))
        m.d.comb += burst.eq(Mux(length < self.max_burst, length, self.max_burst))

        issuing = active & (ar_rows != 0)
        m.d.comb += [
            bus.arvalid.eq(issuing & (outstanding < self.max_outstanding)),
            bus.araddr.eq(addr), bus.arlen.eq(burst - 1), bus.arsize.eq(shift),
            bus.arburst.eq(BURST_INCR), bus.arid.eq(0), bus.arlock.eq(0),
            bus.arcache.eq(0b0011), bus.arprot.eq(0),
        ]
        ar_done = bus.arvalid & bus.arready
        with m.If(ar_done):
            with m.If(ar_beats == burst):            # the row is fully requested
                m.d.sync += [ar_rows.eq(ar_rows - 1), ar_beats.eq(row_beats),
                             row_addr.eq(row_addr + pitch), addr.eq(row_addr + pitch)]
            with m.Else():
                m.d.sync += [ar_beats.eq(ar_beats - burst),
                             addr.eq(addr + (burst << shift))]

        # Data: straight from R to the stream; the stream's ready is rready.
        final = (r_rows == 1) & (r_beats == 1)
        m.d.comb += [
            self.data.valid.eq(bus.rvalid & active),
            self.data.payload.data.eq(bus.rdata),
            self.data.payload.last.eq(final),
            bus.rready.eq(self.data.ready & active),
        ]
        r_done = bus.rvalid & bus.rready
        with m.If(r_done):
            with m.If(bus.rresp != RESP_OKAY):
                m.d.sync += self.error.eq(1)
            with m.If(r_beats == 1):
                m.d.sync += [r_rows.eq(r_rows - 1), r_beats.eq(row_beats)]
            with m.Else():
                m.d.sync += r_beats.eq(r_beats - 1)
            with m.If(final):
                m.d.sync += active.eq(0)
        m.d.sync += outstanding.eq(outstanding + ar_done - (r_done & bus.rlast))

        # Watchdog: any address or data handshake is progress.
        idle = Signal(range(self.timeout_cycles + 1))
        with m.If(~active | ar_done | r_done):
            m.d.sync += idle.eq(0)
        with m.Elif(idle == self.timeout_cycles):
            m.d.sync += self.timeout.eq(1)
        with m.Else():
            m.d.sync += idle.eq(idle + 1)
        return m
