"""On-chip RAM standing in for host memory: an AXI4 subordinate for the accelerator's DMA and
an AXI4-Lite subordinate for the host bridge, sharing one single-ported storage."""
from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In

from .axi import RESP_DECERR, RESP_OKAY, AxiLiteSignature, AxiSignature

__all__ = ["HostRam", "SPRAM_BYTES"]

#: One iCE40UP5K SB_SPRAM256KA: 16 K x 16 bits.
SPRAM_BYTES = 32 * 1024


class HostRam(wiring.Component):
    """``size`` bytes at byte address ``base`` with two ports.

    ``bus`` (AXI4, ``data_width`` bits, INCR bursts of full-width beats that stay inside
    their 4 KiB page as AXI requires; ``size``/``burst`` are not looked at) serves one burst
    at a time, one beat per cycle: a read's first beat comes two cycles after AR, a write's
    response one cycle after the last W. ``lite`` (AXI4-Lite, 32-bit) takes a read, or a
    write once both AW and W are valid, one at a time. Between bursts the two ports (and
    reads and writes of ``bus``) take turns, so neither starves. An access is chosen from
    the valids as registered a cycle before and taken (its ready raised) in the cycle after
    the choice: two cycles from a valid to its handshake at the earliest, with no valid on
    the path of a ready (see ``elaborate``). Beats outside ``[base, base + size)`` answer
    DECERR and change nothing.

    Storage: ``primitive="memory"`` infers block RAM (``amaranth.lib.memory``: EBR on
    ECP5 and iCE40); ``"spram"`` instances iCE40UP5K SB_SPRAM256KA blocks (16 K x 16 each,
    ``data_width / 16`` side by side, ``size`` / (that many x 32 KiB) deep), not simulable
    (a testbench may stand a model in for :meth:`_spram`).
    Either holds its read data until the next access. A read beat comes straight from the
    storage's output, or from one register that keeps it when the reader left it untaken
    while the next beat was read: a read starts whenever that register is empty, so the
    storage's read enable depends on registers alone, never on ``rready`` (the UP5K's
    clock; see ``elaborate``), and bursts still move a beat a cycle.

    Parameters
    ----------
    size : int
        Bytes, a power of two, at least one beat.
    data_width : int
        ``bus`` data width (32 to 256 bits).
    base : int
        Byte address of the first byte, a multiple of ``size``.
    addr_width : int
        Address width of both ports (32).
    primitive : str
        ``"memory"`` or ``"spram"``.
    """

    def __init__(self, *, size, data_width, base=0, addr_width=32, primitive="memory"):
        if data_width not in (32, 64, 128, 256):
            raise ValueError(f"data_width must be 32, 64, 128 or 256, not {data_width!r}")
        if (not isinstance(size, int) or size & (size - 1) or size < data_width // 8
                or size > 1 << addr_width):
            raise ValueError(f"size must be a power of two of at least one {data_width}-bit "
                             f"beat within the address space, not {size!r}")
        if not isinstance(base, int) or base % size or base + size > 1 << addr_width:
            raise ValueError(f"base must be a multiple of size ({size:#x}) inside the "
                             f"address space, not {base!r}")
        if primitive not in ("memory", "spram"):
            raise ValueError(f"primitive must be 'memory' or 'spram', not {primitive!r}")
        if primitive == "spram":
            bank_bytes = SPRAM_BYTES * data_width // 16
            if size % bank_bytes or size // SPRAM_BYTES > 4 or size // bank_bytes > 2:
                raise ValueError(f"an SPRAM host RAM of {data_width}-bit words takes "
                                 f"{data_width // 16} SB_SPRAM256KA per {bank_bytes // 1024} "
                                 f"KiB bank, at most 2 banks of the UP5K's 4 blocks; size "
                                 f"{size} does not fit that")
        self.size, self.data_width, self.base = size, data_width, base
        self.addr_width, self.primitive = addr_width, primitive
        self.beat_bytes = data_width // 8
        self.lines = size // self.beat_bytes
        super().__init__({
            "bus": In(AxiSignature(addr_width=addr_width, data_width=data_width)),
            "lite": In(AxiLiteSignature(addr_width=addr_width)),
        })

    # -- storage -------------------------------------------------------------------------

    def _storage(self, m, line, enable, write_mask, write_data):
        """Single-ported storage: with ``enable``, write the bytes of ``write_mask`` (or read
        when it is 0) at ``line``; read data appears the next cycle."""
        read_data = Signal(self.data_width)
        if self.primitive == "memory":
            m.submodules.storage = storage = Memory(shape=self.data_width, depth=self.lines,
                                                    init=[])
            wp = storage.write_port(granularity=8)
            rp = storage.read_port()
            m.d.comb += [wp.addr.eq(line), wp.data.eq(write_data),
                         wp.en.eq(Mux(enable, write_mask, 0)),
                         rp.addr.eq(line), rp.en.eq(enable), read_data.eq(rp.data)]
            return read_data
        lanes = self.data_width // 16
        banks = self.size // (SPRAM_BYTES * lanes)
        bank = line[14:] if banks > 1 else Const(0, 1)
        bank_q = Signal.like(bank)               # the bank whose output holds the data
        with m.If(enable):
            m.d.sync += bank_q.eq(bank)
        outputs = []
        for b in range(banks):
            words = []
            for lane in range(lanes):
                mask = write_mask[2 * lane:2 * lane + 2]
                words.append(self._spram(
                    m, f"spram_{b}_{lane}", address=line[:14],
                    data_in=write_data[16 * lane:16 * lane + 16],
                    mask=Cat(mask[0], mask[0], mask[1], mask[1]), write=write_mask.any(),
                    select=enable & (bank == b)))
            outputs.append(Cat(*words))
        m.d.comb += read_data.eq(Mux(bank_q, outputs[-1], outputs[0]) if banks > 1
                                 else outputs[0])
        return read_data

    def _spram(self, m, name, *, address, data_in, mask, write, select):
        """One SB_SPRAM256KA (14-bit ``address``, 16-bit ``data_in``, a ``mask`` bit per
        nibble); returns its 16-bit output, which changes only on a ``select``-ed read."""
        out = Signal(16)
        m.submodules[name] = Instance(
            "SB_SPRAM256KA", i_ADDRESS=address, i_DATAIN=data_in, i_MASKWREN=mask,
            i_WREN=write, i_CHIPSELECT=select, i_CLOCK=ClockSignal("sync"),
            i_STANDBY=0, i_SLEEP=0, i_POWEROFF=1, o_DATAOUT=out)
        return out

    # -- ports ---------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        shift = self.beat_bytes.bit_length() - 1
        size_shift = self.size.bit_length() - 1
        line_bits = max(1, self.lines.bit_length() - 1)

        def in_range(addr):
            return addr[size_shift:] == self.base >> size_shift

        line = Signal(line_bits)
        enable = Signal()
        write_mask = Signal(self.beat_bytes)
        write_data = Signal(self.data_width)
        read_data = self._storage(m, line, enable, write_mask, write_data)

        bus, lite = self.bus, self.lite
        addr = Signal(self.addr_width)            # current beat's byte address
        # the next beat's: only the beat-in-page bits count, a burst stays in its page
        page = min(12, self.addr_width)
        next_beat = addr[shift:page].eq(addr[shift:page] + 1)
        beats = Signal(9)                         # beats still to issue
        issuing = Signal()                        # beats != 0, a register (the read enables)
        # whether the burst's beats are inside the RAM: a burst stays in its 4 KiB page, so
        # with a RAM of whole pages that is its address's, held (else worked out per beat)
        inside = Signal()
        burst_in_range = (lambda addr: inside) if self.size >= 4096 else in_range
        ident = Signal.like(bus.arid)
        error = Signal()                          # some beat of a write burst was outside
        prefer_read = Signal()                    # turn-taking between bursts
        prefer_lite = Signal()

        # Read beats wait in two places: the storage's output (`out_*`: it holds a beat until
        # the next access) and, older, one register (`held_*`). A beat is read whenever the
        # register is empty, whether or not the beat on the output is taken in that cycle:
        # if it is not, it moves into the register. So a read's enable (on the UP5K an
        # SPRAM's chip select, behind the bank and address logic) never waits for `rready`,
        # which the reader decides late in the cycle (from its FIFO's level), and the beats
        # still come one a cycle.
        # `rvalid`, `rlast` and `rresp` are registers too, loaded with what the beat on the
        # bus will be (the reader's handshake logic starts from flip-flops).
        out_valid, out_last, out_resp = Signal(), Signal(), Signal(2)
        held_valid, held_last, held_resp = Signal(), Signal(), Signal(2)
        held_data = Signal(self.data_width)
        # next values: kept unless the READ state says otherwise
        out_valid_next, out_last_next, out_resp_next = Signal(), Signal(), Signal(2)
        held_valid_next, move_to_held = Signal(), Signal()
        m.d.comb += [out_valid_next.eq(out_valid), out_last_next.eq(out_last),
                     out_resp_next.eq(out_resp), held_valid_next.eq(held_valid)]
        held_last_next = Mux(move_to_held, out_last, held_last)
        held_resp_next = Mux(move_to_held, out_resp, held_resp)
        m.d.sync += [out_valid.eq(out_valid_next), out_last.eq(out_last_next),
                     out_resp.eq(out_resp_next), held_valid.eq(held_valid_next),
                     held_last.eq(held_last_next), held_resp.eq(held_resp_next),
                     bus.rvalid.eq(held_valid_next | out_valid_next),
                     bus.rlast.eq(Mux(held_valid_next, held_last_next, out_last_next)),
                     bus.rresp.eq(Mux(held_valid_next, held_resp_next, out_resp_next))]
        with m.If(move_to_held):
            m.d.sync += held_data.eq(read_data)
        m.d.comb += [bus.rid.eq(ident), bus.rdata.eq(Mux(held_valid, held_data, read_data))]

        lane = Signal(range(max(2, self.beat_bytes // 4)))
        lane_bits = shift - 2
        lite_data = read_data.word_select(lane, 32) if lane_bits > 0 else read_data

        # IDLE chooses the next access from the requests as registered a cycle before, and
        # the TAKE state after it raises its ready: the masters' valids (and what decides
        # them) stay off the paths of what a choice or a handshake loads, and the other way
        # round (the UP5K's clock). A valid stays high until its handshake (AXI), so nothing
        # is lost; an access takes two cycles more. (A master that withdrew its request
        # anyway, e.g. the host bridge after its bus timeout, is seen by the TAKE state and
        # not waited for.)
        lite_write, lite_read = Signal(), Signal()
        bus_write, bus_read = Signal(), Signal()
        m.d.sync += [lite_write.eq(lite.awvalid & lite.wvalid), lite_read.eq(lite.arvalid),
                     bus_write.eq(bus.awvalid), bus_read.eq(bus.arvalid)]
        with m.FSM():
            with m.State("IDLE"):
                lite_any = lite_write | lite_read
                bus_any = bus_write | bus_read
                with m.If(lite_any & (prefer_lite | ~bus_any)):
                    m.d.sync += prefer_lite.eq(0)
                    with m.If(lite_write):
                        m.next = "TAKE_LITE_WRITE"
                    with m.Else():
                        m.next = "TAKE_LITE_READ"
                with m.Elif(bus_any):
                    m.d.sync += prefer_lite.eq(1)
                    with m.If(bus_read & (prefer_read | ~bus_write)):
                        m.d.sync += prefer_read.eq(0)
                        m.next = "TAKE_READ"
                    with m.Else():
                        m.d.sync += prefer_read.eq(1)
                        m.next = "TAKE_WRITE"
            with m.State("TAKE_LITE_WRITE"):
                m.next = "IDLE"
                with m.If(lite.awvalid & lite.wvalid):
                    self._lite_write(m, lite, line, enable, write_mask, write_data, in_range,
                                     shift, lane_bits)
                    m.next = "LITE_B"
            with m.State("TAKE_LITE_READ"):
                m.next = "IDLE"
                with m.If(lite.arvalid):
                    m.d.comb += [lite.arready.eq(1), line.eq(lite.araddr[shift:]),
                                 enable.eq(in_range(lite.araddr))]
                    if lane_bits > 0:
                        m.d.sync += lane.eq(lite.araddr[2:shift])
                    m.d.sync += lite.rresp.eq(Mux(in_range(lite.araddr), RESP_OKAY,
                                                  RESP_DECERR))
                    m.next = "LITE_R"
            with m.State("TAKE_READ"):
                m.next = "IDLE"
                with m.If(bus.arvalid):
                    m.d.comb += bus.arready.eq(1)
                    m.d.sync += [addr.eq(bus.araddr), beats.eq(bus.arlen + 1),
                                 issuing.eq(1), ident.eq(bus.arid),
                                 inside.eq(in_range(bus.araddr))]
                    m.next = "READ"
            with m.State("TAKE_WRITE"):
                m.next = "IDLE"
                with m.If(bus.awvalid):
                    m.d.comb += bus.awready.eq(1)
                    m.d.sync += [addr.eq(bus.awaddr), ident.eq(bus.awid), error.eq(0),
                                 inside.eq(in_range(bus.awaddr))]
                    m.next = "WRITE"
            with m.State("LITE_R"):
                m.d.comb += [lite.rvalid.eq(1), lite.rdata.eq(lite_data)]
                with m.If(lite.rready):
                    m.next = "IDLE"
            with m.State("LITE_B"):
                m.d.comb += lite.bvalid.eq(1)
                with m.If(lite.bready):
                    m.next = "IDLE"
            with m.State("READ"):
                issue = issuing & ~held_valid
                with m.If(held_valid):
                    with m.If(bus.rready):
                        m.d.comb += held_valid_next.eq(0)
                with m.Elif(out_valid & ~bus.rready & issue):
                    m.d.comb += [held_valid_next.eq(1), move_to_held.eq(1)]
                with m.If(issue):
                    m.d.comb += [line.eq(addr[shift:]), enable.eq(burst_in_range(addr)),
                                 out_valid_next.eq(1), out_last_next.eq(beats == 1),
                                 out_resp_next.eq(Mux(burst_in_range(addr), RESP_OKAY,
                                                      RESP_DECERR))]
                    m.d.sync += [next_beat, beats.eq(beats - 1), issuing.eq(beats != 1)]
                with m.Elif(~held_valid & bus.rready):
                    m.d.comb += out_valid_next.eq(0)
                with m.If(bus.rvalid & bus.rready & bus.rlast):
                    m.next = "IDLE"
            with m.State("WRITE"):
                m.d.comb += [bus.wready.eq(1), line.eq(addr[shift:]),
                             enable.eq(bus.wvalid & burst_in_range(addr)),
                             write_mask.eq(bus.wstrb), write_data.eq(bus.wdata)]
                with m.If(bus.wvalid):
                    m.d.sync += next_beat
                    with m.If(~burst_in_range(addr)):
                        m.d.sync += error.eq(1)
                    with m.If(bus.wlast):
                        m.next = "WRITE_B"
            with m.State("WRITE_B"):
                m.d.comb += [bus.bvalid.eq(1), bus.bid.eq(ident),
                             bus.bresp.eq(Mux(error, RESP_DECERR, RESP_OKAY))]
                with m.If(bus.bready):
                    m.next = "IDLE"
        return m

    def _lite_write(self, m, lite, line, enable, write_mask, write_data, in_range, shift,
                    lane_bits):
        ok = in_range(lite.awaddr)
        lane = lite.awaddr[2:shift] if lane_bits > 0 else Const(0, 1)
        m.d.comb += [lite.awready.eq(1), lite.wready.eq(1), line.eq(lite.awaddr[shift:]),
                     enable.eq(ok), write_mask.eq(lite.wstrb << (lane * 4)),
                     write_data.eq(Cat(*[lite.wdata] * (self.data_width // 32)))]
        m.d.sync += lite.bresp.eq(Mux(ok, RESP_OKAY, RESP_DECERR))
