"""Host bridge: framed requests over a byte stream (a UART) to AXI4-Lite register and memory
accesses, with CRC-checked requests and status replies (``hw/bridge_protocol.py``)."""
from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .axi import RESP_OKAY, AxiLiteSignature
from .block_ram import block_ram
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
#: header bytes after the sync byte: cmd, tag, count, addr[4]
_HEADER = 7


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
    (a CSR access takes about 6 cycles: its end is registered; each word adds 6 while the
    address advances and is checked, and a written word 4 more to read it from the buffer);
    the bridge handles one request at a time.

    The buffer is one byte-wide block RAM (4 x ``max_words`` bytes) that also holds the
    INFO words, so INFO replies are read from it like read data; a 32-bit register carries
    a word between it and the bus, a byte a cycle. One timer serves the inter-byte, bus and
    poll timeouts; one byte-in-word / word counter pair walks the header, the write data,
    the accesses and the reply.

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
        # Bytes, word w's at 4 w .. 4 w + 3 (one block RAM for 64 words, not two). Words
        # 0..max_words-1: write data / read data. From `info_base` (a multiple of 8): the
        # INFO words, so that their address is `info_base | word` with no adder.
        # A block_ram: no logic for the old byte when the address read is written in the
        # same cycle, since the bridge never uses such a read (bytes read are used only in
        # LOAD, WRITE and REPLY_DATA, and no state writes the buffer there or in the cycle
        # before; those STEP shifts into `_word` are never used).
        self._info_base = -(-self.max_words // 8) * 8
        info_bytes = [(word >> 8 * i) & 0xFF for word in self.info for i in range(4)]
        m.submodules.buffer = buffer = block_ram(
            shape=8, depth=4 * self._info_base + len(info_bytes),
            init=[0] * (4 * self._info_base) + info_bytes)
        self._wr = buffer.write_port()
        self._rd = buffer.read_port()

        # The request, as received; the command decoded as it arrives.
        self._known, self._writes = Signal(name="known"), Signal(name="writes")
        self._is_mem, self._is_info = Signal(name="is_mem"), Signal(name="is_info")
        self._tag = Signal(8, name="tag")
        self._count = Signal(8, name="count")
        self._count_less_1 = Signal(8, name="count_less_1")     # count - 1 (mod 256)
        # Received a byte at a time into the top byte, shifting down; advanced by 4 a byte
        # at a time the same way (STEP), so that its only adder is 8 bits wide.
        self._addr = Signal(32, name="addr")
        self._crc = Signal(16, init=CRC_INIT, name="crc")
        self._byte = Signal(2, name="byte")      # byte within the word / the header's half
        self._words = Signal(8, name="words")    # words done / the header's half
        self._status = Signal(3, name="reply_status")
        # A bus access's data: loaded from a read, or shifted from / to the buffer a byte a
        # cycle (in at the top, out at the bottom) in LOAD and STEP.
        self._word = Signal(32, name="word")
        # Counts up in the states that time something (``_timing``), else held at 0.
        self._timer = Signal(range(max(self.byte_timeout, self.bus_timeout,
                                       self.poll_interval) + 1), name="timer")

        # What the state machine asks of the registers this cycle (all default 0).
        self._timing = Signal()
        self._advance = Signal()          # count a byte: `_byte` + 1, after 4 `_words` + 1
        self._restart = Signal()          # `_byte`, `_words` = 0
        self._first_byte = Signal()       # `_byte` = 0
        self._load_word = Signal()        # `_word` = the read data
        self._crc_init, self._crc_update = Signal(), Signal()
        self._set_status, self._status_code = Signal(), Signal(3)
        self._drop_count = Signal()       # the reply carries no data
        # the reply decided (``_answer``), for the ANSWER state to act on
        self._answer_status = Signal(3, name="answer_status")
        self._answer_data = Signal(name="answer_data")
        self._step = Signal()             # `_addr` += 4: shift the next byte of the sum in
        self._poll = Signal()             # start a poll (a CSR read of `status_offset`)
        self._polling = Signal(name="polling")   # the READ under way is a poll
        # The AXI4-Lite valids, as registers: set on entering READ or WRITE, cleared by
        # their handshake or the bus timeout (so high only in those states), and driven
        # outside the state machine (no state decoding in front of the subordinates).
        self._ar_pending = Signal(name="ar_pending")
        self._aw_pending = Signal(name="aw_pending")
        self._w_pending = Signal(name="w_pending")

        # ``_timer`` reaching each limit, as registers: a wide compare is off the paths of the
        # decisions it ends
        self._byte_expired = self._timer_at(m, self.byte_timeout - 1)
        self._poll_due = self._timer_at(m, self.poll_interval)
        self._bus_expired = self._timer_at(m, self.bus_timeout)

        # past the CSR space, as a register: the address is complete (received, or stepped)
        # a cycle before EXECUTE uses this
        self._addr_high = Signal(name="addr_high")
        m.d.sync += self._addr_high.eq(self._addr[12:].any())
        self._refused = self._refusal(m)
        # the next word's number, and whether it is the request's last
        self._next_word = Signal(9)
        m.d.comb += self._next_word.eq(self._words + 1)
        # words + 1 == count (mod 256), without the adder in front of the compare, and a
        # register: the states that ask (at a word's last byte, or when its access ends)
        # come cycles after the word number or the count last changed
        self._last_word = Signal(name="last_word")
        m.d.sync += self._last_word.eq(self._words == self._count_less_1)
        # one of the CRC's bytes: the one to compare or send (the byte counter says which)
        self._crc_byte = Mux(self._byte[0], self._crc[8:], self._crc[:8])

        # byte `_byte` of word `_words` (an INFO reply reads its word instead)
        m.d.comb += self._rd.addr.eq(Cat(self._byte, self._words))
        with m.FSM() as fsm:
            self._receive(m)
            self._execute(m)
            self._reply(m)
        self._datapath(m, fsm)
        m.d.comb += self.busy.eq(~fsm.ongoing("HUNT") & ~self._polling)
        return m

    def _timer_at(self, m, n):
        """``_timer == n`` (``n >= 1``) from a register: the timer counts up by one while
        ``_timing`` and is 0 otherwise, so it is ``n`` exactly when it was ``n - 1`` and
        counting the cycle before."""
        at = Signal(name=f"timer_at_{n}")
        m.d.sync += at.eq(self._timing & (self._timer == n - 1))
        return at

    def _datapath(self, m, fsm):
        """The registers, each updated in one place from the state machine's requests."""
        byte, words, rx = self._byte, self._words, self.rx
        with m.If(self._restart):
            m.d.sync += [byte.eq(0), words.eq(0)]
        with m.Elif(self._first_byte):
            m.d.sync += byte.eq(0)
        with m.Elif(self._advance):
            m.d.sync += byte.eq(byte + 1)
            with m.If(byte == 3):
                m.d.sync += words.eq(self._next_word)

        m.d.sync += self._timer.eq(Mux(self._timing, self._timer + 1, 0))

        with m.If(self._set_status):
            m.d.sync += self._status.eq(self._status_code)

        # the header: cmd, tag, count, then the address a byte at a time
        header_byte = fsm.ongoing("HEADER") & rx.valid
        position = Cat(byte, words[0])
        with m.If(header_byte & (position == 0)):
            cmd = rx.payload
            m.d.sync += [
                self._known.eq((cmd == INFO) | (cmd == CSR_READ) | (cmd == CSR_WRITE) |
                               (cmd == MEM_READ) | (cmd == MEM_WRITE)),
                self._writes.eq((cmd == CSR_WRITE) | (cmd == MEM_WRITE)),
                self._is_mem.eq((cmd == MEM_READ) | (cmd == MEM_WRITE)),
                self._is_info.eq(cmd == INFO),
            ]
        with m.If(fsm.ongoing("HUNT")):
            m.d.sync += self._tag.eq(0)
        with m.Elif(header_byte & (position == 1)):
            m.d.sync += self._tag.eq(rx.payload)
        with m.If(self._drop_count):
            m.d.sync += [self._count.eq(0), self._count_less_1.eq(0xFF)]
        with m.Elif(header_byte & (position == 2)):
            m.d.sync += [self._count.eq(rx.payload), self._count_less_1.eq(rx.payload - 1)]

        # a poll is a CSR read of `status_offset` in READ
        with m.If(self._poll):
            m.d.sync += [self._polling.eq(1), self._is_mem.eq(0)]
        with m.Elif(fsm.ongoing("HUNT")):
            m.d.sync += self._polling.eq(0)

        carry = Signal()
        total = self._addr[:8] + Mux(byte == 0, 4, carry)
        with m.If(self._poll):
            m.d.sync += self._addr.eq(self.status_offset or 0)
        with m.Elif(self._step | (header_byte & (position >= 3))):
            m.d.sync += self._addr.eq(Cat(self._addr[8:],
                                          Mux(self._step, total[:8], rx.payload)))
        with m.If(self._step):
            m.d.sync += carry.eq(total[8])

        # one CRC update, of the byte sent (in a reply) or received
        crc_next = crc16_update(self._crc, Mux(self.tx.valid, self.tx.payload, rx.payload))
        with m.If(self._crc_init):
            m.d.sync += self._crc.eq(CRC_INIT)
        with m.Elif(self._crc_update):
            m.d.sync += self._crc.eq(crc_next)

        # LOAD leaves bytes 0..2 of the word to write in `_word[8:]`, byte 3 on the read port
        with m.If(self._load_word):
            m.d.sync += self._word.eq(Mux(self._is_mem, self.mem.rdata, self.csr.rdata))
        with m.Elif(fsm.ongoing("LOAD") | fsm.ongoing("STEP")):
            m.d.sync += self._word.eq(Cat(self._word[8:], self._rd.data))
        wdata = Cat(self._word[8:], self._rd.data)

        # addresses and write data need hold only while valid: driven in every state
        for port, selected in ((self.mem, self._is_mem), (self.csr, ~self._is_mem)):
            m.d.comb += [port.araddr.eq(self._addr), port.awaddr.eq(self._addr),
                         port.wdata.eq(wdata), port.wstrb.eq(0xF),
                         port.arvalid.eq(selected & self._ar_pending),
                         port.awvalid.eq(selected & self._aw_pending),
                         port.wvalid.eq(selected & self._w_pending)]
        # the buffer: write data from the UART (PAYLOAD), read data from `_word` (STEP)
        payload = fsm.ongoing("PAYLOAD")
        m.d.comb += [
            self._wr.addr.eq(Cat(byte, words)),
            self._wr.data.eq(Mux(payload, rx.payload, self._word[:8])),
        ]
        with m.If(payload & rx.valid & (words < self.max_words)):
            m.d.comb += self._wr.en.eq(1)
        with m.If(fsm.ongoing("STEP") & ~self._writes):
            m.d.comb += self._wr.en.eq(1)

    # -- state machine actions ---------------------------------------------------------------

    def _answer(self, m, status, data=False):
        """Reply with ``status``; with ``count`` words of data if ``data`` (bool or 1-bit
        value), else none: from the ANSWER state, in the next cycle."""
        m.d.sync += [self._answer_status.eq(status), self._answer_data.eq(data)]
        m.next = "ANSWER"

    # -- receiving ---------------------------------------------------------------------------

    def _frame_byte(self, m):
        """In a frame: on a byte, accept it and return 1; after ``byte_timeout`` cycles
        without one, answer TRUNCATED."""
        m.d.comb += [self.rx.ready.eq(1), self._timing.eq(~self.rx.valid)]
        with m.If(~self.rx.valid & self._byte_expired):
            self._answer(m, TRUNCATED)
        return self.rx.valid

    def _receive(self, m):
        with m.State("HUNT"):
            m.d.comb += self.rx.ready.eq(1)
            with m.If(self.rx.valid & (self.rx.payload == SYNC_REQUEST)):
                m.d.comb += [self._crc_init.eq(1), self._restart.eq(1),
                             self._set_status.eq(1), self._status_code.eq(OK)]
                m.next = "HEADER"
            if self.status_offset is not None:
                with m.Elif(self._poll_due):
                    m.d.comb += self._poll.eq(1)        # a CSR read of the status
                    m.d.sync += self._ar_pending.eq(1)
                    m.next = "READ"
                with m.Else():
                    m.d.comb += self._timing.eq(1)

        with m.State("HEADER"):
            with m.If(self._frame_byte(m)):
                m.d.comb += [self._crc_update.eq(1), self._advance.eq(1)]
                with m.If(Cat(self._byte, self._words[0]) == _HEADER - 1):
                    m.d.comb += self._restart.eq(1)
                    with m.If(self._writes & (self._count != 0)):
                        m.next = "PAYLOAD"
                    with m.Else():
                        m.next = "CRC"
        with m.State("PAYLOAD"):          # the datapath writes the byte to the buffer
            with m.If(self._frame_byte(m)):
                m.d.comb += [self._crc_update.eq(1), self._advance.eq(1)]
                with m.If((self._byte == 3) & self._last_word):
                    m.d.comb += self._restart.eq(1)
                    m.next = "CRC"
        with m.State("CRC"):
            crc_bad = Signal()            # a CRC byte did not match
            mismatch = self.rx.payload != self._crc_byte
            with m.If(self._frame_byte(m)):
                m.d.comb += self._advance.eq(1)
                with m.If(self._byte[0] == 0):
                    m.d.sync += crc_bad.eq(mismatch)
                with m.Else():
                    m.d.sync += crc_bad.eq(crc_bad | mismatch)
                    m.next = "CHECK"
        with m.State("CHECK"):            # a cycle later: the decision is off the compare's path
            self._check(m, crc_bad=crc_bad)

    def _refusal(self, m):
        """Whether the request in the registers is a BAD_COMMAND, as a register: the
        command, count and address are complete when the CRC starts, two bytes before the
        check uses this, so the compares stay off the check's path."""
        count, addr = self._count, self._addr
        # INFO words addr / 4 .. addr / 4 + count - 1 must exist
        info_fits = ((addr[5:12] == 0) & ~self._addr_high & (count <= len(self.info)) &
                     (addr[2:5] + count[:3] <= len(self.info)))
        refused = Signal(name="refused")
        m.d.sync += refused.eq(~self._known | (count == 0) | (count > self.max_words) |
                               (addr[:2] != 0) | (self._is_info & ~info_fits))
        return refused

    def _check(self, m, crc_bad):
        """The request is complete: refuse it, or execute it."""
        with m.If(crc_bad):
            self._answer(m, BAD_CRC)
        with m.Elif(self._refused):
            self._answer(m, BAD_COMMAND)
        with m.Elif(self._is_info):          # the words are in the buffer already
            self._answer(m, OK, data=True)
        with m.Else():
            m.d.comb += self._restart.eq(1)
            m.next = "EXECUTE"

    # -- executing ---------------------------------------------------------------------------

    def _ended(self, m, response, response_error):
        """``(done, error)`` as registers, a cycle after the ``response`` handshake (with
        ``response_error``) or the bus timeout: the state machine's decisions and the
        registers they load stay off the subordinate's handshake paths (the UP5K's clock).
        ``done`` is high for one cycle; the access issues nothing more meanwhile."""
        done, error = Signal(name="access_done"), Signal(name="access_error")
        # (updated only in the access's state, which ``done`` leaves: it clears itself)
        m.d.sync += done.eq((response | self._bus_expired) & ~done)
        with m.If(response):
            m.d.sync += error.eq(response_error)
        with m.Elif(self._bus_expired):
            m.d.sync += error.eq(1)
        m.d.comb += self._timing.eq(~done)
        return done, error

    def _read_access(self, m, select_mem):
        """One AXI4-Lite read at ``_addr`` on ``mem`` (``select_mem``) or ``csr``; returns
        (response, ok, done, error): ``response`` high in the cycle the read data is taken
        (it is on the port's ``rdata`` then, a cycle before ``done``), ``ok`` whether its
        response is OKAY."""
        sent = Signal()
        rvalid = Mux(select_mem, self.mem.rvalid, self.csr.rvalid)
        rresp = Mux(select_mem, self.mem.rresp, self.csr.rresp)
        response = sent & rvalid
        done, error = self._ended(m, response, rresp != RESP_OKAY)
        for port, selected in ((self.mem, select_mem), (self.csr, ~select_mem)):
            m.d.comb += port.rready.eq(selected & sent)
        arready = Mux(select_mem, self.mem.arready, self.csr.arready)
        with m.If(self._ar_pending & arready):
            m.d.sync += [sent.eq(1), self._ar_pending.eq(0)]
        with m.If(response | self._bus_expired):
            m.d.sync += [sent.eq(0), self._ar_pending.eq(0)]
        return response, rresp == RESP_OKAY, done, error

    def _write_access(self, m, select_mem):
        """One AXI4-Lite write of the buffer word read at ``_words`` to ``_addr``; returns
        (done, error), registered (:meth:`_ended`)."""
        aw_sent, w_sent = Signal(), Signal()
        bvalid = Mux(select_mem, self.mem.bvalid, self.csr.bvalid)
        bresp = Mux(select_mem, self.mem.bresp, self.csr.bresp)
        response = aw_sent & w_sent & bvalid
        done, error = self._ended(m, response, bresp != RESP_OKAY)
        for port, selected in ((self.mem, select_mem), (self.csr, ~select_mem)):
            m.d.comb += port.bready.eq(selected & aw_sent & w_sent)
        awready = Mux(select_mem, self.mem.awready, self.csr.awready)
        wready = Mux(select_mem, self.mem.wready, self.csr.wready)
        with m.If(self._aw_pending & awready):
            m.d.sync += [aw_sent.eq(1), self._aw_pending.eq(0)]
        with m.If(self._w_pending & wready):
            m.d.sync += [w_sent.eq(1), self._w_pending.eq(0)]
        with m.If(response | self._bus_expired):
            m.d.sync += [aw_sent.eq(0), w_sent.eq(0), self._aw_pending.eq(0),
                         self._w_pending.eq(0)]
        return done, error

    def _execute(self, m):
        csr_out_of_range = ~self._is_mem & self._addr_high

        with m.State("EXECUTE"):          # a cycle for `_addr_high` to follow the address
            m.next = "ACCESS"
        with m.State("ACCESS"):
            with m.If(csr_out_of_range):
                self._answer(m, BUS_ERROR)
            with m.Elif(self._writes):
                m.next = "LOAD"
            with m.Else():
                m.d.sync += self._ar_pending.eq(1)
                m.next = "READ"
        with m.State("LOAD"):             # the word's bytes 0..3 are read, a cycle each
            with m.If(self._byte == 3):
                m.d.sync += [self._aw_pending.eq(1), self._w_pending.eq(1)]
                m.next = "WRITE"          # byte 3 stays on the read port
            with m.Else():
                m.d.comb += self._advance.eq(1)
        with m.State("READ"):
            response, ok, done, error = self._read_access(m, select_mem=self._is_mem)
            # the data is kept in the cycle it is taken (``done`` comes a cycle later)
            with m.If(response):
                with m.If(self._polling):
                    with m.If(ok):
                        m.d.sync += self.status.eq(self.csr.rdata)
                with m.Else():
                    m.d.comb += self._load_word.eq(1)
            with m.If(done):
                with m.If(self._polling):
                    m.next = "HUNT"
                with m.Elif(error):
                    self._answer(m, BUS_ERROR)
                with m.Else():
                    m.next = "STEP"
        with m.State("WRITE"):
            done, error = self._write_access(m, select_mem=self._is_mem)
            with m.If(done):
                with m.If(error):
                    self._answer(m, BUS_ERROR)
                with m.Elif(self._last_word):
                    self._answer(m, OK)
                with m.Else():
                    m.d.comb += self._first_byte.eq(1)
                    m.next = "STEP"
        # `_addr` += 4 a byte a cycle; the word read goes to the buffer a byte a cycle
        with m.State("STEP"):
            m.d.comb += [self._step.eq(1), self._advance.eq(1)]
            with m.If(self._byte == 3):
                with m.If(self._last_word):       # after a read: its data is buffered
                    self._answer(m, OK, data=True)
                with m.Else():
                    m.next = "EXECUTE"

    # -- replying ----------------------------------------------------------------------------

    def _reply(self, m):
        def send(m, byte):
            m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(byte),
                         self._advance.eq(self.tx.ready)]
            return self.tx.ready

        with m.State("ANSWER"):
            # a cycle after the decision to answer: what it decides are two registers and
            # the next state, and the status, count and counters it sets are loaded from
            # registers here (the UP5K's clock)
            m.d.comb += [self._set_status.eq(1), self._status_code.eq(self._answer_status),
                         self._drop_count.eq(~self._answer_data), self._restart.eq(1)]
            m.next = "REPLY_HEADER"
        with m.State("REPLY_HEADER"):     # sync, status, tag, count
            header = Cat(Const(SYNC_REPLY, 8), self._status, Const(0, 5), self._tag,
                         self._count)
            sent = send(m, header.word_select(self._byte, 8))
            with m.If(self._byte == 0):
                m.d.comb += self._crc_init.eq(sent)
            with m.Else():
                m.d.comb += self._crc_update.eq(sent)
            with m.If(sent & (self._byte == 3)):
                m.d.comb += self._restart.eq(1)
                with m.If(self._count == 0):
                    m.next = "REPLY_CRC"
                with m.Else():
                    m.next = "REPLY_LOAD"
        with m.State("REPLY_LOAD"):        # one cycle for the buffer's read port
            self._reply_read_address(m)
            m.next = "REPLY_DATA"
        with m.State("REPLY_DATA"):
            self._reply_read_address(m)
            sent = send(m, self._rd.data)
            m.d.comb += self._crc_update.eq(sent)
            with m.If(sent):
                with m.If((self._byte == 3) & self._last_word):
                    m.d.comb += self._restart.eq(1)
                    m.next = "REPLY_CRC"
                with m.Else():
                    m.next = "REPLY_LOAD"
        with m.State("REPLY_CRC"):
            sent = send(m, self._crc_byte)
            with m.If(sent & self._byte[0]):
                m.next = "HUNT"

    def _reply_read_address(self, m):
        """Read data from word ``_words``; INFO words from ``info_base + addr / 4``."""
        with m.If(self._is_info):
            info_word = self._info_base | (self._addr[2:5] + self._words[:3])
            m.d.comb += self._rd.addr.eq(Cat(self._byte, info_word))
