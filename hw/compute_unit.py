"""The compute path: operand buffers -> systolic array -> result buffer, one tile a command."""
from amaranth.hdl import Cat, Const, DomainRenamer, Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from .layouts import check_datapaths, operand_shape
from .operand_buffer import OperandBuffer
from .result_buffer import ResultBuffer
from .skid_buffer import SkidBuffer
from .systolic_array import SystolicArray

__all__ = ["ComputeUnit", "pe_acc_width"]

#: bits of the Gray-coded beat count that crosses to ``sync``: more than the beats one
#: ``sync`` cycle can hold at any clock ratio Loom is built for
_BEAT_BITS = 8


def pe_acc_width(datapaths, depth):
    """Accumulator bits of the PEs: 32 with fp16 (binary32), else just enough for one
    COMPUTE's sum, which is exact: at most ``depth`` int8 products, each in
    ``[-16256, 16384]``, so ``|sum| <= depth * 2**14 < 2**(15 + ceil(log2(depth)))`` and
    ``16 + ceil(log2(depth))`` signed bits hold it (23 for depth 128, 25 for 512). Sums over
    several COMPUTEs (``accumulate``) add up in the result buffer's 32-bit lanes, where the
    ISA's int32 wrap happens. Narrower accumulators are shorter carry chains and fewer
    flip-flops per PE."""
    if "fp16" in datapaths:
        return 32
    return min(32, 16 + (depth - 1).bit_length())


class ComputeUnit(wiring.Component):
    """Runs tiles from on-chip buffers through a :class:`~hw.systolic_array.SystolicArray`.

    A command ``{a_slot, b_slot, k, acc_slot, accumulate[, fp16]}`` streams words
    ``0 .. k-1`` of A slot ``a_slot`` (word ``k`` = column ``k`` of the A tile, ``rows`` lanes)
    and of B slot ``b_slot`` (word ``k`` = row ``k`` of the B tile, ``cols`` lanes) into the
    array as one tile, and writes the tile's result rows into result slot ``acc_slot``,
    replacing it or, with ``accumulate``, adding to it: int32, wrapping, for int8 tiles;
    one RNE binary32 addition per lane for fp16 tiles (``tb/golden.py``, "fp16 accumulation
    across K splits"). ``fp16`` (dual builds only) selects the datapath of the tile.

    Commands are taken back to back: the array receives one operand beat per cycle across
    tile boundaries (its own tile spacing still applies to tiles with ``k < rows``). The
    beats reach the array through a :class:`~hw.skid_buffer.SkidBuffer`, so the array's
    ``ready`` (its admission rules) and the buffers' read enables are separate paths: in a
    16x16 build on the ECP5-85F they had formed one path across the die (68 MHz, the whole
    compute unit's critical path). It costs one cycle per COMPUTE, as the operand buffers'
    output registers do. ``operand_registers=False`` leaves out both (the buffers' block
    RAM data straight into the array, its ``ready`` straight into their read enables): 2
    cycles fewer per COMPUTE and ~200 logic cells fewer on the iCE40UP5K 4x4, for slow
    clocks (``ARRAY_CONFIG.direct_operands``). Up to
    ``in_flight`` tiles may be between the buffers and the result buffer at once. ``busy``
    stays high until the last result row of every tile taken has landed in its slot
    (:attr:`~hw.result_buffer.ResultBuffer.write_latency` cycles after the array emits it).

    The loader fills ``a_write``/``b_write`` and the storer drains ``result_read`` /
    ``result_words`` directly (see :class:`~hw.operand_buffer.OperandBuffer`); keeping them
    off slots in use is the sequencer's job. ``beat`` pulses for every operand beat the array
    accepts (``rows * cols`` MACs each), for the performance counters.

    ``domain``: the clock domain of the compute path (the operand buffers' read side, the
    array, the result buffer's write side); the ports stay in ``sync``. With a domain other
    than ``sync`` a COMPUTE crosses in a mailbox (:meth:`_command_crossing`: one at a time,
    ``cmd.ready`` only while not ``busy``), ``busy`` and ``beats`` come back through
    synchronisers (:meth:`_status_crossing`), and the block RAMs' two ports carry the data
    across. The compute domain is not reset by a ``sync`` reset (the accelerator's soft
    reset): it finishes the command it has.

    ``fp32_adder_stages=3`` (fp16 builds): the binary32 adders of the PEs and of the result
    buffer in three register stages, for the clock; fp16 beats then go one every 3 cycles
    and results land later (:class:`~hw.systolic_array.SystolicArray`,
    :class:`~hw.result_buffer.ResultBuffer`). Same results.

    ``product_stages=2`` or 3 (int8-only builds without paired multipliers): each PE's
    product over two or three registers (:class:`~hw.systolic_array.SystolicArray`), for
    the clock; every tile's results land ``product_stages - 1`` cycles later (``busy``
    follows them). Same results.
    """

    def _widened(self, m, lanes):
        """The array's result lanes sign-extended to the result buffer's 32 bits."""
        wide = []
        for j in range(self.cols):
            lane = Signal(signed(32), name=f"result_{j}")
            m.d.comb += lane.eq(lanes[j])
            wide.append(lane)
        return wide

    def __init__(self, rows, cols, *, datapaths=("int8",), depth=1024, slots=2, in_flight=8,
                 lut_multipliers=0, paired_multipliers=False, result_storage="ram",
                 fp32_adder_stages=1, product_stages=1, operand_registers=True,
                 clear_after_last=False, aligned_drain=False, broadcast_operands=False,
                 domain="sync"):
        datapaths = check_datapaths(datapaths)
        if not isinstance(operand_registers, bool):
            raise TypeError(f"operand_registers must be True or False, not "
                            f"{operand_registers!r}")
        if not operand_registers and domain != "sync":
            raise ValueError("a compute unit in its own clock domain needs operand_registers")
        self.operand_registers = operand_registers
        if not isinstance(domain, str):
            raise TypeError(f"domain must be a clock domain name, not {domain!r}")
        if domain != "sync" and result_storage != "ram":
            raise ValueError("a compute unit in its own clock domain needs result_storage='ram'")
        self.domain = domain
        self.array = SystolicArray(rows, cols, datapaths=datapaths,
                                   acc_width=pe_acc_width(datapaths, depth),
                                   lut_multipliers=lut_multipliers,
                                   paired_multipliers=paired_multipliers,
                                   fp32_adder_stages=fp32_adder_stages,
                                   product_stages=product_stages,
                                   clear_after_last=clear_after_last,
                                   aligned_drain=aligned_drain,
                                   broadcast_operands=broadcast_operands,
                                   # its own domain is not soft-reset
                                   separate_control=domain != "sync")
        lane_bits = operand_shape(datapaths).width
        # output registers: the block RAMs' clock-to-output must not reach the array's inputs
        self.a_buffer = OperandBuffer(width=rows * lane_bits, depth=depth, slots=slots,
                                      output_register=operand_registers, read_domain=domain)
        self.b_buffer = OperandBuffer(width=cols * lane_bits, depth=depth, slots=slots,
                                      output_register=operand_registers, read_domain=domain)
        self.result_buffer = ResultBuffer(lanes=cols, depth=rows, slots=slots,
                                          fp32="fp16" in datapaths, storage=result_storage,
                                          fp32_adder_stages=fp32_adder_stages,
                                          write_domain=domain,
                                          # the array tells the next row a cycle ahead
                                          lookahead=result_storage == "shared_port")
        self.rows, self.cols, self.datapaths, self.depth = rows, cols, datapaths, depth
        self.slots, self.in_flight = slots, in_flight
        fields = {"a_slot": range(slots), "b_slot": range(slots), "k": range(depth + 1),
                  "acc_slot": range(slots), "accumulate": 1}
        if len(datapaths) > 1:
            fields["fp16"] = 1
        super().__init__({
            "cmd": In(stream.Signature(data.StructLayout(fields))),
            "a_write": In(self.a_buffer.write.shape()),
            "b_write": In(self.b_buffer.write.shape()),
            "result_read": In(stream.Signature(self.result_buffer.read.payload.shape())),
            "result_words": Out(stream.Signature(self.result_buffer.words.payload.shape())),
            "busy": Out(1),
            "beats": Out(range(1 << _BEAT_BITS) if domain != "sync" else 2),
        })

    def elaborate(self, platform):
        m = Module()
        crossing = self.domain != "sync"
        rename = DomainRenamer(self.domain) if crossing else (lambda unit: unit)
        m.submodules.array = rename(self.array)
        array = self.array
        m.submodules.a_buffer = a_buf = self.a_buffer
        m.submodules.b_buffer = b_buf = self.b_buffer
        m.submodules.result_buffer = res = self.result_buffer
        dual = len(self.datapaths) > 1
        m.d.comb += [a_buf.write.eq(self.a_write), b_buf.write.eq(self.b_write)]
        wiring.connect(m, wiring.flipped(self.result_read), res.read)
        wiring.connect(m, res.words, wiring.flipped(self.result_words))

        # Per-tile facts that must outlive the command: the datapath (needed with every
        # operand beat) and where the results go (needed when they come out).
        modes = SyncFIFOBuffered(width=1, depth=self.in_flight)
        dests = SyncFIFOBuffered(
            width=len(Cat(self.cmd.payload.acc_slot, self.cmd.payload.accumulate)) + 1,
            depth=self.in_flight)
        m.submodules.modes, m.submodules.dests = rename(modes), rename(dests)
        if crossing:
            cmd, request, request_seen = self._command_crossing(m)
        else:
            cmd = self.cmd
        fp16 = cmd.payload.fp16 if dual else Const(self.datapaths == ("fp16",), 1)
        take = Signal()
        m.d.comb += [
            take.eq(cmd.valid & a_buf.read.ready & b_buf.read.ready & modes.w_rdy & dests.w_rdy),
            cmd.ready.eq(a_buf.read.ready & b_buf.read.ready & modes.w_rdy & dests.w_rdy),
            a_buf.read.valid.eq(take), b_buf.read.valid.eq(take),
            a_buf.read.payload.slot.eq(cmd.payload.a_slot),
            a_buf.read.payload.count.eq(cmd.payload.k),
            b_buf.read.payload.slot.eq(cmd.payload.b_slot),
            b_buf.read.payload.count.eq(cmd.payload.k),
            modes.w_en.eq(take), modes.w_data.eq(fp16 if dual else 0),
            dests.w_en.eq(take),
            dests.w_data.eq(Cat(cmd.payload.acc_slot, cmd.payload.accumulate, fp16)),
        ]

        # Join the two word streams into operand beats, through a register slice: the
        # array's admission (its ``ready``) then ends at the slice, and the buffers see a
        # registered ``ready`` (a die-wide path in a 16x16 build). The two streams run in
        # lockstep (the same commands taken in the same cycle, the same ``ready``), so each
        # buffer's ``ready`` is the slice's alone, not also the other buffer's ``valid``:
        # that join was the two buffers' enables hanging off each other across the die
        # (the 16x16 ECP5 system's array clock, 84.2 MHz). In a domain of its own each
        # buffer takes a copy of the slice's ``ready`` of its own, placed next to it.
        if self.operand_registers:
            m.submodules.operand_slice = operand_slice = rename(
                SkidBuffer(array.operands.payload.shape(), ready_copies=2 if crossing else 0))
            wiring.connect(m, operand_slice.o, array.operands)
            ops = operand_slice.i
            a_ready, b_ready = ((operand_slice.ready_copy[0], operand_slice.ready_copy[1])
                                if crossing else (ops.ready, ops.ready))
        else:
            ops = array.operands
            a_ready = b_ready = ops.ready
        m.d.comb += [
            ops.valid.eq(a_buf.words.valid & b_buf.words.valid),
            ops.payload.a.eq(a_buf.words.payload.data),
            ops.payload.b.eq(b_buf.words.payload.data),
            ops.payload.last.eq(a_buf.words.payload.last),
            a_buf.words.ready.eq(a_ready),
            b_buf.words.ready.eq(b_ready),
            modes.r_en.eq(ops.valid & ops.ready & ops.payload.last),
        ]
        if dual:
            m.d.comb += ops.payload.fp16.eq(modes.r_data)
        beat = array.operands.valid & array.operands.ready

        # Result rows into their slot.
        results = array.results
        slot_bits = len(self.cmd.payload.acc_slot)
        dest_slot = dests.r_data[:slot_bits]
        dest_accumulate = dests.r_data[slot_bits]
        m.d.comb += [
            res.write.valid.eq(results.valid),
            res.write.slot.eq(dest_slot),
            res.write.index.eq(results.payload.row),
            res.write.data.eq(Cat(*self._widened(m, results.payload.data))),
            res.write.accumulate.eq(dest_accumulate),
            dests.r_en.eq(results.valid & results.payload.last),
        ]
        if res.lookahead:
            m.d.comb += [res.next_write.valid.eq(array.next_row.valid),
                         res.next_write.index.eq(array.next_row.row)]
        if res.fp32:
            m.d.comb += res.write.fp32.eq(dests.r_data[slot_bits + 1])
        # Tiles taken whose last result row has not been written yet.
        tiles = Signal(range(self.in_flight + res.write_latency + 1))
        landing = Signal(res.write_latency)     # last rows on their way into the RAM
        local = m.d[self.domain]
        local += landing.eq(Cat(res.write.valid & results.payload.last, landing[:-1]))
        written = landing[-1]
        local += tiles.eq(tiles + take - written)
        if crossing:
            self._status_crossing(m, cmd, request, request_seen, tiles != 0, beat)
        else:
            m.d.comb += [self.busy.eq(tiles != 0), self.beats.eq(beat)]
        return m

    def _command_crossing(self, m):
        """``cmd`` (in ``sync``) handed to the compute domain: one command at a time, through
        a mailbox register and a request toggle (two-flip-flop synchroniser). Returns the
        command stream in the compute domain, the toggle and its synchronised copy.

        Why not an asynchronous FIFO: the sequencer issues a COMPUTE only once the previous
        one is done (``busy`` low), so one slot is all the depth there is to use, and a
        soft reset (``sync`` only) must not leave the two sides of a FIFO disagreeing about
        its fill. The crossing's registers are ``reset_less``: a soft reset neither loses
        nor duplicates a command in flight; the compute domain (not soft-reset) finishes
        it, which takes at most ``depth`` beats plus the drain."""
        cmd = self.cmd
        inner = stream.Signature(cmd.payload.shape()).create(path=("cmd_inner",))
        mail = Signal(cmd.payload.shape(), reset_less=True, name="cmd_mail")
        request = Signal(reset_less=True, name="cmd_request")
        request_seen = Signal(name="cmd_request_seen")
        taken = Signal(reset_less=True, name="cmd_taken")
        m.submodules.request_sync = FFSynchronizer(request, request_seen,
                                                   o_domain=self.domain, reset_less=True)
        with m.If(cmd.valid & cmd.ready):
            m.d.sync += [mail.eq(cmd.payload), request.eq(~request)]
        # the mail is written with the toggle, so it has been stable for two compute-domain
        # cycles when the synchronised toggle shows the request
        m.d.comb += [inner.valid.eq(request_seen != taken), inner.payload.eq(mail)]
        with m.If(inner.valid & inner.ready):
            m.d[self.domain] += taken.eq(request_seen)
        return inner, request, request_seen

    def _status_crossing(self, m, inner, request, request_seen, running, beat):
        """``busy`` and ``beats`` in ``sync`` from the compute domain.

        ``busy``: the request toggle differs from the compute domain's ``finished`` toggle,
        which follows ``taken`` once nothing is pending or running there; so ``busy`` rises
        the cycle after a command is accepted and falls 2-3 ``sync`` cycles after its last
        result row is in the result buffer (whose read side the STORE then uses).
        ``beats``: operand beats since the previous ``sync`` cycle, from a Gray-coded count
        in the compute domain (one bit changes per beat, so any sample is a valid count)."""
        d = self.domain
        finished = Signal(reset_less=True, name="cmd_finished")
        finished_seen = Signal(name="cmd_finished_seen")
        with m.If(~inner.valid & ~running):
            m.d[d] += finished.eq(request_seen)
        m.submodules.finished_sync = FFSynchronizer(finished, finished_seen, reset_less=True)
        m.d.comb += [self.busy.eq(request != finished_seen),
                     self.cmd.ready.eq(request == finished_seen)]

        count = Signal(_BEAT_BITS, reset_less=True, name="beat_count")
        gray = Signal(_BEAT_BITS, reset_less=True, name="beat_gray")
        gray_seen = Signal(_BEAT_BITS, name="beat_gray_seen")
        following = Signal(_BEAT_BITS, reset_less=True, name="beat_count_seen")
        # the beat counted a cycle after its handshake: the handshake is the array's
        # admission logic, the counter anywhere (5.9 ns apart in a 16x16 ECP5 build, the
        # array clock's critical path); the count is a performance figure, read later
        counted = Signal(name="beat_counted")
        m.d[d] += counted.eq(beat)
        next_count = count + counted
        m.d[d] += [count.eq(next_count), gray.eq(next_count ^ (next_count >> 1))]
        m.submodules.beat_sync = FFSynchronizer(gray, gray_seen, reset_less=True)
        seen = Signal(_BEAT_BITS, name="beat_count_now")
        for bit in range(_BEAT_BITS):                # Gray to binary
            m.d.comb += seen[bit].eq(gray_seen[bit:].xor())
        m.d.sync += following.eq(seen)
        m.d.comb += self.beats.eq((seen - following)[:_BEAT_BITS])
