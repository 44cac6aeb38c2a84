"""AXI4 read DMA: strided 2-D transfers from host memory into a stream of bus-wide beats."""
from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from .axi import BURST_INCR, RESP_OKAY, AxiSignature
from .dma_engine import DmaEngine, dma_command_layout

__all__ = ["DmaReader", "dma_command_layout"]  # the layout re-exported for its users

class DmaReader(DmaEngine):
    """Reads 2-D regions of host memory over the read half of an AXI4 port.

    Bursts are INCR, full bus width, at most ``max_burst`` beats and never cross a 4 KiB
    boundary. Up to ``max_outstanding`` bursts are in flight at once (addresses run ahead of
    data), all with ID 0 so data returns in order. ``rready`` follows the ``data`` stream's
    ``ready``: the consumer's backpressure reaches the bus, no beat is buffered or dropped.
    One command runs at a time; the next is taken after its last beat: the ``rlast`` beat
    of its last burst.

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
        super().__init__({
            "cmd": In(stream.Signature(dma_command_layout(addr_width))),
            "data": Out(stream.Signature(data.StructLayout({"data": data_width, "last": 1}))),
            "bus": Out(AxiSignature(addr_width=addr_width, data_width=data_width,
                                    channels="read")),
            "busy": Out(1),
            "error": Out(1),
            "timeout": Out(1),
        }, data_width=data_width, addr_width=addr_width, max_burst=max_burst,
            max_outstanding=max_outstanding, timeout=timeout)

    def elaborate(self, platform):
        m = Module()
        bus, cmd = self.bus, self.cmd

        active = Signal()
        # Bursts requested and not yet complete (data returns in order).
        outstanding = Signal(range(self.max_outstanding + 1))

        m.d.comb += [cmd.ready.eq(~active), self.busy.eq(active)]
        start = cmd.valid & ~active
        with m.If(start):
            m.d.sync += active.eq(1)
        ar_done = bus.arvalid & bus.arready
        addr, burst, requesting, issue = self._requests(m, start, ar_done)
        m.d.comb += [
            bus.arvalid.eq(active & issue & (outstanding < self.max_outstanding)),
            bus.araddr.eq(addr), bus.arlen.eq(burst - 1), bus.arsize.eq(self._shift),
            bus.arburst.eq(BURST_INCR), bus.arid.eq(0), bus.arlock.eq(0),
            bus.arcache.eq(0b0011), bus.arprot.eq(0),
        ]

        # Data: straight from R to the stream; the stream's ready is rready. The command's
        # final beat ends the last burst outstanding once every burst has been requested.
        final = ~requesting & (outstanding == 1) & bus.rlast
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
            with m.If(final):
                m.d.sync += active.eq(0)
        m.d.sync += outstanding.eq(outstanding + ar_done - (r_done & bus.rlast))

        self._watchdog(m, active, ar_done | r_done)   # any handshake is progress
        return m
