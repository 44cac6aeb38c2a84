"""Host bridge: framed requests over a byte stream (a UART) to AXI4-Lite register and memory
accesses, with CRC-checked requests and status replies (``hw/bridge_protocol.py``)."""
from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .axi import RESP_OKAY, AxiLiteSignature
from .bridge_protocol import (
    CRC_INIT,
    CRC_POLY,
    INFO_MAGIC,
    PROTOCOL_VERSION,
    SYNC_REPLY,
    SYNC_REQUEST,
    command,
    status_code,
)

__all__ = ["HostBridge", "crc16_update"]

OK, BAD_CRC, BAD_COMMAND, BUS_ERROR, TRUNCATED = (
    status_code(name) for name in ("OK", "BAD_CRC", "BAD_COMMAND", "BUS_ERROR", "TRUNCATED"))
INFO, CSR_READ, CSR_WRITE, MEM_READ, MEM_WRITE = (
    command(name).code for name in ("INFO", "CSR_READ", "CSR_WRITE", "MEM_READ", "MEM_WRITE"))


def _crc16_matrix():
    """For each bit of the updated CRC, the (crc bits, byte bits) whose XOR it is."""
    state = [({i}, set()) for i in range(16)]       # bit i = XOR of these crc / byte bits
    for i in range(8):
        top_crc, top_byte = state[15]
        feedback = (set(top_crc), top_byte ^ {7 - i})
        shifted = [(set(), set())] + state[:15]
        state = [(c ^ feedback[0], b ^ feedback[1]) if (CRC_POLY >> bit) & 1 else (c, b)
                 for bit, (c, b) in enumerate(shifted)]
    return state


_CRC16_MATRIX = _crc16_matrix()


def crc16_update(crc, byte):
    """CRC-16/CCITT-FALSE of ``crc`` (16-bit value) after one more ``byte`` (8-bit value):
    a flat XOR expression per bit (the byte-wise update unrolled), combinational."""
    bits = []
    for crc_bits, byte_bits in _CRC16_MATRIX:
        terms = [crc[i] for i in sorted(crc_bits)] + [byte[i] for i in sorted(byte_bits)]
        value = Const(0, 1)
        for term in terms:
            value = value ^ term
        bits.append(value)
    return Cat(*bits)


def _check(name, value, low, high):
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], not {value!r}")


class HostBridge(wiring.Component):
    """Executes the requests of ``docs/fpga.md`` arriving on ``rx`` and answers on ``tx``.

    A request is received whole (write data into a ``max_words`` x 32-bit buffer) and its
    CRC checked before anything happens, so a corrupted or truncated request changes nothing
    and gets a ``BAD_CRC`` / ``TRUNCATED`` reply. Register requests are AXI4-Lite accesses on
    ``csr`` (12-bit offsets; offsets past 0xFFF answer ``BUS_ERROR``), memory requests on
    ``mem`` (32-bit byte addresses), one 32-bit access at a time, the address advancing by 4.
    A response other than OKAY, or none within ``bus_timeout`` cycles, stops the request with
    ``BUS_ERROR``. Read data is buffered and sent after the status. Bytes outside a frame
    that are not the sync byte are ignored; a frame with no byte for ``byte_timeout``
    cycles is abandoned with a ``TRUNCATED`` reply.

    While idle the bridge reads the register at ``status_offset`` every ``poll_interval``
    cycles and shows it on ``status`` (32 bits; the board's LEDs), unless ``status_offset`` is
    None. ``busy`` is high while a frame is being received, executed or answered.

    Latency: the reply starts a few cycles after the last CRC byte plus the bus accesses
    (a CSR access takes about 4 cycles); the bridge handles one request at a time.

    Parameters
    ----------
    max_words : int
        Largest ``count`` of one request (1..255); the buffer's depth.
    byte_timeout : int
        Cycles without a byte after which a started frame is abandoned (>= 16).
    bus_timeout : int
        Cycles to wait for an AXI4-Lite handshake before reporting ``BUS_ERROR`` (>= 16).
    mem_size, clock_hz : int
        Reported by the INFO command (bytes of device memory, the design clock in Hz).
    status_offset : int or None
        Register offset polled while idle (the accelerator's STATUS, 0x028).
    poll_interval : int
        Cycles between polls (>= 16).
    """

    rx: In(stream.Signature(8))
    tx: Out(stream.Signature(8))
    csr: Out(AxiLiteSignature(addr_width=12))
    mem: Out(AxiLiteSignature(addr_width=32))
    status: Out(32)
    busy: Out(1)

    def __init__(self, *, max_words=64, byte_timeout=1 << 20, bus_timeout=1 << 10,
                 mem_size=0, clock_hz=0, status_offset=None, poll_interval=1 << 10):
        _check("max_words", max_words, 1, 255)
        _check("byte_timeout", byte_timeout, 16, 1 << 32)
        _check("bus_timeout", bus_timeout, 16, 1 << 24)
        _check("mem_size", mem_size, 0, (1 << 32) - 1)
        _check("clock_hz", clock_hz, 0, (1 << 32) - 1)
        _check("poll_interval", poll_interval, 16, 1 << 24)
        if status_offset is not None:
            _check("status_offset", status_offset, 0, 0xFFC)
            if status_offset % 4:
                raise ValueError(f"status_offset must be word-aligned, not {status_offset:#x}")
        self.max_words, self.byte_timeout, self.bus_timeout = max_words, byte_timeout, bus_timeout
        self.info = [INFO_MAGIC, PROTOCOL_VERSION, mem_size, clock_hz, max_words]
        self.status_offset, self.poll_interval = status_offset, poll_interval
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.buffer = buffer = Memory(shape=32, depth=self.max_words, init=[])
        self._wr = buffer.write_port()
        self._rd = buffer.read_port()

        # The request, as received.
        self._cmd, self._tag, self._count = Signal(8), Signal(8), Signal(8)
        self._addr = Signal(32)
        self._crc, self._crc_rx = Signal(16, init=CRC_INIT), Signal(16)
        self._index = Signal(10)          # header/payload/CRC bytes, then words done
        self._word = Signal(32)
        self._status = Signal(8)
        self._timer = Signal(range(max(self.byte_timeout, self.bus_timeout,
                                       self.poll_interval) + 1))

        writes = (self._cmd == CSR_WRITE) | (self._cmd == MEM_WRITE)
        self._writes = writes
        with m.FSM() as fsm:
            self._receive(m)
            self._execute(m)
            self._reply(m)
        idle = fsm.ongoing("HUNT")
        if self.status_offset is not None:
            idle |= fsm.ongoing("POLL")
        m.d.comb += self.busy.eq(~idle)
        return m

    # -- receiving ---------------------------------------------------------------------------

    def _byte_received(self, m):
        """Accept a byte this cycle; return its value. Restarts the inter-byte timer."""
        m.d.comb += self.rx.ready.eq(1)
        m.d.sync += self._timer.eq(0)
        return self.rx.payload

    def _frame_timer(self, m):
        with m.If(~self.rx.valid):
            m.d.sync += self._timer.eq(self._timer + 1)
            with m.If(self._timer == self.byte_timeout - 1):
                m.d.sync += [self._status.eq(TRUNCATED), self._count.eq(0)]
                m.next = "REPLY_SYNC"

    def _receive(self, m):
        crc, index = self._crc, self._index
        with m.State("HUNT"):
            m.d.comb += self.rx.ready.eq(1)
            if self.status_offset is not None:
                m.d.sync += self._timer.eq(self._timer + 1)
                with m.If(~self.rx.valid & (self._timer >= self.poll_interval)):
                    m.d.sync += [self._addr.eq(self.status_offset), self._timer.eq(0)]
                    m.next = "POLL"
            with m.If(self.rx.valid & (self.rx.payload == SYNC_REQUEST)):
                m.d.sync += [crc.eq(CRC_INIT), index.eq(0), self._timer.eq(0),
                             self._tag.eq(0)]
                m.next = "HEADER"
        if self.status_offset is not None:
            with m.State("POLL"):
                done, error, data = self._read_access(m, select_mem=False)
                with m.If(done):
                    with m.If(~error):
                        m.d.sync += self.status.eq(data)
                    m.d.sync += self._timer.eq(0)
                    m.next = "HUNT"

        with m.State("HEADER"):
            self._frame_timer(m)
            with m.If(self.rx.valid):
                byte = self._byte_received(m)
                m.d.sync += [crc.eq(crc16_update(crc, byte)), index.eq(index + 1)]
                with m.Switch(index):
                    with m.Case(0):
                        m.d.sync += self._cmd.eq(byte)
                    with m.Case(1):
                        m.d.sync += self._tag.eq(byte)
                    with m.Case(2):
                        m.d.sync += self._count.eq(byte)
                    for i in range(4):
                        with m.Case(3 + i):
                            m.d.sync += self._addr[8 * i:8 * i + 8].eq(byte)
                with m.If(index == 6):
                    m.d.sync += index.eq(0)
                    with m.If(self._writes & (self._count != 0)):
                        m.next = "PAYLOAD"
                    with m.Else():
                        m.next = "CRC"
        with m.State("PAYLOAD"):
            self._frame_timer(m)
            with m.If(self.rx.valid):
                byte = self._byte_received(m)
                word = Signal(32)
                m.d.comb += word.eq(self._word >> 8 | byte << 24)
                m.d.sync += [crc.eq(crc16_update(crc, byte)), index.eq(index + 1),
                             self._word.eq(word)]
                with m.If(index[:2] == 3):
                    m.d.comb += [self._wr.addr.eq(index[2:]), self._wr.data.eq(word),
                                 self._wr.en.eq(index[2:] < self.max_words)]
                with m.If(index == (self._count << 2) - 1):
                    m.d.sync += index.eq(0)
                    m.next = "CRC"
        with m.State("CRC"):
            self._frame_timer(m)
            with m.If(self.rx.valid):
                byte = self._byte_received(m)
                m.d.sync += index.eq(index + 1)
                with m.If(index == 0):
                    m.d.sync += self._crc_rx[:8].eq(byte)
                with m.Else():
                    m.d.sync += self._crc_rx[8:].eq(byte)
                    m.next = "CHECK"
        with m.State("CHECK"):
            known = ((self._cmd == INFO) | (self._cmd == CSR_READ) | (self._cmd == CSR_WRITE) |
                     (self._cmd == MEM_READ) | (self._cmd == MEM_WRITE))
            info_fits = (self._addr[2:] + self._count) <= len(self.info)
            m.d.sync += [index.eq(0), self._timer.eq(0)]
            with m.If(self._crc_rx != crc):
                m.d.sync += [self._status.eq(BAD_CRC), self._count.eq(0)]
                m.next = "REPLY_SYNC"
            with m.Elif(~known | (self._count == 0) | (self._count > self.max_words) |
                        (self._addr[:2] != 0) | ((self._cmd == INFO) & ~info_fits)):
                m.d.sync += [self._status.eq(BAD_COMMAND), self._count.eq(0)]
                m.next = "REPLY_SYNC"
            with m.Else():
                m.d.sync += self._status.eq(OK)
                m.next = "EXECUTE"

    # -- executing ---------------------------------------------------------------------------

    def _read_access(self, m, select_mem):
        """One AXI4-Lite read at ``_addr`` on ``mem`` (``select_mem``) or ``csr``; returns
        (done, error, data) for the cycle the access ends."""
        done, error, data = Signal(), Signal(), Signal(32)
        sent = Signal()
        m.d.sync += self._timer.eq(self._timer + 1)
        if isinstance(select_mem, bool):
            select_mem = Const(select_mem, 1)
        for port, selected in ((self.mem, select_mem), (self.csr, ~select_mem)):
            m.d.comb += [port.araddr.eq(self._addr), port.arvalid.eq(selected & ~sent),
                         port.rready.eq(selected & sent)]
        arready = Mux(select_mem, self.mem.arready, self.csr.arready)
        rvalid = Mux(select_mem, self.mem.rvalid, self.csr.rvalid)
        rresp = Mux(select_mem, self.mem.rresp, self.csr.rresp)
        m.d.comb += data.eq(Mux(select_mem, self.mem.rdata, self.csr.rdata))
        with m.If(~sent & arready):
            m.d.sync += sent.eq(1)
        with m.If(sent & rvalid):
            m.d.comb += [done.eq(1), error.eq(rresp != RESP_OKAY)]
            m.d.sync += [sent.eq(0), self._timer.eq(0)]
        with m.Elif(self._timer == self.bus_timeout):
            m.d.comb += [done.eq(1), error.eq(1)]
            m.d.sync += [sent.eq(0), self._timer.eq(0)]
        return done, error, data

    def _write_access(self, m, select_mem):
        """One AXI4-Lite write of ``_word`` at ``_addr``; returns (done, error)."""
        done, error = Signal(), Signal()
        aw_sent, w_sent = Signal(), Signal()
        m.d.sync += self._timer.eq(self._timer + 1)
        for port, selected in ((self.mem, select_mem), (self.csr, ~select_mem)):
            m.d.comb += [port.awaddr.eq(self._addr), port.wdata.eq(self._word),
                         port.wstrb.eq(0xF), port.awvalid.eq(selected & ~aw_sent),
                         port.wvalid.eq(selected & ~w_sent),
                         port.bready.eq(selected & aw_sent & w_sent)]
        awready = Mux(select_mem, self.mem.awready, self.csr.awready)
        wready = Mux(select_mem, self.mem.wready, self.csr.wready)
        bvalid = Mux(select_mem, self.mem.bvalid, self.csr.bvalid)
        bresp = Mux(select_mem, self.mem.bresp, self.csr.bresp)
        with m.If(~aw_sent & awready):
            m.d.sync += aw_sent.eq(1)
        with m.If(~w_sent & wready):
            m.d.sync += w_sent.eq(1)
        with m.If(aw_sent & w_sent & bvalid):
            m.d.comb += [done.eq(1), error.eq(bresp != RESP_OKAY)]
            m.d.sync += [aw_sent.eq(0), w_sent.eq(0), self._timer.eq(0)]
        with m.Elif(self._timer == self.bus_timeout):
            m.d.comb += [done.eq(1), error.eq(1)]
            m.d.sync += [aw_sent.eq(0), w_sent.eq(0), self._timer.eq(0)]
        return done, error

    def _execute(self, m):
        index, cmd = self._index, self._cmd
        is_mem = (cmd == MEM_READ) | (cmd == MEM_WRITE)
        csr_out_of_range = ~is_mem & (self._addr[12:] != 0)

        def next_word(m):
            m.d.sync += [index.eq(index + 1), self._addr.eq(self._addr + 4)]
            with m.If(index + 1 == self._count):
                m.d.sync += index.eq(0)
                m.next = "REPLY_SYNC"
            with m.Else():
                m.next = "EXECUTE"

        def fail(m):
            m.d.sync += [self._status.eq(BUS_ERROR), self._count.eq(0), index.eq(0)]
            m.next = "REPLY_SYNC"

        with m.State("EXECUTE"):          # the buffer word at `index` is read here
            m.d.comb += self._rd.addr.eq(index)
            with m.If(cmd == INFO):
                info = Signal(32)
                with m.Switch(self._addr[2:5]):
                    for i, value in enumerate(self.info):
                        with m.Case(i):
                            m.d.comb += info.eq(value)
                m.d.comb += [self._wr.addr.eq(index), self._wr.data.eq(info),
                             self._wr.en.eq(1)]
                next_word(m)
            with m.Elif(csr_out_of_range):
                fail(m)
            with m.Elif(self._writes):
                m.next = "WRITE_LOAD"
            with m.Else():
                m.next = "READ"
        with m.State("READ"):
            done, error, data = self._read_access(m, select_mem=is_mem)
            with m.If(done):
                with m.If(error):
                    fail(m)
                with m.Else():
                    m.d.comb += [self._wr.addr.eq(index), self._wr.data.eq(data),
                                 self._wr.en.eq(1)]
                    next_word(m)
        with m.State("WRITE_LOAD"):       # the word read in EXECUTE
            m.d.sync += [self._word.eq(self._rd.data), self._timer.eq(0)]
            m.next = "WRITE"
        with m.State("WRITE"):
            done, error = self._write_access(m, select_mem=is_mem)
            with m.If(done):
                with m.If(error):
                    fail(m)
                with m.Else():
                    next_word(m)

    # -- replying ----------------------------------------------------------------------------

    def _reply(self, m):
        crc, index = self._crc, self._index
        count = Mux(self._writes, 0, self._count)

        def send(m, byte, next_state, update_crc=True):
            m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(byte)]
            with m.If(self.tx.ready):
                if update_crc:
                    m.d.sync += crc.eq(crc16_update(crc, byte))
                m.next = next_state

        with m.State("REPLY_SYNC"):
            m.d.sync += index.eq(0)
            send(m, Const(SYNC_REPLY, 8), "REPLY_STATUS", update_crc=False)
            with m.If(self.tx.ready):
                m.d.sync += crc.eq(CRC_INIT)
        with m.State("REPLY_STATUS"):
            send(m, self._status, "REPLY_TAG")
        with m.State("REPLY_TAG"):
            send(m, self._tag, "REPLY_COUNT")
        with m.State("REPLY_COUNT"):
            send(m, count, "REPLY_LOAD")
            with m.If(self.tx.ready & (count == 0)):
                m.next = "REPLY_CRC"
        with m.State("REPLY_LOAD"):        # one cycle for the buffer's read port
            m.d.comb += self._rd.addr.eq(index[2:])
            m.next = "REPLY_DATA"
        with m.State("REPLY_DATA"):
            m.d.comb += self._rd.addr.eq(index[2:])
            byte = self._rd.data.word_select(index[:2], 8)
            send(m, byte, "REPLY_DATA")
            with m.If(self.tx.ready):
                m.d.sync += index.eq(index + 1)
                with m.If(index == (count << 2) - 1):
                    m.d.sync += index.eq(0)
                    m.next = "REPLY_CRC"
                with m.Elif(index[:2] == 3):
                    m.next = "REPLY_LOAD"
        with m.State("REPLY_CRC"):
            send(m, crc.word_select(index[0], 8), "REPLY_CRC", update_crc=False)
            with m.If(self.tx.ready):
                m.d.sync += index.eq(1)
                with m.If(index[0]):
                    m.d.sync += [index.eq(0), self._timer.eq(0)]
                    m.next = "HUNT"
