"""Slots of drained result rows, written (or accumulated into) as the array produces them."""
from amaranth.hdl import Array, Cat, DomainRenamer, Module, Mux, Signal
from amaranth.lib import data

from .block_ram import block_ram
from .fp32_adder import Fp32Adder
from .operand_buffer import OperandBuffer
from .platforms import is_ice40
from .register_copies import register_copies

__all__ = ["ResultBuffer", "STORAGES", "write_latency"]

#: Where a :class:`ResultBuffer` keeps its rows (its docstring has the details): ``"ram"`` a
#: RAM per lane behind a lookup pipeline; ``"registers"`` flip-flops; ``"shared_port"`` one
#: block RAM whose one read port serves both the accumulation and the reads.
STORAGES = ("ram", "registers", "shared_port")


def write_latency(fp32_adder_stages=1):
    """Cycles from presenting a write until a read command may see it: lookup, the RAM's
    data register and the stored-row register, then the sum (one cycle); or lookup,
    stored-row register, the three adder stages and an output register."""
    return 3 if fp32_adder_stages == 1 else 5


class ResultBuffer(OperandBuffer):
    """An :class:`~hw.operand_buffer.OperandBuffer` whose writes may add to what is stored.

    A slot holds one tile: word ``index`` is result row ``index`` (``lanes`` lanes of
    ``lane_width`` bits). A write with ``accumulate`` set adds its lanes to the stored ones;
    without it, it overwrites. The addition is two's complement, wrapping (int32 partial
    sums of a reduction split over several passes) or, with ``fp32`` set (only in buffers
    built with ``fp32=True``; ``lane_width`` 32), binary32 with :class:`~hw.fp32_adder.
    Fp32Adder` per lane: round to nearest even, subnormals kept, canonical NaN, ``-0 + -0 =
    -0``, ``x + -x = +0`` (fp16 tiles whose ``K`` is split, ``tb/golden.py``).

    Writes take one per cycle, no backpressure, and land :attr:`write_latency` (3) cycles
    after they are presented: cycle 0 looks the row up, cycle 1 registers the RAM's word as
    it is (nothing but the RAM before that register, so it can sit next to the RAM), cycle
    2 registers the stored value, cycle 3 adds and writes back. The adder sits between
    registers (old value and new row in, RAM write port out), so its path is as long as a
    processing element's accumulator loop and the buffer does not lower the array's clock.
    (Without the RAM's data register, the lookup path ran from the address register through
    the 512-bit-wide distributed RAM of a 16x16 build and across the die to the stored-row
    register: 10.5 ns, the critical path of that compute unit on the ECP5-85F.) Back-to-back
    updates of one row see each other: the lookup port is transparent to the write port (a
    write three cycles later), and a write one or two cycles later takes the sum being
    written, or the one written a cycle ago, instead of the stale word. The read side
    streams a slot's rows exactly as the operand buffer streams words.

    ``storage="registers"``: the rows are flip-flops read through a multiplexer, for
    shallow buffers on parts without distributed RAM (the iCE40), where yosys builds the
    block-RAM description from flip-flops anyway, plus the lookup and bypass registers of
    the block-RAM pipeline. A write is then added and stored one cycle after it is
    presented (the row read combinationally, so back-to-back updates of a row see each
    other without a bypass); :attr:`write_latency` stays the bound callers wait for. The
    read side is the same. UP5K build (4 rows of 128 bits): -520 FF and -260 LUT4 in the
    block alone (yosys ``-noflatten``), -79 logic cells after flattening and packing.

    ``storage="shared_port"``: the rows in one block RAM (one slot of ``depth`` >= 2
    rows, int32 lanes), read through a single port: a write looks its row up in the cycle
    it is presented, and its sum is written back in the next (no other register than the
    write's own; on the iCE40UP5K the 4x4 build's 4 rows take 8 EBR instead of 512
    flip-flops and their multiplexers). Writes to one row must come at least 2 cycles apart
    (an array's rows of one tile are distinct rows, and its tiles are ``rows`` cycles apart
    at least), and **reads must not overlap writes** in time: the port serves a write's
    lookup first, and the word a read holds (its ``words`` not yet taken) is the port's.
    With one slot they never do in a correct program: the STORE that reads the slot and
    the COMPUTEs that write it are ordered by the sequencer's tokens, as the data itself
    requires. :attr:`write_latency` stays the bound callers wait for. With ``lookahead``
    the writer also presents, a cycle ahead, the row it will write (``next_write``: valid,
    index): the row is looked up then and the write is added and written in its own cycle,
    without the write's register (``lanes * lane_width`` flip-flops); writes to one row
    must then come at least 2 cycles apart as before, and ``next_write`` must be exact.

    ``fp32_adder_stages=3`` (with ``fp32``, ``storage="ram"``): the binary32 adders are
    three register stages (:class:`~hw.fp32_adder.Fp32Adder` ``stages=3``), so the
    adder is no longer one cycle between the stored-row register and the RAM's write port
    (a ~27 MHz path on the ECP5), and the finished word is registered before it is written.
    Writes then land 5 cycles after they are presented (the int32 and overwrite results
    wait in registers to stay in order), and **writes to one row must come at least 4
    cycles apart**: a write 4 cycles after another to its row takes the word being written
    (bypass), one 5 or more cycles after reads it from the RAM (transparent port); a sum
    1 to 3 cycles behind is not ready. The array gives this: rows of one tile are distinct
    rows, and with these adders its ``last`` beats come at least ``max(rows, 4)`` (+ 3 in
    dual builds, whose int8 tiles drain 3 cycles sooner) cycles apart; in the accelerator
    COMPUTEs do not even overlap.

    ``write_domain``: the clock domain of the write side (``write``, the lookup and write
    ports, the adders); the read side is in ``sync`` (the opposite of the operand buffer's
    ``read_domain``), so the RAM's two sides are the crossing.

    Ports: as :class:`~hw.operand_buffer.OperandBuffer`, plus ``write.accumulate`` (and
    ``write.fp32`` when built with ``fp32=True``).
    """

    def __init__(self, *, lanes, lane_width=32, depth, slots=2, fp32=False, storage="ram",
                 fp32_adder_stages=1, write_domain="sync", lookahead=False):
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {STORAGES}, not {storage!r}")
        if storage == "shared_port":
            if slots != 1 or fp32 or not isinstance(depth, int) or depth < 2:
                raise ValueError(f"storage='shared_port' needs one slot of at least 2 rows "
                                 f"and int32 lanes, not slots={slots!r}, depth={depth!r}, "
                                 f"fp32={fp32!r}")
        if fp32_adder_stages not in (1, 3) or isinstance(fp32_adder_stages, bool):
            raise ValueError(f"fp32_adder_stages must be 1 or 3, not {fp32_adder_stages!r}")
        if fp32_adder_stages != 1 and not (fp32 and storage == "ram"):
            raise ValueError("fp32_adder_stages=3 needs fp32=True and storage='ram'")
        self.fp32_adder_stages = fp32_adder_stages
        if not isinstance(write_domain, str):
            raise TypeError(f"write_domain must be a clock domain name, not {write_domain!r}")
        if write_domain != "sync" and storage != "ram":
            raise ValueError("a write_domain other than sync needs storage='ram'")
        self.write_domain = write_domain
        if not isinstance(lookahead, bool):
            raise TypeError(f"lookahead must be True or False, not {lookahead!r}")
        if lookahead and storage != "shared_port":
            raise ValueError("lookahead needs storage='shared_port'")
        self.lookahead = lookahead
        #: cycles from presenting a write until a read command may see it
        self.write_latency = write_latency(fp32_adder_stages)
        self.storage = storage
        for name, value in (("lanes", lanes), ("lane_width", lane_width)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if not isinstance(fp32, bool):
            raise ValueError(f"fp32 must be True or False, not {fp32!r}")
        if fp32 and lane_width != 32:
            raise ValueError(f"fp32 accumulation needs 32-bit lanes, not {lane_width}")
        self.lanes, self.lane_width, self.fp32 = lanes, lane_width, fp32
        self._extra_write_fields = {"accumulate": 1, **({"fp32": 1} if fp32 else {})}
        super().__init__(width=lanes * lane_width, depth=depth, slots=slots)
        if lookahead:
            # (an OperandBuffer's signature plus one port, added after its construction)
            self.next_write = Signal(data.StructLayout({"valid": 1, "index": range(depth)}),
                                     name="next_write")

    def elaborate(self, platform):
        if self.storage == "ram":
            return self._elaborate_ram(platform)
        if self.storage == "shared_port":
            return self._elaborate_shared_port()
        m = Module()
        rows = Array(Signal(self.width, name=f"row_{n}") for n in range(self.slots * self.depth))
        # Write: add to the row as it is now and store, at the edge the write is presented
        # at (the array's output is a register already).
        write = self.write
        address = write.slot * self.depth + write.index
        with m.If(write.valid):
            m.d.sync += rows[address].eq(self._sum(m, write, rows[address]))
        # Read: as the block RAM's synchronous read port, but the address is what is
        # registered (a few flip-flops instead of a row's): the row then reads through the
        # multiplexer, and no write reaches a slot while it is read (the sequencer's
        # ordering, as for the RAM).
        port = _RegisterReadPort(range(len(rows)), self.width)
        read_addr = Signal.like(port.addr, name="read_addr_held")
        with m.If(port.en):
            m.d.sync += read_addr.eq(port.addr)
        m.d.comb += port.data.eq(rows[read_addr])
        self._read_path(m, port)
        return m

    def _elaborate_ram(self, platform):
        """``storage="ram"``: a RAM per lane, so each lane's write port has registers of
        its own (:meth:`_write_path`); the read side reads them all as one word."""
        m = Module()
        rams = []
        for lane in range(self.lanes):
            rams.append(block_ram(shape=self.lane_width, depth=self.slots * self.depth))
            m.submodules[f"ram_{lane}"] = rams[-1]
        self._write_path(m, rams, platform)
        port = _RegisterReadPort(range(self.slots * self.depth), self.width)
        for lane, ram in enumerate(rams):
            rd = ram.read_port(domain=self.read_domain)
            m.d.comb += [rd.addr.eq(port.addr), rd.en.eq(port.en),
                         port.data.word_select(lane, self.lane_width).eq(rd.data)]
        self._read_path(m, port)
        return m

    def _elaborate_shared_port(self):
        """``storage="shared_port"``: one block RAM, one read port for both sides."""
        m = Module()
        m.submodules.ram = ram = block_ram(shape=self.width, depth=self.depth, style="block")
        wr, shared = ram.write_port(), ram.read_port()
        write = self.write
        port = _RegisterReadPort(range(self.depth), self.width)
        if self.lookahead:
            # The row was looked up a cycle ago (``next_write``): the write adds the RAM's
            # word and is written back in the cycle it is presented, with no register.
            lookup, adding = self.next_write, write
        else:
            # Cycle 0 looks the row up and registers the write; cycle 1 adds the RAM's word
            # and writes the row back.
            lookup = write
            adding = Signal(self.write.shape(), name="pending")
            m.d.sync += adding.eq(write)
        m.d.comb += [
            shared.addr.eq(Mux(lookup.valid, lookup.index, port.addr)),
            shared.en.eq(lookup.valid | port.en),
            port.data.eq(shared.data),
            wr.addr.eq(adding.index), wr.en.eq(adding.valid),
            wr.data.eq(self._sum(m, adding, shared.data)),
        ]
        self._read_path(m, port)
        return m

    def _write_ports(self, m, rams, platform, before):
        """The lanes' write ports, addressed by a copy per lane of the write ``before``
        presents one cycle ahead (its row and valid bit, :func:`~hw.register_copies.
        register_copies`): one address register driving every lane's RAM was the array
        clock's critical path of the 16x16 ECP5 system (13.3 ns of routing across the die).
        Returns the ports; their ``data`` is the caller's."""
        row = Cat(before.slot * self.depth + before.index, before.valid)
        ports = []
        copies = register_copies(m, platform, self.write_domain, row, self.lanes,
                                 name="write_row")
        for ram, copy in zip(rams, copies, strict=True):
            wr = ram.write_port(domain=self.write_domain)
            m.d.comb += [wr.addr.eq(copy[:-1]), wr.en.eq(copy[-1])]
            ports.append(wr)
        return ports

    def _write_register(self, name):
        """A register of a write (``write``'s layout) whose ``valid`` bit alone resets: the
        row, the data and the flags count only with it. In the 16x16 ECP5 system the three
        write stages' 512-bit words were a third of the array domain's reset fan-out
        (1,209 of 3,684 flip-flops, one net across the die)."""
        layout = self.write.shape()
        assert layout["valid"].offset == 0 and layout["valid"].width == 1
        valid = Signal(name=f"{name}_valid")
        rest = Signal(layout.size - 1, name=f"{name}_rest", reset_less=True)
        return layout(Cat(valid, rest))

    def _sum(self, m, adding, stored, accumulate=None):
        """The word to store: ``adding``'s lanes added to ``stored``'s, or replacing them.
        With a pipelined adder, ``(word, the write it belongs to)`` ``fp32_adder_stages - 1``
        cycles later. ``accumulate``: a copy of ``adding.accumulate`` per lane to use
        instead of it (one-stage adders)."""
        delay = self.fp32_adder_stages - 1
        plain, sums = [], []
        for lane in range(self.lanes):
            part = slice(lane * self.lane_width, (lane + 1) * self.lane_width)
            total = (adding.data[part] + stored[part])[:self.lane_width]
            if self.fp32:
                adder = Fp32Adder(self.fp32_adder_stages)
                m.submodules[f"fp32_add_{lane}"] = DomainRenamer(self.write_domain)(adder)
                m.d.comb += [adder.a.eq(stored[part]), adder.b.eq(adding.data[part])]
                sums.append(adder.sum)
                if not delay:
                    total = Mux(adding.fp32, adder.sum, total)
            add = adding.accumulate if accumulate is None else accumulate[lane]
            plain.append(Mux(add, total, adding.data[part]))
        if not delay:
            return Cat(*plain)
        # The int32 and overwrite results (and the write's fields) wait for the adders.
        word, late = Cat(*plain), adding
        for n in range(delay):
            word_d = Signal(len(word), name=f"plain_d{n + 1}")
            late_d = self._write_register(f"adding_d{n + 1}")
            m.d[self.write_domain] += [word_d.eq(word), late_d.eq(late)]
            word, late = word_d, late_d
        use_sum = late.fp32 & late.accumulate
        lanes = [Mux(use_sum, sums[n], word[n * self.lane_width:(n + 1) * self.lane_width])
                 for n in range(self.lanes)]
        return Cat(*lanes), late

    def _write_path(self, m, rams, platform):
        lane_width = self.lane_width
        # Stage 0 looks the row up; then (one-stage adders) the RAM word, the stored word and
        # the sum; or (three-stage adders) the stored word, the adder stages, the result.
        looked_up = self._write_register("looked_up")
        adding = self._write_register("adding")
        stored = Signal(self.width, reset_less=True)      # data: the writes' valid bits
        result = Signal(self.width, reset_less=True)      # say when they count
        address = self.write.slot * self.depth + self.write.index
        local = m.d[self.write_domain]

        def lookups(ports):
            """Each lane's lookup of ``address``, its word a cycle later and transparent to
            the lane's write port; returns the lanes' words as one.

            Except on the iCE40 (block RAM only reads synchronously) each lane registers
            the address itself (:func:`~hw.register_copies.register_copies`) and reads its
            RAM asynchronously (distributed RAM): the same word in the same cycle, a write
            at that edge included. One address register (yosys merges the lanes' own) to
            all 16 lanes' RAMs was the array clock's critical path of the 16x16 ECP5
            system: 14.3 ns of routing across the die."""
            ice40 = is_ice40(platform)
            rows = [address] * self.lanes if ice40 else register_copies(
                m, platform, self.write_domain, address, self.lanes, name="lookup_row")
            words = []
            for ram, wr, row in zip(rams, ports, rows, strict=True):
                old = (ram.read_port(domain=self.write_domain, transparent_for=(wr,)) if ice40
                       else ram.read_port(domain="comb"))
                m.d.comb += old.addr.eq(row)
                words.append(old.data)
            return Cat(*words)
        if self.fp32_adder_stages == 1:
            # Stage 1 registers the RAM's word alone; stage 2 picks it or a sum written
            # since the lookup: the one being written now (1 behind) or a cycle ago (2).
            fetching = self._write_register("fetching")
            fetched = Signal(self.width, name="fetched", reset_less=True)
            ports = self._write_ports(m, rams, platform, fetching)
            written_word = Signal(self.width, name="written_word", reset_less=True)
            # The bypass choices are registered a cycle ahead (the rows are known then), so
            # no compare sits in front of the 512 multiplexers of a 16x16 build: the compare
            # and the fan-out across the die were that compute unit's next critical path
            # (10.8 ns on the ECP5). They, and the accumulate bit, are registered once per
            # lane: one register driving all 512 was the next (an 11.8 ns route across the
            # die in the 16x16 system, hw/register_copies.py).
            take_result = register_copies(                 # the row fetching reads is
                m, platform, self.write_domain, _same_row(fetching, looked_up),
                self.lanes, name="take_result")            # being written
            take_written = register_copies(                # ... was written a cycle ago
                m, platform, self.write_domain, _same_row(adding, looked_up),
                self.lanes, name="take_written")
            accumulate = register_copies(
                m, platform, self.write_domain, fetching.accumulate, self.lanes,
                name="accumulate")
            m.d.comb += result.eq(self._sum(m, adding, stored, accumulate))
            lane_words = []
            for lane in range(self.lanes):
                part = slice(lane * self.lane_width, (lane + 1) * self.lane_width)
                lane_words.append(Mux(take_result[lane], result[part],
                                      Mux(take_written[lane], written_word[part],
                                          fetched[part])))
            local += [looked_up.eq(self.write), fetching.eq(looked_up), adding.eq(fetching),
                      fetched.eq(lookups(ports)), written_word.eq(result),
                      stored.eq(Cat(*lane_words))]
            m.d.comb += [wr.data.eq(result.word_select(lane, lane_width))
                         for lane, wr in enumerate(ports)]
            return
        # the sum is registered before the RAM and the bypass take it: the adder's last
        # stage then ends in a register (it was the critical path of a dual 4x4 ECP5 build,
        # 53.8 MHz)
        word, late = self._sum(m, adding, stored)
        final = self._write_register("writing")
        local += [result.eq(word), final.eq(late)]
        ports = self._write_ports(m, rams, platform, late)
        # The write being stored now is the one ``looked_up`` must see (4 behind it): the RAM
        # has not got it yet.
        local += [looked_up.eq(self.write), adding.eq(looked_up),
                  stored.eq(Mux(_same_row(final, looked_up), result, lookups(ports)))]
        m.d.comb += [wr.data.eq(result.word_select(lane, lane_width))
                     for lane, wr in enumerate(ports)]


def _same_row(write, other):
    """``write`` is a valid write to the row ``other`` addresses."""
    return (write.slot == other.slot) & (write.index == other.index) & write.valid


class _RegisterReadPort:
    """What :meth:`OperandBuffer._read_path` uses of a memory read port: ``addr``, ``en``
    (in) and ``data`` (out, registered while ``en``)."""

    def __init__(self, addr_shape, width):
        self.addr = Signal(addr_shape, name="read_addr")
        self.en = Signal(name="read_en")
        self.data = Signal(width, name="read_data")
