"""AXI4 write DMA: a stream of bus-wide beats into strided 2-D regions of host memory."""
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from .axi import BURST_INCR, RESP_OKAY, AxiSignature
from .dma_engine import DmaEngine, dma_command_layout

__all__ = ["DmaWriter"]


class DmaWriter(DmaEngine):
    """Writes 2-D regions of host memory over the write half of an AXI4 port.

    The mirror of :class:`~hw.dma_reader.DmaReader`: the same command layout, INCR bursts of
    full beats (all strobes set) of at most ``max_burst`` beats that never cross a 4 KiB
    boundary, and up to ``max_outstanding`` bursts awaiting their write response. A burst's
    data beats are sent only after its address has been accepted (a FIFO of burst lengths
    links the AW and W channels), which every AXI subordinate accepts. ``data.ready`` is
    ``wready`` while a burst is open: backpressure goes straight through, nothing is
    buffered. A command ends when the write responses of all its bursts are back.

    Errors never hang it: a ``SLVERR``/``DECERR`` write response sets the sticky ``error``;
    no address, data or response handshake for ``timeout`` cycles while busy sets the sticky
    ``timeout``. Both stay set until reset.

    Ports
    -----
    cmd : In(stream of :func:`~hw.dma_reader.dma_command_layout`)
    data : In(stream of ``data_width``-bit beats), in address order
    bus : Out(AxiSignature(..., channels="write"))
    busy, error, timeout : Out(1)

    Parameters are those of :class:`~hw.dma_reader.DmaReader`.
    """

    def __init__(self, *, data_width=128, addr_width=32, max_burst=256, max_outstanding=4,
                 timeout=4096):
        super().__init__({
            "cmd": In(stream.Signature(dma_command_layout(addr_width))),
            "data": In(stream.Signature(data_width)),
            "bus": Out(AxiSignature(addr_width=addr_width, data_width=data_width,
                                    channels="write")),
            "busy": Out(1),
            "error": Out(1),
            "timeout": Out(1),
        }, data_width=data_width, addr_width=addr_width, max_burst=max_burst,
            max_outstanding=max_outstanding, timeout=timeout)

    def elaborate(self, platform):
        m = Module()
        bus, cmd = self.bus, self.cmd

        active = Signal()
        awaiting = Signal(range(self.max_outstanding + 1))   # bursts without a response yet

        m.d.comb += [cmd.ready.eq(~active), self.busy.eq(active)]
        start = cmd.valid & ~active
        with m.If(start):
            m.d.sync += active.eq(1)
        aw_done = bus.awvalid & bus.awready
        addr, burst, requesting, issue = self._requests(m, start, aw_done)

        # AWLEN (beats - 1) of the bursts whose address went out and whose data has not all
        # been sent.
        awlen = bus.awlen[:max(1, (self.max_burst - 1).bit_length())]
        m.submodules.lengths = lengths = SyncFIFO(width=len(awlen), depth=self.max_outstanding)
        m.d.comb += [
            bus.awvalid.eq(active & issue & (awaiting < self.max_outstanding)
                           & lengths.w_rdy),
            bus.awaddr.eq(addr), bus.awlen.eq(burst - 1), bus.awsize.eq(self._shift),
            bus.awburst.eq(BURST_INCR), bus.awid.eq(0), bus.awlock.eq(0),
            bus.awcache.eq(0b0011), bus.awprot.eq(0),
            lengths.w_data.eq(awlen), lengths.w_en.eq(aw_done),
        ]

        # W: beats of the oldest open burst.
        sent = Signal(range(self.max_burst))
        last_beat = sent == lengths.r_data
        m.d.comb += [
            bus.wvalid.eq(self.data.valid & lengths.r_rdy),
            bus.wdata.eq(self.data.payload),
            bus.wstrb.eq((1 << self.beat_bytes) - 1),
            bus.wlast.eq(last_beat),
            self.data.ready.eq(bus.wready & lengths.r_rdy),
        ]
        w_done = bus.wvalid & bus.wready
        m.d.comb += lengths.r_en.eq(w_done & last_beat)
        with m.If(w_done):
            m.d.sync += sent.eq(Mux(last_beat, 0, sent + 1))

        # B: one response per burst; the command ends when the last one is back.
        m.d.comb += bus.bready.eq(1)
        b_done = bus.bvalid & bus.bready
        with m.If(b_done & (bus.bresp != RESP_OKAY)):
            m.d.sync += self.error.eq(1)
        m.d.sync += awaiting.eq(awaiting + aw_done - b_done)
        with m.If(active & ~requesting & (awaiting == 0)):
            m.d.sync += active.eq(0)

        self._watchdog(m, active, aw_done | w_done | b_done)
        return m
