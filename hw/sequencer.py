"""Descriptor fetch, checking, dispatch and the dependency tokens between the units."""
from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .bit_ops import at_least
from .block_ram import BlockRamFifo
from .csr_map import ERROR_CODES
from .descriptor_gather import DescriptorGather
from .dma_reader import dma_command_layout
from .isa import COMMON_FIELDS, DESCRIPTOR_BYTES, FIELDS, Opcode
from .store_unit import StoreMode
from .width_converter import BeatsToWords

__all__ = ["Sequencer", "ERROR", "SPAN_MULTIPLIERS", "span_steps"]

#: How the descriptor check multiplies ``(rows - 1) * pitch``: a hard multiplier (``"dsp"``),
#: shifted copies summed by adders (``"lut"``), or one shift and add a cycle (``"serial"``,
#: 32-bit buses only, whose sequencer checks one descriptor at a time)
SPAN_MULTIPLIERS = ("dsp", "lut", "serial")


def span_steps(depth, rows):
    """Bits of the rows operand of the span multiply (``rows - 1`` of a LOAD of up to
    ``max(depth, 3)`` rows or a STORE of the array's ``rows``): the cycles a ``"serial"``
    multiply takes."""
    return max((max(depth, 3) - 1).bit_length(), (rows - 1).bit_length())

#: name -> code, from the register table's error list
ERROR = {name: code for code, (name, _) in ERROR_CODES.items()}
_FETCH_BATCH = 4          # descriptors per fetch DMA command
_QUEUE_DEPTH = 8          # descriptors buffered, and commands per unit queue


def _less(a, b_inverted):
    """``a < b`` (unsigned) given ``b`` with every bit inverted: ``a + ~b + 1`` carries out
    exactly when ``a >= b``. Synthesis builds ``a < b`` as that sum too, with a LUT
    inverting each bit of ``b`` (on the iCE40 the carry chain's inputs cannot take it):
    given ``~b`` from a register, the inverters are the register's own LUTs."""
    width = max(len(a), len(b_inverted))
    return ~(a + _ones_above(b_inverted, width) + 1)[width]


def _greater(a, b_inverted):
    """``a > b`` (unsigned) given ``~b``, as :func:`_less`: ``a + ~b`` carries out."""
    width = max(len(a), len(b_inverted))
    return (a + _ones_above(b_inverted, width))[width]


def _ones_above(inverted, width):
    """An inverted value widened to ``width`` bits: the zeros above it inverted too."""
    extra = width - len(inverted)
    return Cat(inverted, Const((1 << extra) - 1, extra)) if extra else inverted


def _field(descriptor, opcode, name):
    for field in (*COMMON_FIELDS, *FIELDS.get(opcode, ())):
        if field.name == name:
            return descriptor[field.bit:field.bit + field.width]
    raise KeyError(name)


class Sequencer(wiring.Component):
    """Runs a descriptor program: fetches, checks, dispatches, orders, and reports.

    ``start`` (a pulse) first checks the descriptor table ``[desc_addr, desc_addr + 32 *
    desc_count)`` (one cycle, ``busy`` already high): ``desc_addr`` 32-byte aligned, else
    ``MISALIGNED``; the table inside the DMA window and below ``2**addr_width``, else
    ``OUT_OF_WINDOW``; either stops the job before anything is fetched. It then fetches
    ``desc_count`` descriptors from ``desc_addr`` in batches of four through ``fetch_cmd`` /
    ``fetch_data`` (a DMA reader shared with the LOAD unit; a batch is only requested when
    the descriptor queue has room for it, so the reader is never held waiting). Each
    descriptor is checked before dispatch: known opcode, sizes in range, addresses aligned
    to the bus, pitches aligned to the bus or, for rows narrower than a beat, equal to the
    row size (packed rows, ``docs/isa.md``), the whole footprint
    (every whole beat the DMA touches) inside ``[window_base, window_limit)``. The first
    failing check stops the job with its error code; nothing more is dispatched. The check
    takes three register stages between the queue and dispatch (``_check_stages``): one
    descriptor a cycle, three cycles of latency.

    LOAD, COMPUTE and STORE commands go to per-unit queues and run concurrently. Before a
    unit starts a command it takes the tokens its ``wait_*`` flags ask for (counting
    semaphores LOAD<->COMPUTE and COMPUTE<->STORE); when the unit reports the command done
    it gives the tokens its ``signal_*`` flags name. FENCE and END wait for all queues to be
    empty and all units idle; END then sets ``done``. ``unit_error`` (a DMA bus error or
    watchdog, with its code) also stops the job.

    Parameters: array ``rows``/``cols``, ``beat_bytes`` of the bus, buffer ``depth``,
    ``slots``, ``addr_width``, ``datapaths``.
    """

    def __init__(self, *, rows, cols, beat_bytes, depth, slots, addr_width, datapaths,
                 lane_bytes, param_slots=None, span_multiplier="dsp"):
        if span_multiplier not in SPAN_MULTIPLIERS:
            raise ValueError(f"span_multiplier must be one of {SPAN_MULTIPLIERS}, not "
                             f"{span_multiplier!r}")
        if span_multiplier == "serial" and DESCRIPTOR_BYTES // beat_bytes < 8:
            raise ValueError(f"span_multiplier='serial' needs a bus of 4 bytes or fewer (one "
                             f"descriptor checked at a time), not {beat_bytes}")
        self.span_multiplier = span_multiplier
        param_slots = 2 * slots if param_slots is None else param_slots
        self.param_slots = param_slots
        self.rows, self.cols, self.beat_bytes = rows, cols, beat_bytes
        self.depth, self.slots, self.addr_width = depth, slots, addr_width
        self.datapaths, self.lane_bytes = datapaths, lane_bytes
        slot = range(slots)
        super().__init__({
            "start": In(1), "desc_addr": In(64), "desc_count": In(32),
            "window_base": In(64), "window_limit": In(64),
            "busy": Out(1), "done": Out(1), "error": Out(1), "error_code": Out(8),
            "unit_error": In(1), "unit_error_code": In(8),
            "fetch_cmd": Out(stream.Signature(dma_command_layout(addr_width))),
            "fetch_data": In(stream.Signature(data.StructLayout({"data": 8 * beat_bytes,
                                                                 "last": 1}))),
            "load_cmd": Out(stream.Signature(data.StructLayout({
                "target": range(3), "slot": range(param_slots), "addr": addr_width,
                "pitch": addr_width, "count": 16}))),
            "load_busy": In(1),
            "compute_cmd": Out(stream.Signature(data.StructLayout({
                "a_slot": slot, "b_slot": slot, "k": range(depth + 1), "acc_slot": slot,
                "accumulate": 1, "fp16": 1}))),
            "compute_busy": In(1),
            "store_cmd": Out(stream.Signature(data.StructLayout({
                "slot": slot, "addr": addr_width, "pitch": addr_width, "mode": StoreMode,
                "relu": 1, "bias": 1, "param_slot": range(param_slots)}))),
            "store_busy": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        running = Signal()
        checking = Signal()      # the start's table check
        m.d.comb += self.busy.eq(running | checking)

        # --- fetch: batches of descriptors into a queue --------------------------------------
        # The queue holds beats and the descriptors are gathered behind it: a block RAM as
        # wide as a beat, not as a descriptor (iCE40, 64-bit bus: 4 EBR instead of 16).
        beats = DESCRIPTOR_BYTES // self.beat_bytes
        # (one more word than the beats: the RAM's part is then a power of two)
        m.submodules.descriptors = queue = BlockRamFifo(width=8 * self.beat_bytes,
                                                        depth=_QUEUE_DEPTH * beats + 1)
        if beats >= 8:
            # one descriptor checked at a time in the gather's register (_check_stages):
            # only the bits the check and the unit queues read; the next one's first beat
            # a cycle after dispatch takes it (the queue's read enable, a register)
            gather = DescriptorGather(8 * self.beat_bytes, self._kept_fields(),
                                      ready_registered=True)
        else:
            gather = BeatsToWords(8 * self.beat_bytes, beats)
        m.submodules.gather = gather
        fetched = self.fetch_data
        # (a descriptor is always `beats` beats: the stream's `last` is not needed)
        # A fetched beat always finds room: a batch is fetched only when ``in_flight`` (the
        # descriptors fetched or being fetched and not yet popped, whose beats are all the
        # queue can hold) leaves room for it. So the beats are taken unconditionally, which
        # keeps the queue's level off the read data's handshake: ``rready`` reaches the
        # host RAM's read enables (the SPRAM chip selects on the iCEBreaker).
        m.d.comb += [queue.w_data.eq(fetched.payload.data), queue.w_en.eq(fetched.valid),
                     fetched.ready.eq(1), gather.i.valid.eq(queue.r_rdy),
                     gather.i.payload.data.eq(queue.r_data), queue.r_en.eq(gather.i.ready)]
        next_addr = Signal(self.addr_width)
        # descriptors still to fetch: a table of 2**(addr_width - 4) or more never starts
        # (``_table_code``), so its count fits addr_width - 4 bits
        to_fetch = Signal(self.addr_width - 4)
        in_flight = Signal(range(_QUEUE_DEPTH + 1))   # fetched or being fetched, not popped
        # min(to_fetch, batch size), a register loaded a cycle after ``to_fetch`` (no fetch
        # is asked for in that cycle: ``just_fetched``): its compare and multiplexer are off
        # the paths of ``to_fetch``'s subtract, the next address and the fetch command
        batch = Signal(range(_FETCH_BATCH + 1))
        m.d.sync += batch.eq(Mux(at_least(to_fetch, _FETCH_BATCH), _FETCH_BATCH, to_fetch))
        just_fetched = Signal()
        fetch_more = Signal()       # to_fetch != 0, a register: off the reader's start path
        fetch = self.fetch_cmd
        m.d.comb += [
            fetch.valid.eq(running & fetch_more & ~just_fetched &
                           ~at_least(in_flight, _QUEUE_DEPTH - _FETCH_BATCH + 1)),
            fetch.payload.addr.eq(next_addr), fetch.payload.pitch.eq(DESCRIPTOR_BYTES),
            fetch.payload.rows.eq(batch),
            fetch.payload.row_beats.eq(DESCRIPTOR_BYTES // self.beat_bytes),
        ]
        # A fetch's handshake adds its batch; descriptors leave the check stages when
        # dispatch takes one (``consume``) or a restart drops what they hold (never in a
        # cycle with either of the others). The handshake and ``consume`` are decided late
        # in the cycle: they pick among sums made without them.
        consume = Signal()       # dispatch takes the checked descriptor
        dropped = Signal(2)
        fetched_now = fetch.valid & fetch.ready
        m.d.sync += just_fetched.eq(fetched_now)
        with_batch = Signal.like(in_flight)
        m.d.comb += with_batch.eq(in_flight + batch)
        m.d.sync += in_flight.eq(Mux(fetched_now,
                                     Mux(consume, with_batch - 1, with_batch),
                                     Mux(consume, in_flight - 1, in_flight - dropped)))
        with m.If(fetched_now):
            m.d.sync += [to_fetch.eq(to_fetch - batch),
                         fetch_more.eq(at_least(to_fetch, _FETCH_BATCH + 1)),
                         next_addr.eq(next_addr + batch * DESCRIPTOR_BYTES)]

        # --- unit queues and tokens ----------------------------------------------------------
        queues = {}
        for unit, port in (("load", self.load_cmd), ("compute", self.compute_cmd),
                           ("store", self.store_cmd)):
            fifo = BlockRamFifo(width=len(port.payload.as_value()) + 4, depth=_QUEUE_DEPTH)
            m.submodules[f"{unit}_queue"] = fifo
            queues[unit] = fifo
        tokens = {name: Signal(8, name=f"tokens_{name}") for name in ("l2c", "c2l", "c2s", "s2c")}
        takes = {name: Signal(name=f"take_{name}") for name in tokens}
        gives = {name: Signal(name=f"give_{name}") for name in tokens}
        restart = Signal()       # a new job starts with no tokens left from the last one
        # whether each count is non-zero, kept in a register beside it: the units' fronts
        # test it with no 8-bit compare in front of their command's valid
        available = {name: Signal(name=f"tokens_{name}_available") for name in tokens}
        for name, count in tokens.items():
            with m.If(restart):
                m.d.sync += [count.eq(0), available[name].eq(0)]
            with m.Elif(gives[name] != takes[name]):
                # one adder of +1 or -1 (2**8 - 1), not one for the give and one for the take
                m.d.sync += [count.eq(count + Mux(gives[name], 1, 0xFF)),
                             available[name].eq(gives[name] | at_least(count, 2))]
        # (unit, its port, busy input, token to wait from prev, from next, give prev, next)
        chains = (("load", self.load_cmd, self.load_busy, None, "c2l", None, "l2c"),
                  ("compute", self.compute_cmd, self.compute_busy, "l2c", "s2c", "c2l", "c2s"),
                  ("store", self.store_cmd, self.store_busy, "c2s", None, "s2c", None))
        idle_units = []
        for unit, port, busy, wait_prev, wait_next, give_prev, give_next in chains:
            idle_units.append(self._unit_front(m, queues[unit], port, busy, available, takes,
                                               gives, wait_prev, wait_next, give_prev,
                                               give_next, unit))
        all_idle = Cat(*idle_units).all()

        # --- check (three register stages), then dispatch ------------------------------------
        base_inverted, limit_inverted = self._clamped_window(m)
        d, head_valid, check_code, check_bad, kind, stages_dropped = self._check_stages(
            m, gather.o, consume, restart, base_inverted, limit_inverted)
        table_code = self._table_code(m, base_inverted, limit_inverted)
        table_code_q = Signal.like(table_code, name="table_code_q")
        m.d.comb += dropped.eq(stages_dropped)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.comb += restart.eq(1)
                    m.d.sync += [self.done.eq(0), self.error.eq(0),
                                 self.error_code.eq(0), next_addr.eq(self.desc_addr),
                                 to_fetch.eq(self.desc_count[:len(to_fetch)]),
                                 fetch_more.eq(self.desc_count[:len(to_fetch)] != 0)]
                    with m.If(self.desc_count == 0):
                        m.d.sync += self.done.eq(1)
                    with m.Else():
                        m.next = "TABLE"
            with m.State("TABLE"):
                # the table's check registered, decided on in the next cycle (its adder and
                # window compares are off the paths of what the decision loads)
                m.d.comb += checking.eq(1)
                m.d.sync += table_code_q.eq(table_code)
                m.next = "TABLE_CHECK"
            with m.State("TABLE_CHECK"):
                m.d.comb += checking.eq(1)
                with m.If(table_code_q != 0):
                    m.d.sync += [self.error.eq(1), self.error_code.eq(table_code_q)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += running.eq(1)
                    m.next = "DISPATCH"
            with m.State("DISPATCH"):
                with m.If(head_valid):
                    with m.If(check_bad):
                        m.d.sync += [self.error.eq(1), self.error_code.eq(check_code)]
                        m.next = "ABORT"
                    with m.Elif(kind[Opcode.FENCE] | kind[Opcode.END]):
                        with m.If(all_idle):
                            m.d.comb += consume.eq(1)
                            with m.If(kind[Opcode.END]):
                                m.d.sync += [self.done.eq(1), running.eq(0)]
                                m.next = "IDLE"
                    with m.Else():
                        for unit, op in (("load", Opcode.LOAD), ("compute", Opcode.COMPUTE),
                                         ("store", Opcode.STORE)):
                            with m.If(kind[op]):
                                fifo = queues[unit]
                                m.d.comb += [fifo.w_en.eq(fifo.w_rdy),
                                             consume.eq(fifo.w_rdy)]
            with m.State("ABORT"):
                # stop everything new; wait for what runs to finish, then go idle
                with m.If(all_idle):
                    m.d.sync += running.eq(0)
                    m.next = "IDLE"
        # Each queue's word is its decoding of the checked descriptor whatever the opcode
        # (only w_en picks the queue): no gates zeroing it for the other opcodes.
        for unit, op in (("load", Opcode.LOAD), ("compute", Opcode.COMPUTE),
                         ("store", Opcode.STORE)):
            m.d.comb += queues[unit].w_data.eq(
                self._decode(m, d, op, getattr(self, f"{unit}_cmd")))
        with m.If(self.unit_error & running & ~self.error):
            m.d.sync += [self.error.eq(1), self.error_code.eq(self.unit_error_code)]
        return m

    def _kept_fields(self):
        """What the check and the unit queues read of a descriptor, as
        :class:`DescriptorGather` keeps it: each field in the low bits a check compares
        (with constants up to ``2**bits``) or a unit is given (only values the check
        passed), plus a flag for its higher bits. The opcode in the bits of the largest
        (every check compares it for equality), slots in those of ``max(slots,
        param_slots) - 1``, ``count`` / ``k`` in those of ``max(depth, 3)`` (the largest a
        check lets through), ``pitch`` and ``addr`` in ``addr_width`` bits; the rest
        whole. Fields that overlap another's bits in another opcode are kept whole; bits
        no field names (reserved) are dropped."""
        slot_bits = max(1, (max(self.slots, self.param_slots) - 1).bit_length())
        needs = {"opcode": max(op.value for op in Opcode).bit_length(),
                 "count": max(self.depth, 3).bit_length(), "k": max(self.depth, 3).bit_length(),
                 "pitch": self.addr_width, "addr": self.addr_width}
        assert max(*self._load_row_bytes(), 4 * self.cols) <= 1 << self.addr_width
        shapes = {}        # (bit, width) -> low bits kept
        for field in (*COMMON_FIELDS, *(f for fields in FIELDS.values() for f in fields)):
            low = slot_bits if field.name.endswith("slot") else needs.get(field.name,
                                                                          field.width)
            key = (field.bit, field.width)
            shapes[key] = max(shapes.get(key, 0), low)
        kept = []
        for bit, width in sorted(shapes):
            if kept and bit < kept[-1][0] + kept[-1][1]:     # overlaps: one whole range
                start = kept[-1][0]
                end = max(start + kept[-1][1], bit + width)
                kept[-1] = (start, end - start, end - start)
            else:
                kept.append((bit, width, shapes[bit, width]))
        return tuple(kept)

    def _decode(self, m, d, opcode, port):
        """The unit command word: the port's payload fields (same names as the ISA's), then
        the four dependency flags."""
        payload = Signal(port.payload.shape(), name=f"{opcode.name.lower()}_decoded")
        for name, _ in port.payload.shape():
            m.d.comb += getattr(payload, name).eq(_field(d, opcode, name))
        flags = Cat(*(_field(d, opcode, name) for name in
                      ("wait_prev", "wait_next", "signal_prev", "signal_next")))
        return Cat(payload.as_value(), flags)

    def _clamped_window(self, m):
        """The DMA window as the checks compare it: registered, clamped to ``2**addr_width``
        (addresses are below it), every bit inverted for :func:`_less` and :func:`_greater`
        (the four comparisons with it need no inverters: -63 logic cells on the
        iCE40UP5K build)."""
        aw = self.addr_width
        base_inverted = Signal(aw + 1, name="window_base_inverted")
        limit_inverted = Signal(aw + 1, name="window_limit_inverted")
        m.d.sync += [base_inverted.eq(~Mux(at_least(self.window_base, (1 << aw) + 1), 1 << aw,
                                           self.window_base)),
                     limit_inverted.eq(~Mux(at_least(self.window_limit, (1 << aw) + 1), 1 << aw,
                                            self.window_limit))]
        return base_inverted, limit_inverted

    def _table_code(self, m, base_inverted, limit_inverted):
        """The descriptor table's error code (0 if it may be fetched), from the registers: a
        32-byte aligned start, ``[desc_addr, desc_addr + 32 * desc_count)`` inside the
        clamped window (``desc_count != 0``). A count of ``2**(addr_width - 4)`` or more
        reaches past ``2**(addr_width + 1)``, so only its low bits need adding."""
        aw = self.addr_width
        low = self.desc_addr[:aw]
        count_bits = aw - 4
        end = Signal(aw + 2, name="table_end")
        m.d.comb += end.eq(low + (self.desc_count[:count_bits] << 5))
        beyond = ((self.desc_addr >> aw) != 0) | ((self.desc_count >> count_bits) != 0)
        code = Signal(8, name="table_code")
        with m.If(self.desc_addr[:5] != 0):
            m.d.comb += code.eq(ERROR["MISALIGNED"])
        with m.Elif(beyond | _less(low, base_inverted) | _greater(end, limit_inverted)):
            m.d.comb += code.eq(ERROR["OUT_OF_WINDOW"])
        return code

    def _check_stages(self, m, descriptors, consume, restart, base_inverted, limit_inverted):
        """The descriptor check as three register stages between the queue and dispatch.

        Stage 0 registers the descriptor with ``rows - 1`` (LOAD: rows = ``count``; STORE:
        the array's rows), so the multiply has registers on both sides. Stage 1 registers
        the span ``(rows - 1) * pitch``: the low ``addr_width`` bits and whether it is
        larger, and whether the 64-bit address has bits above ``addr_width``. Stage 2 does
        the rest of the check in ``addr_width + 2``-bit arithmetic and registers the error
        code. A stage advances when the next one is empty or being emptied (one descriptor a
        cycle, three cycles of latency). ``restart`` drops what the stages hold.

        On a 32-bit bus (a descriptor is eight beats, so the gather gives one every eight
        cycles at best) one descriptor is checked at a time: stage 0 takes the next only
        when all three are empty, and no stage keeps a copy of the descriptor: the gather's
        word is the checked descriptor, popped when dispatch takes it (or a restart drops
        it), so the gather collects the next one only then, from the cycle after
        (``DescriptorGather(ready_registered)``; -3 x ~256 flip-flops on the
        iCE40UP5K build, where flip-flops loaded from other flip-flops each take a logic
        cell of their own). The gather keeps only the bits the check and the unit queues
        read (:meth:`_kept_fields`: ~75 of 256). Stage 2 then takes two cycles (``_check``'s
        ``split``). A descriptor takes eight beats plus the four check cycles, a 32-bit
        bus's descriptor fetch being that slow anyway.

        Returns the checked descriptor, its valid, its error code (``_check``) and whether
        it is not 0, its opcode as a flag per :class:`Opcode` and how many descriptors were
        dropped this cycle.
        """
        aw = self.addr_width
        width = 8 * DESCRIPTOR_BYTES
        # Same fields at the same bits for LOAD and STORE.
        for name in ("addr", "pitch"):
            assert {(f.bit, f.width) for op in (Opcode.LOAD, Opcode.STORE)
                    for f in FIELDS[op] if f.name == name} == {
                        (f.bit, f.width) for f in FIELDS[Opcode.LOAD] if f.name == name}
        s0_valid, s0_desc = Signal(), Signal(width, name="s0_desc")
        s0_rows_m1 = Signal(span_steps(self.depth, self.rows))
        s1_valid, s1_desc = Signal(), Signal(width, name="s1_desc")
        s1_span, s1_span_big, s1_addr_big = Signal(aw), Signal(), Signal()
        s2_valid, s2_desc, s2_code = Signal(), Signal(width, name="s2_desc"), Signal(8)
        one_at_a_time = DESCRIPTOR_BYTES // self.beat_bytes >= 8
        d = descriptors.payload.data
        if one_at_a_time:
            # the gather's word is held until dispatch takes it (or a restart drops it)
            s0_desc = s1_desc = s2_desc = d
        if one_at_a_time:
            # stage 2 in two cycles: its first half is registered (``front_valid``) while
            # stage 1 still holds the descriptor
            front_valid = Signal()
            advance_front = s1_valid & ~front_valid & ~s2_valid
            advance2 = front_valid & ~s2_valid
        else:
            advance2 = s1_valid & (~s2_valid | consume)
        span_ready = Signal()        # stage 1's span is ready (serial: after its last step)
        advance1 = s0_valid & span_ready & (~s1_valid | advance2)
        if one_at_a_time:
            advance0 = descriptors.valid & ~s0_valid & ~s1_valid & ~s2_valid & ~restart
        else:
            advance0 = descriptors.valid & (~s0_valid | advance1) & ~restart

        # Stage 0: the multiplier's row operand. Only rows the later size check lets through
        # (1 .. max(depth, 3) for a LOAD) need a right span, so it is the low bits of
        # count - 1.
        if one_at_a_time:
            held = s0_valid | s1_valid | s2_valid
            m.d.comb += descriptors.ready.eq(consume | (restart & held))
        else:
            m.d.comb += descriptors.ready.eq(advance0)
            with m.If(advance0):
                m.d.sync += s0_desc.eq(d)
        with m.If(advance0):
            m.d.sync += [s0_valid.eq(1),
                         s0_rows_m1.eq(Mux(d[:8] == Opcode.STORE.value, self.rows - 1,
                                           _field(d, Opcode.LOAD, "count") - 1))]
        with m.Elif(advance1):
            m.d.sync += s0_valid.eq(0)

        # Stage 1: the span, multiplied between registers.
        pitch = _field(s0_desc, Opcode.LOAD, "pitch")
        addr_big = (_field(s0_desc, Opcode.LOAD, "addr") >> aw) != 0
        if self.span_multiplier == "serial":
            # The multiply's registers hold the span and the descriptor holds (one at a
            # time) until the next descriptor starts: stage 1 keeps no copies (-18 DFF-only
            # logic cells on the iCE40UP5K build).
            s1_span, s1_span_big = self._serial_span(m, s0_rows_m1, pitch, advance0,
                                                     span_ready)
            s1_addr_big = addr_big
        elif self.span_multiplier == "dsp":
            span = Signal(len(s0_rows_m1) + 32)
            m.d.comb += [span.eq(s0_rows_m1 * pitch), span_ready.eq(1)]
            span_big = (span >> aw) != 0
        elif self.span_multiplier == "lut":
            span, span_big = self._lut_span(m, s0_rows_m1, pitch)
            m.d.comb += span_ready.eq(1)
        with m.If(advance1):
            if not one_at_a_time:
                m.d.sync += s1_desc.eq(s0_desc)
            if self.span_multiplier != "serial":
                m.d.sync += [s1_span.eq(span[:aw]), s1_span_big.eq(span_big),
                             s1_addr_big.eq(addr_big)]
            m.d.sync += s1_valid.eq(1)
        with m.Elif(advance2):
            m.d.sync += s1_valid.eq(0)

        # Stage 2 (one at a time: in two cycles, see _check)
        if one_at_a_time:
            with m.If(advance_front):
                m.d.sync += front_valid.eq(1)
            with m.Elif(advance2 | restart):
                m.d.sync += front_valid.eq(0)
        code, bad = self._check(m, s1_desc, s1_desc[:8], s1_span, s1_span_big, s1_addr_big,
                                base_inverted, limit_inverted,
                                split=advance_front if one_at_a_time else None)
        s2_bad = Signal()            # s2_code != 0, registered beside it for dispatch
        with m.If(advance2):
            if not one_at_a_time:
                m.d.sync += s2_desc.eq(s1_desc)
            m.d.sync += [s2_valid.eq(1), s2_code.eq(code), s2_bad.eq(bad)]
        with m.Elif(consume):
            m.d.sync += s2_valid.eq(0)
        # the checked descriptor's opcode, decoded into registers for dispatch
        kind = {op: Signal(name=f"s2_is_{op.name.lower()}") for op in Opcode}
        with m.If(advance2):
            m.d.sync += [flag.eq(s1_desc[:8] == op.value) for op, flag in kind.items()]

        dropped = Signal(2)
        with m.If(restart):
            m.d.sync += [s0_valid.eq(0), s1_valid.eq(0), s2_valid.eq(0)]
            m.d.comb += dropped.eq(s0_valid + s1_valid + s2_valid)
        return s2_desc, s2_valid, s2_code, s2_bad, kind, dropped

    def _check(self, m, d, opcode, span, span_big, addr_big, base_inverted, limit_inverted,
               split=None):
        """Error code of descriptor ``d`` (0 if it may run) and whether it is not 0, given
        stage 1's span and flags and the clamped window (inverted).

        With ``split`` (an enable; one descriptor at a time, whose fields and span hold
        still meanwhile), the opcode's own checks and the region's facts are registered
        when ``split`` is high and the footprint's sum and window compares work from those
        registers in the next cycle: half the logic levels each (the UP5K's clock)."""
        code = Signal(8)
        # The LOAD and STORE cases only set the region's facts (_region_case); the footprint's
        # end and the window compares are built once, after the switch (one adder chain and
        # comparator instead of one per target and mode: -170 LUT4, -130 carries on the
        # iCE40UP5K build).
        region = self._region_signals(m)
        window = (span, span_big, addr_big, region)
        with m.Switch(opcode):
            with m.Case(Opcode.LOAD.value):
                count, addr, pitch = (_field(d, Opcode.LOAD, n) for n in ("count", "addr",
                                                                           "pitch"))
                load_slot = _field(d, Opcode.LOAD, "slot")
                with m.Switch(_field(d, Opcode.LOAD, "target")):
                    for target, row_bytes in enumerate(self._load_row_bytes()):
                        params = target == 2
                        with m.Case(target):
                            self._region_case(
                                m, addr, pitch, count, row_bytes,
                                at_least(count, (3 if params else self.depth) + 1),
                                at_least(load_slot, self.param_slots if params else self.slots),
                                *window)
                    with m.Default():
                        m.d.comb += code.eq(ERROR["BAD_SIZE"])
            with m.Case(Opcode.COMPUTE.value):
                k = _field(d, Opcode.COMPUTE, "k")
                fp16 = _field(d, Opcode.COMPUTE, "fp16")
                slots_bad = (at_least(_field(d, Opcode.COMPUTE, "a_slot"), self.slots) |
                             at_least(_field(d, Opcode.COMPUTE, "b_slot"), self.slots) |
                             at_least(_field(d, Opcode.COMPUTE, "acc_slot"), self.slots))
                mode_bad = (fp16 & ("fp16" not in self.datapaths)) | \
                    (~fp16 & ("int8" not in self.datapaths))
                with m.If((k == 0) | at_least(k, self.depth + 1) | slots_bad | mode_bad):
                    m.d.comb += code.eq(ERROR["BAD_SIZE"])
            with m.Case(Opcode.STORE.value):
                slot_bad = (at_least(_field(d, Opcode.STORE, "slot"), self.slots) |
                            at_least(_field(d, Opcode.STORE, "param_slot"), self.param_slots))
                with m.Switch(_field(d, Opcode.STORE, "mode")):
                    # FP16 (binary16 output) only where there is an fp16 datapath.
                    modes = ((StoreMode.RAW32, 4), (StoreMode.INT8, 1),
                             *(((StoreMode.FP16, 2),) if "fp16" in self.datapaths else ()))
                    for mode, lane_bytes in modes:
                        with m.Case(mode):
                            self._region_case(m, _field(d, Opcode.STORE, "addr"),
                                              _field(d, Opcode.STORE, "pitch"), self.rows,
                                              lane_bytes * self.cols, 0, slot_bad, *window,
                                              packed_only=True)
                    with m.Default():
                        m.d.comb += code.eq(ERROR["BAD_SIZE"])
            with m.Case(Opcode.FENCE.value, Opcode.END.value):
                pass
            with m.Default():
                m.d.comb += code.eq(ERROR["BAD_OPCODE"])
        if split is not None:
            front, code = code, Signal(8)
            front_q = Signal(8, name="check_front")
            region_q = {name: Signal.like(fact, name=f"{fact.name}_q")
                        for name, fact in region.items()}
            with m.If(split):
                m.d.sync += [front_q.eq(front),
                             *(region_q[name].eq(fact) for name, fact in region.items())]
            m.d.comb += code.eq(front_q)
            region = region_q
            front_bad = front_q != 0
        else:
            front_bad = code != 0     # the switch's codes alone
        region_bad = self._region_code(m, code, _field(d, Opcode.LOAD, "addr"), span, region,
                                       base_inverted, limit_inverted)
        return code, front_bad | region_bad

    def _load_row_bytes(self):
        """Bytes of a host row (one buffer word) of targets A, B and PARAMS."""
        return (self.rows * self.lane_bytes, self.cols * self.lane_bytes, 4 * self.cols)

    def _lut_span(self, m, rows_m1, pitch):
        """``rows_m1 * pitch`` without a DSP (``span_multiplier="lut"``, for parts whose
        multipliers all go to the array): shifted copies of the pitch's low ``addr_width``
        bits summed pairwise, each sum on its own carry chain. A pitch of ``2**addr_width``
        or more makes the span big whenever there is a second row, which is all the check
        needs of it (the low bits only count when the span is not big). Returns
        (span, span is ``>= 2**addr_width``)."""
        aw = self.addr_width
        low = pitch[:aw]
        terms = []
        for i in range(len(rows_m1)):
            term = Signal(aw + i, name=f"span_row_{i}")
            m.d.comb += term.eq(Mux(rows_m1[i], low << i, 0))
            terms.append(term)
        while len(terms) > 1:
            pairs = []
            for n in range(0, len(terms) - 1, 2):
                total = Signal(max(len(terms[n]), len(terms[n + 1])) + 1,
                               name=f"span_sum_{len(terms)}_{n}")
                m.d.comb += total.eq(terms[n] + terms[n + 1])
                pairs.append(total)
            terms = pairs + terms[len(terms) - len(terms) % 2:]
        span = terms[0]
        big = ((span >> aw) != 0) | (((pitch >> aw) != 0) & (rows_m1 != 0))
        return span, big

    def _serial_span(self, m, rows_m1, pitch, start, ready):
        """``rows_m1 * pitch`` one bit of ``rows_m1`` a cycle, most significant first
        (``span_multiplier="serial"``): a shift and an add of the pitch's low ``addr_width``
        bits, from the cycle after ``start`` (stage 0 takes a descriptor; its ``rows_m1``
        and pitch then hold until the next ``start``); ``ready`` (comb, driven here) in the
        cycle of the last step. One descriptor is checked at a time (32-bit buses), so
        nothing waits behind it.

        Returns (span, span is ``>= 2**addr_width``) as :meth:`_lut_span`, valid from the
        cycle after ``ready`` until the next ``start``: the total's register of
        ``addr_width`` bits and whether a step carried past them (the total only grows,
        so it is then big; its low bits stay exact modulo ``2**addr_width``)."""
        aw, steps = self.addr_width, len(rows_m1)
        total = Signal(aw, name="span_total")
        over = Signal(name="span_over")
        # the bit of rows_m1 this step uses, one-hot (an AND-OR of two logic levels, not a
        # counter's decrement and a multiplexer in front of the adder); 0 when done
        select = Signal(steps, name="span_select")
        bit = (rows_m1 & select).any()
        step = Signal(aw + 2, name="span_next")
        m.d.comb += [step.eq((total << 1) + Mux(bit, pitch[:aw], 0)),
                     ready.eq(select[0])]
        with m.If(start):
            m.d.sync += [total.eq(0), over.eq(0), select.eq(1 << (steps - 1))]
        with m.Elif(select.any()):
            m.d.sync += [total.eq(step[:aw]), over.eq(over | (step[aw:] != 0)),
                         select.eq(select >> 1)]
        big = over | (((pitch >> aw) != 0) & (rows_m1 != 0))
        return total, big

    def _region_signals(self, m):
        """The facts :meth:`_region_case` sets for :meth:`_region_code` (all 0 elsewhere)."""
        # tail: a row's bytes, a beat, or a packed block of up to max(depth, 3) rows
        tail_bits = max(self.addr_width, (max(self.depth, 3) * 4 * self.cols).bit_length())
        return {"active": Signal(name="region_active"), "size_bad": Signal(name="size_bad"),
                "pitch_bad": Signal(name="pitch_bad"), "beyond": Signal(name="beyond"),
                "add_span": Signal(name="add_span"),
                "tail": Signal(tail_bits, name="footprint_tail")}

    def _region_case(self, m, addr, pitch, rows, row_bytes, too_big, slot_bad, span,
                     span_big, addr_big, region, *, packed_only=False):
        """Sizes, alignment, then the whole footprint inside the DMA window: this case's part.

        ``rows`` host rows of ``row_bytes`` (a constant) at ``addr + n * pitch``. ``addr``
        must be beat-aligned. Rows of a beat or more: ``pitch`` a multiple of the beat, and
        at least ``row_bytes`` when there are several rows. Narrower rows: either packed
        (``pitch == row_bytes``: one block of ``ceil(rows * row_bytes / beat)`` whole beats)
        or, unless ``packed_only`` (stores: no byte strobes), strided with a ``pitch`` as
        for wide rows, each row read as one whole beat. The window check covers every whole
        beat the DMA will touch: ``[addr, last)`` inside ``[window_base, window_limit)``
        and below ``2**addr_width``.

        ``span`` is ``(rows - 1) * pitch`` modulo ``2**addr_width``, ``span_big`` whether it
        is larger, ``addr_big`` whether ``addr`` is. The footprint ends beyond
        ``2**addr_width`` if ``addr_big`` (or ``span_big`` where the span counts), else
        ``last = addr + (span if add_span) + tail`` is exact in ``addr_width + 2`` bits;
        this case sets ``region``'s facts and :meth:`_region_code` does the rest.
        """
        beat = self.beat_bytes
        mask = beat - 1
        beat_pitch = ((pitch & mask) == 0) & (~at_least(rows, 2) | at_least(pitch, row_bytes))
        if row_bytes >= beat:
            pitch_ok, beyond, add_span, tail = beat_pitch, addr_big | span_big, 1, row_bytes
        else:
            shift = (beat // row_bytes).bit_length() - 1
            packed = pitch == row_bytes
            # whole beats read; rows past the size check need not be right
            count = rows if isinstance(rows, int) else rows[:(max(self.depth, 3)).bit_length()]
            block = ((count + (1 << shift) - 1) >> shift) * beat
            if packed_only:
                pitch_ok, beyond, add_span, tail = packed, addr_big, 0, block
            else:
                pitch_ok = packed | beat_pitch
                beyond = addr_big | (span_big & ~packed)
                add_span, tail = ~packed, Mux(packed, block, beat)
        m.d.comb += [region["active"].eq(1),
                     region["size_bad"].eq((rows == 0) | too_big | slot_bad),
                     region["pitch_bad"].eq(~pitch_ok), region["beyond"].eq(beyond),
                     region["add_span"].eq(add_span), region["tail"].eq(tail)]

    def _region_code(self, m, code, addr, span, region, base_inverted, limit_inverted):
        """The error code of a LOAD or STORE whose case set ``region``: sizes, then
        alignment, then the footprint ``[addr, last)`` against the window (clamped to
        ``2**addr_width``, so ``last > limit`` also catches ``last > 2**addr_width``)."""
        low = addr[:self.addr_width]
        # one past the last byte
        last = Signal(max(self.addr_width, len(region["tail"])) + 2, name="footprint_end")
        m.d.comb += last.eq(low + Mux(region["add_span"], span, 0) + region["tail"])
        misaligned = ((addr & (self.beat_bytes - 1)) != 0) | region["pitch_bad"]
        outside = region["beyond"] | _less(low, base_inverted) | _greater(last, limit_inverted)
        with m.If(region["active"]):
            with m.If(region["size_bad"]):
                m.d.comb += code.eq(ERROR["BAD_SIZE"])
            with m.Elif(misaligned):
                m.d.comb += code.eq(ERROR["MISALIGNED"])
            with m.Elif(outside):
                m.d.comb += code.eq(ERROR["OUT_OF_WINDOW"])
        # whether there is an error at all, from the same conditions side by side (not
        # ``code != 0`` after its multiplexers)
        bad = Signal(name="region_bad")
        m.d.comb += bad.eq(region["active"] & (region["size_bad"] | misaligned | outside))
        return bad

    def _unit_front(self, m, fifo, port, busy, available, takes, gives, wait_prev, wait_next,
                    give_prev, give_next, unit):
        """Pop a command, take its tokens (``available``: a flag per count, non-zero), issue
        it, wait until done, give its tokens. Returns this unit's "idle and queue empty"
        signal."""
        width = len(port.payload.as_value())
        flags = fifo.r_data[width:]
        wp, wn, sp, sn = flags[0], flags[1], flags[2], flags[3]
        have = Signal(name=f"{unit}_tokens_ok")
        need_prev = wp if wait_prev else 0
        need_next = wn if wait_next else 0
        m.d.comb += have.eq(((~need_prev) | (available[wait_prev] if wait_prev else 1)) &
                            ((~need_next) | (available[wait_next] if wait_next else 1)))
        signal = Signal(2, name=f"{unit}_signal")   # tokens to give when the command ends
        idle = Signal(name=f"{unit}_idle")
        with m.FSM(name=f"{unit}_front"):
            with m.State("IDLE"):
                m.d.comb += idle.eq(~fifo.r_rdy)
                with m.If(fifo.r_rdy & have):
                    m.d.comb += [port.valid.eq(1), port.payload.eq(fifo.r_data[:width])]
                    with m.If(port.ready):
                        m.d.comb += fifo.r_en.eq(1)
                        if wait_prev:
                            m.d.comb += takes[wait_prev].eq(wp)
                        if wait_next:
                            m.d.comb += takes[wait_next].eq(wn)
                        m.d.sync += signal.eq(Cat(sp, sn))
                        m.next = "RUN"
            with m.State("RUN"):
                with m.If(~busy):
                    if give_prev:
                        m.d.comb += gives[give_prev].eq(signal[0])
                    if give_next:
                        m.d.comb += gives[give_next].eq(signal[1])
                    m.next = "IDLE"
        return idle
