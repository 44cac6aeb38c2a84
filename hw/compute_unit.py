"""The compute path: operand buffers -> systolic array -> result buffer, one tile a command."""
from amaranth.hdl import Cat, Const, Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from .layouts import check_datapaths, operand_shape
from .operand_buffer import OperandBuffer
from .result_buffer import ResultBuffer
from .systolic_array import SystolicArray

__all__ = ["ComputeUnit", "pe_acc_width"]


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
    tile boundaries (its own tile spacing still applies to tiles with ``k < rows``). Up to
    ``in_flight`` tiles may be between the buffers and the result buffer at once. ``busy``
    stays high until the last result row of every tile taken has landed in its slot
    (:attr:`~hw.result_buffer.ResultBuffer.write_latency` cycles after the array emits it).

    The loader fills ``a_write``/``b_write`` and the storer drains ``result_read`` /
    ``result_words`` directly (see :class:`~hw.operand_buffer.OperandBuffer`); keeping them
    off slots in use is the sequencer's job. ``beat`` pulses for every operand beat the array
    accepts (``rows * cols`` MACs each), for the performance counters.

    ``fp32_adder_stages=3`` (fp16 builds): the binary32 adders of the PEs and of the result
    buffer in three register stages, for the clock; fp16 beats then go one every 3 cycles
    and results land 2 cycles later (:class:`~hw.systolic_array.SystolicArray`,
    :class:`~hw.result_buffer.ResultBuffer`). Same results.
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
                 fp32_adder_stages=1):
        datapaths = check_datapaths(datapaths)
        self.array = SystolicArray(rows, cols, datapaths=datapaths,
                                   acc_width=pe_acc_width(datapaths, depth),
                                   lut_multipliers=lut_multipliers,
                                   paired_multipliers=paired_multipliers,
                                   fp32_adder_stages=fp32_adder_stages)
        lane_bits = operand_shape(datapaths).width
        # output registers: the block RAMs' clock-to-output must not reach the array's inputs
        self.a_buffer = OperandBuffer(width=rows * lane_bits, depth=depth, slots=slots,
                                      output_register=True)
        self.b_buffer = OperandBuffer(width=cols * lane_bits, depth=depth, slots=slots,
                                      output_register=True)
        self.result_buffer = ResultBuffer(lanes=cols, depth=rows, slots=slots,
                                          fp32="fp16" in datapaths, storage=result_storage,
                                          fp32_adder_stages=fp32_adder_stages)
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
            "beat": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.array = array = self.array
        m.submodules.a_buffer = a_buf = self.a_buffer
        m.submodules.b_buffer = b_buf = self.b_buffer
        m.submodules.result_buffer = res = self.result_buffer
        dual = len(self.datapaths) > 1
        m.d.comb += [a_buf.write.eq(self.a_write), b_buf.write.eq(self.b_write)]
        wiring.connect(m, wiring.flipped(self.result_read), res.read)
        wiring.connect(m, res.words, wiring.flipped(self.result_words))

        # Per-tile facts that must outlive the command: the datapath (needed with every
        # operand beat) and where the results go (needed when they come out).
        m.submodules.modes = modes = SyncFIFOBuffered(width=1, depth=self.in_flight)
        m.submodules.dests = dests = SyncFIFOBuffered(
            width=len(Cat(self.cmd.payload.acc_slot, self.cmd.payload.accumulate)) + 1,
            depth=self.in_flight)
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

        # Join the two word streams into operand beats (they run in lockstep).
        ops = array.operands
        m.d.comb += [
            ops.valid.eq(a_buf.words.valid & b_buf.words.valid),
            ops.payload.a.eq(a_buf.words.payload.data),
            ops.payload.b.eq(b_buf.words.payload.data),
            ops.payload.last.eq(a_buf.words.payload.last),
            a_buf.words.ready.eq(ops.ready & b_buf.words.valid),
            b_buf.words.ready.eq(ops.ready & a_buf.words.valid),
        ]
        if dual:
            m.d.comb += ops.payload.fp16.eq(modes.r_data)
        beat = ops.valid & ops.ready
        m.d.comb += [self.beat.eq(beat), modes.r_en.eq(beat & ops.payload.last)]

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
        if res.fp32:
            m.d.comb += res.write.fp32.eq(dests.r_data[slot_bits + 1])
        # Tiles taken whose last result row has not been written yet.
        tiles = Signal(range(self.in_flight + res.write_latency + 1))
        landing = Signal(res.write_latency)     # last rows on their way into the RAM
        m.d.sync += landing.eq(Cat(res.write.valid & results.payload.last, landing[:-1]))
        written = landing[-1]
        m.d.sync += tiles.eq(tiles + take - written)
        m.d.comb += self.busy.eq(tiles != 0)
        return m
