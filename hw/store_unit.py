"""STORE: result rows -> post-processing -> host memory, one 2-D DMA write per command."""
from amaranth.hdl import C, Cat, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from .block_ram import BlockRamFifo
from .dma_reader import dma_command_layout
from .fp32_to_fp16 import Fp32ToFp16
from .requantizer import Requantizer
from .serial_requantizer import SerialRequantizer
from .width_converter import WordsToBeats, word_ratio

__all__ = ["StoreMode", "StoreUnit", "PARAM_WORDS", "REQUANTIZERS", "SERIAL_REQUANTIZERS"]

#: Words of a parameter slot: per-column bias, multiplier, and shift | zero_point << 8.
PARAM_WORDS = 3

class StoreMode(enum.Enum, shape=2):
    """What a STORE writes for each 32-bit result lane."""
    RAW32 = 0   #: the int32 (or binary32) lane as it is: 4 bytes
    INT8 = 1    #: requantised to int8 (bias, multiplier, shift, zero point, ReLU): 1 byte
    FP16 = 2    #: binary32 rounded to binary16 (nearest even): 2 bytes

#: ``requantizer`` choices: one pipelined :class:`Requantizer` per column (a row per cycle,
#: four 18x18 multipliers each), one :class:`SerialRequantizer` per column (a row every
#: 66 cycles, no multiplier: for parts whose DSPs all go to the array), or one
#: :class:`SerialRequantizer` shared by the columns in turn (``"shared"``: a row every
#: ``cols * 65`` cycles, for parts short of logic too).
REQUANTIZERS = ("parallel", "serial", "shared")
#: the bit-serial ones (``ARRAY_CONFIG.serial_requant``)
SERIAL_REQUANTIZERS = ("serial", "shared")

#: bits a lane takes in host memory, per mode
_LANE_BITS = {StoreMode.RAW32: 32, StoreMode.INT8: 8, StoreMode.FP16: 16}


class StoreUnit(wiring.Component):
    """Writes the ``rows`` result rows of a result slot to host memory, post-processed.

    A command ``{slot, addr, pitch, mode, relu, bias, param_slot}`` reads result slot
    ``slot`` row by row (``result_read`` / ``result_words``), converts every lane as
    :class:`StoreMode` says, and writes row ``r`` to ``addr + r * pitch`` through the DMA
    writer (``dma_cmd`` / ``dma_data``). For ``INT8`` it first reads the three parameter
    words of ``param_slot`` (``param_read`` / ``param_words``): per-column bias (used when
    ``bias`` is set), multiplier, and ``shift | zero_point << 8``. ``relu`` applies to INT8.

    Parameters come from ``param_slots`` slots (default twice ``slots``: the store copies a
    slot into registers when it starts, and with four slots a LOAD that waits for the COMPUTE
    two tiles back can never overwrite parameters a pending STORE still needs).

    A row is ``cols * {4, 1, 2}`` bytes, a power-of-two multiple or fraction of the bus width
    (checked in ``__init__`` for every mode). Rows of one beat or more are written one DMA
    row each, row ``r`` at ``addr + r * pitch``. Rows narrower than a beat are written
    *packed*: the tile's rows back to back from ``addr`` (the sequencer only lets such a
    STORE through with ``pitch`` equal to the row size), several rows a beat, as one block;
    ``__init__`` checks that a tile's rows fill whole beats, so no byte outside the block is
    written (the DMA writer has no byte strobes). Every mode goes through the same
    post-processing pipeline of :attr:`pipeline_latency` cycles (the parallel requantiser's
    depth, 5; 1 in builds with serial requantisers, whose INT8 rows take their own path); a
    FIFO behind it absorbs the pipeline when the bus stalls, and rows are only read while it
    has room for them.
    The command ends when the DMA writer is idle again (``dma_idle``): every write response
    is back, so a following semaphore signal or "done" never overtakes the data.

    With ``requantizer="serial"``, INT8 rows go one at a time through a
    :class:`SerialRequantizer` per column instead (``SerialRequantizer.latency + 1`` = 66
    cycles a row, whatever the data; no multipliers); the other modes keep the pipeline.
    With ``requantizer="shared"``, one :class:`SerialRequantizer` takes a row's columns in
    turn, column ``j + 1`` in the cycle column ``j``'s result comes out: a row every
    ``cols * SerialRequantizer.latency`` cycles, for ``cols - 1`` fewer units.

    With ``param_lanes`` (``requantizer="shared"`` only) the parameter slot holds 32-bit
    lanes, ``PARAM_WORDS * cols`` words: bias ``0 .. cols-1``, then the multipliers, then
    ``shift | zero_point << 8`` (the host rows loaded lane by lane, :class:`~hw.load_unit.
    LoadUnit`). The unit keeps one column's three words (96 flip-flops instead of
    ``PARAM_WORDS * cols * 32``): it reads the slot once before the first row and again each
    time a column goes into the requantiser, keeping the next column's words, while that
    column's 65 cycles run; so a STORE takes ``PARAM_WORDS * (cols - 1) + 2`` cycles more
    than with whole rows (the longer first read and its request; measured, and so in
    ``sw/cycle_model.py``), and the parameter buffer is one lane wide (a
    32-bit block RAM instead of a ``cols * 32``-bit one: 2 EBR instead of 8 on the iCE40).

    With ``fp16_output=False`` the unit has no binary32 -> binary16 converters (``cols`` of
    them, ~110 LUT4 each on iCE40): accelerators without the fp16 datapath build it so, and
    their sequencer rejects STORE mode ``FP16`` (``BAD_SIZE``) before it gets here.
    """

    def __init__(self, *, rows, cols, beat_width, addr_width, slots=2, param_slots=None,
                 requantizer="parallel", fp16_output=True, param_lanes=False):
        if requantizer not in REQUANTIZERS:
            raise ValueError(f"requantizer must be one of {REQUANTIZERS}, not {requantizer!r}")
        if not isinstance(param_lanes, bool):
            raise TypeError(f"param_lanes must be True or False, not {param_lanes!r}")
        if param_lanes and requantizer != "shared":
            raise ValueError(f"param_lanes needs requantizer='shared' (one column at a time), "
                             f"not {requantizer!r}")
        self.param_lanes = param_lanes
        #: words of a parameter slot, and their width
        self.param_slot_words = PARAM_WORDS * cols if param_lanes else PARAM_WORDS
        self.param_width = 32 if param_lanes else cols * 32
        if not isinstance(fp16_output, bool):
            raise TypeError(f"fp16_output must be True or False, not {fp16_output!r}")
        self.requantizer, self.fp16_output = requantizer, fp16_output
        param_slots = 2 * slots if param_slots is None else param_slots
        #: mode -> (beats per row, rows per beat) on this bus
        self.ratios = {}
        for mode, lane_bits in _LANE_BITS.items():
            if mode == StoreMode.FP16 and not fp16_output:
                continue
            row_bits = cols * lane_bits
            try:
                self.ratios[mode] = word_ratio(row_bits, beat_width)
            except ValueError:
                raise ValueError(f"{mode.name} rows of {cols} lanes are {row_bits} bits: not a "
                                 f"power-of-two multiple or fraction of the {beat_width}-bit "
                                 f"bus") from None
            if self.ratios[mode][1] > 1 and (rows * row_bits) % beat_width:
                raise ValueError(f"{mode.name} rows of {cols} lanes are {row_bits} bits, "
                                 f"narrower than the {beat_width}-bit bus, and the {rows} rows "
                                 f"of a tile ({rows * row_bits} bits) are not a whole number "
                                 f"of beats: packed stores need whole beats")
        self.rows, self.cols, self.beat_width, self.addr_width = rows, cols, beat_width, addr_width
        self.slots, self.param_slots = slots, param_slots
        #: cycles rows spend in the post-processing pipeline: the parallel requantiser's
        #: depth, which the other modes match; 1 with serial requantisers (INT8 rows go
        #: through those instead)
        self.pipeline_latency = (1 if requantizer in SERIAL_REQUANTIZERS
                                 else Requantizer.latency)
        word = data.StructLayout({"data": cols * 32, "last": 1})
        super().__init__({
            "cmd": In(stream.Signature(data.StructLayout({
                "slot": range(slots), "addr": addr_width, "pitch": addr_width,
                "mode": StoreMode, "relu": 1, "bias": 1, "param_slot": range(param_slots)}))),
            "result_read": Out(stream.Signature(data.StructLayout({
                "slot": range(slots), "count": range(rows + 1)}))),
            "result_words": In(stream.Signature(word)),
            "param_read": Out(stream.Signature(data.StructLayout({
                "slot": range(param_slots), "count": range(self.param_slot_words + 1)}))),
            "param_words": In(stream.Signature(data.StructLayout({
                "data": self.param_width, "last": 1}))),
            "dma_cmd": Out(stream.Signature(dma_command_layout(addr_width))),
            "dma_data": Out(stream.Signature(beat_width)),
            "dma_idle": In(1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cols = self.cols
        cmd = self.cmd
        mode = Signal(StoreMode)
        relu, use_bias = Signal(), Signal()
        params = [Signal(self.param_width, name=f"param{n}") for n in range(PARAM_WORDS)]
        param_index = Signal(range(PARAM_WORDS + 1))
        beats_per_row = Signal(range(cols * 32 // self.beat_width + 1))
        fetch = _ColumnFetch(cols) if self.param_lanes else None
        if fetch:
            self._column_params(m, fetch, params, use_bias)
        final_beat_sent = self._stream(m, mode, relu, use_bias, params, beats_per_row, fetch)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += cmd.ready.eq(1 if fetch is None else fetch.ready)
                with m.If(cmd.valid):
                    p = cmd.payload
                    m.d.sync += [
                        mode.eq(p.mode), relu.eq(p.relu), use_bias.eq(p.bias),
                        self.result_read.payload.slot.eq(p.slot),
                        self.result_read.payload.count.eq(self.rows),
                        self.param_read.payload.slot.eq(p.param_slot),
                        self.param_read.payload.count.eq(self.param_slot_words),
                        self.dma_cmd.payload.addr.eq(p.addr),
                        self.dma_cmd.payload.pitch.eq(p.pitch),
                        self.dma_cmd.payload.rows.eq(self.rows),
                        param_index.eq(0),
                    ]
                    with m.Switch(p.mode):
                        for mode_value, (ratio, per_beat) in self.ratios.items():
                            with m.Case(mode_value):
                                if per_beat == 1:
                                    m.d.sync += [self.dma_cmd.payload.row_beats.eq(ratio),
                                                 beats_per_row.eq(ratio)]
                                else:   # packed: one block of whole beats
                                    m.d.sync += [
                                        self.dma_cmd.payload.rows.eq(1),
                                        self.dma_cmd.payload.row_beats.eq(self.rows // per_beat)]
                    m.next = "PARAMS"
            with m.State("PARAMS"):
                with m.If(mode != StoreMode.INT8):
                    m.next = "DMA"
                with m.Else():
                    if fetch is not None:       # column 0's words
                        m.d.comb += [fetch.start.eq(1), fetch.column.eq(0)]
                        m.next = "PARAM_WORDS"
                    else:
                        m.d.comb += self.param_read.valid.eq(1)
                        with m.If(self.param_read.ready):
                            m.next = "PARAM_WORDS"
            with m.State("PARAM_WORDS"):
                if fetch is not None:
                    with m.If(fetch.ready):
                        m.next = "DMA"
                else:
                    m.d.comb += self.param_words.ready.eq(1)
                    with m.If(self.param_words.valid):
                        for n in range(PARAM_WORDS):
                            with m.If(param_index == n):
                                m.d.sync += params[n].eq(self.param_words.payload.data)
                        m.d.sync += param_index.eq(param_index + 1)
                        with m.If(self.param_words.payload.last):
                            m.next = "DMA"
            with m.State("DMA"):
                m.d.comb += self.dma_cmd.valid.eq(1)
                with m.If(self.dma_cmd.ready):
                    m.next = "ROWS"
            with m.State("ROWS"):
                m.d.comb += self.result_read.valid.eq(1)
                with m.If(self.result_read.ready):
                    m.next = "STREAM"
            with m.State("STREAM"):
                with m.If(final_beat_sent):
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                with m.If(self.dma_idle):
                    m.next = "IDLE"
        m.d.comb += self.busy.eq(~cmd.ready)
        return m

    def _column_params(self, m, fetch, params, use_bias):
        """``param_lanes``: on ``fetch.start``, read the parameter slot and keep column
        ``fetch.column``'s three words in ``params``; ``fetch.ready`` again once they are.
        The bias is kept as 0 unless the STORE uses it (the registers' own synchronous
        reset on the iCE40, not a gate in front of the requantiser)."""
        cols = self.cols
        column = Signal(range(cols))
        requesting, receiving = Signal(), Signal()
        lane, word = Signal(range(cols)), Signal(range(PARAM_WORDS))
        words = self.param_words
        m.d.comb += [self.param_read.valid.eq(requesting), words.ready.eq(1),
                     fetch.ready.eq(~requesting & ~receiving)]
        with m.If(fetch.start):
            m.d.sync += [requesting.eq(1), column.eq(fetch.column)]
        with m.If(self.param_read.valid & self.param_read.ready):
            m.d.sync += [requesting.eq(0), receiving.eq(1), lane.eq(0), word.eq(0)]
        # the words come bias 0 .. cols-1, multipliers, shift | zero point: keep column's
        with m.If(words.valid & words.ready):
            with m.If(lane == column):
                with m.Switch(word):
                    for n in range(PARAM_WORDS):
                        with m.Case(n):
                            data = words.payload.data
                            m.d.sync += params[n].eq(Mux(use_bias, data, 0) if n == 0
                                                     else data)
            m.d.sync += lane.eq(Mux(lane == cols - 1, 0, lane + 1))
            with m.If(lane == cols - 1):
                m.d.sync += word.eq(word + 1)
            with m.If(words.payload.last):
                m.d.sync += receiving.eq(0)

    @property
    def direct(self):
        """Whether beats go to the writer straight from the result buffer's held word (or,
        INT8, from the requantised row), without the post-processing FIFO: builds with the
        shared serial requantiser, no fp16 output and rows of whole beats in every mode."""
        return (self.requantizer == "shared" and not self.fp16_output and
                all(per_beat == 1 for _, per_beat in self.ratios.values()))

    def _stream(self, m, mode, relu, use_bias, params, beats_per_row, fetch=None):
        """Rows -> post-processing -> FIFO -> beats. Returns the "final beat sent" signal."""
        if self.direct:
            return self._stream_direct(m, mode, relu, use_bias, params, beats_per_row, fetch)
        cols, latency = self.cols, self.pipeline_latency
        words = self.result_words
        # 9 rows whatever the pipeline: shallower, yosys builds it from flip-flops (~650 FF
        # and ~400 LUT4 on the iCE40 for 4 columns) instead of block RAM
        m.submodules.rows_out = fifo = BlockRamFifo(width=cols * 32 + 1,
                                                    depth=Requantizer.latency + 4)
        take = Signal()
        serial = self.requantizer in SERIAL_REQUANTIZERS
        row_in_units = Signal()       # serial: a row is in the requantisers
        room = fifo.level <= fifo.depth - 1 - latency
        if self.requantizer == "serial":
            room = room & ~row_in_units
        if self.requantizer == "shared":
            unit = m.submodules.requant = SerialRequantizer()
            feed = Signal(range(cols))    # the column going into the unit next
            feeding = Signal()
            params_ready = 1 if fetch is None else fetch.ready
            m.d.comb += feeding.eq(words.valid & room & unit.ready & params_ready &
                                   (mode == StoreMode.INT8))
            with m.If(mode == StoreMode.INT8):
                # the row leaves the result buffer with its last column
                m.d.comb += words.ready.eq(room & unit.ready & params_ready &
                                           (feed == cols - 1))
            with m.Else():
                m.d.comb += words.ready.eq(room)
            with m.If(feeding):
                m.d.sync += feed.eq(Mux(feed == cols - 1, 0, feed + 1))
                if fetch is not None and cols > 1:     # the next column's words, meanwhile
                    m.d.comb += [fetch.start.eq(1),
                                 fetch.column.eq(Mux(feed == cols - 1, 0, feed + 1))]
        else:
            m.d.comb += words.ready.eq(room)
        m.d.comb += take.eq(words.valid & words.ready)

        valid, last = Signal(latency), Signal(latency)
        m.d.sync += [valid.eq(Cat(take, valid[:-1])), last.eq(Cat(words.payload.last, last[:-1]))]
        raw = [Signal(cols * 32, name=f"raw_d{n}") for n in range(latency)]
        half = [Signal(cols * 16, name=f"fp16_d{n}") for n in range(latency)]
        int8 = Signal(cols * 8)
        m.d.sync += [raw[0].eq(words.payload.data)]
        unit_class = SerialRequantizer if serial else Requantizer
        halves, serial_units = [], []
        for j in range(cols):
            lane = words.payload.data[32 * j:32 * j + 32]
            if self.fp16_output:
                narrow = m.submodules[f"fp16_{j}"] = Fp32ToFp16()
                m.d.comb += narrow.a.eq(lane)
                halves.append(narrow.result)
            if self.requantizer == "shared":
                continue
            requant = m.submodules[f"requant_{j}"] = unit_class()
            self._requantizer_inputs(m, requant, lane, [p.word_select(j, 32) for p in params],
                                     use_bias, relu)
            m.d.comb += [
                requant.valid_in.eq(take & (mode == StoreMode.INT8) if serial else take),
                int8[8 * j:8 * j + 8].eq(requant.result),
            ]
            serial_units.append(requant)
        if self.requantizer == "shared":
            int8_done = self._shared_unit(m, unit, feed, feeding, int8, use_bias, params, relu)
        elif serial:
            int8_done = self._collect_serial(m, serial_units, take, mode, row_in_units)
        for n in range(1, latency):
            m.d.sync += raw[n].eq(raw[n - 1])
        if self.fp16_output:
            m.d.sync += half[0].eq(Cat(*halves))
            for n in range(1, latency):
                m.d.sync += half[n].eq(half[n - 1])
        row = Signal(cols * 32)
        with m.Switch(mode):
            with m.Case(StoreMode.INT8):
                m.d.comb += row.eq(int8)
            if self.fp16_output:
                with m.Case(StoreMode.FP16):
                    m.d.comb += row.eq(half[-1])
            with m.Default():
                m.d.comb += row.eq(raw[-1])
        if serial:
            # INT8 rows come from the serial units, one row at a time, when all have finished
            row_last = Signal()
            with m.If(take):
                m.d.sync += row_last.eq(words.payload.last)
            with m.If(mode == StoreMode.INT8):
                m.d.comb += [fifo.w_en.eq(int8_done),
                             fifo.w_data.eq(Cat(int8, C(0, cols * 24), row_last))]
            with m.Else():
                m.d.comb += [fifo.w_en.eq(valid[-1]), fifo.w_data.eq(Cat(row, last[-1]))]
        else:
            m.d.comb += [fifo.w_en.eq(valid[-1]), fifo.w_data.eq(Cat(row, last[-1]))]

        # Serialise rows into beats (only the row's meaningful low bytes): rows of one beat
        # or more beat by beat; narrower rows packed several to a beat.
        out = self.dma_data
        done = Signal()
        packers = {mode_value: ratio[1] for mode_value, ratio in self.ratios.items()
                   if ratio[1] > 1}
        with m.Switch(mode):
            for mode_value, per_beat in packers.items():
                with m.Case(mode_value):
                    packer = WordsToBeats(self.beat_width, words_per_beat=per_beat)
                    m.submodules[f"pack_{mode_value.name.lower()}"] = packer
                    m.d.comb += [
                        packer.i.valid.eq(fifo.r_rdy),
                        packer.i.payload.data.eq(fifo.r_data),
                        packer.i.payload.last.eq(fifo.r_data[-1]),
                        fifo.r_en.eq(packer.i.ready),
                        out.valid.eq(packer.o.valid), out.payload.eq(packer.o.payload.data),
                        packer.o.ready.eq(out.ready),
                        done.eq(packer.o.valid & out.ready & packer.o.payload.last),
                    ]
            with m.Default():
                self._serialise(m, fifo, beats_per_row, done)
        return done

    def _stream_direct(self, m, mode, relu, use_bias, params, beats_per_row, fetch):
        """Rows -> beats without a FIFO (:attr:`direct`): RAW32 beats are slices of the
        result buffer's word, which it holds until taken (block RAM data on the iCE40: no
        flip-flops); an INT8 row, ``cols`` bytes, waits in a register of its own until its
        beats leave, and the next row's columns go into the shared requantiser only while
        that register is free. Returns the "final beat sent" signal."""
        cols, words, out = self.cols, self.result_words, self.dma_data
        int8_mode = mode == StoreMode.INT8
        unit = m.submodules.requant = SerialRequantizer()
        int8 = Signal(cols * 8)
        held, held_valid, held_last, row_last = (Signal(cols * 8, name="int8_row"),
                                                 Signal(name="int8_row_valid"),
                                                 Signal(name="int8_row_last"),
                                                 Signal(name="int8_row_final"))
        feed = Signal(range(cols))
        feeding = Signal()
        params_ready = 1 if fetch is None else fetch.ready
        m.d.comb += feeding.eq(words.valid & ~held_valid & unit.ready & params_ready & int8_mode)
        with m.If(feeding):
            m.d.sync += feed.eq(Mux(feed == cols - 1, 0, feed + 1))
            if fetch is not None and cols > 1:     # the next column's words, meanwhile
                m.d.comb += [fetch.start.eq(1),
                             fetch.column.eq(Mux(feed == cols - 1, 0, feed + 1))]
            with m.If(feed == cols - 1):
                m.d.sync += row_last.eq(words.payload.last)
        int8_done = self._shared_unit(m, unit, feed, feeding, int8, use_bias, params, relu)
        with m.If(int8_done):
            m.d.sync += [held.eq(int8), held_valid.eq(1), held_last.eq(row_last)]

        beat = Signal(range(cols * 32 // self.beat_width + 1))
        final_beat = beat == beats_per_row - 1
        source = Mux(int8_mode, held, words.payload.data)
        with m.Switch(beat):
            for n in range(cols * 32 // self.beat_width):
                with m.Case(n):
                    m.d.comb += out.payload.eq(source[n * self.beat_width:
                                                      (n + 1) * self.beat_width])
        done = Signal()
        m.d.comb += out.valid.eq(Mux(int8_mode, held_valid, words.valid))
        with m.If(int8_mode):
            # the row leaves the result buffer with its last column
            m.d.comb += words.ready.eq(feeding & (feed == cols - 1))
        with m.Else():
            m.d.comb += words.ready.eq(out.ready & final_beat)
        with m.If(out.valid & out.ready):
            m.d.sync += beat.eq(Mux(final_beat, 0, beat + 1))
            m.d.comb += done.eq(final_beat & Mux(int8_mode, held_last, words.payload.last))
            with m.If(int8_mode & final_beat):
                m.d.sync += held_valid.eq(0)
        return done

    def _collect_serial(self, m, units, take, mode, busy):
        """INT8 with serial requantisers: a taken row is in the units (``busy``) until every
        column has its result. Returns the one-cycle "row done" pulse (results on the units'
        ports)."""
        finished = Signal(len(units))
        done = Signal()
        all_done = Cat(*(finished[j] | unit.valid_out for j, unit in enumerate(units))).all()
        m.d.comb += done.eq(busy & all_done)
        with m.If(take & (mode == StoreMode.INT8)):
            m.d.sync += [busy.eq(1), finished.eq(0)]
        with m.Elif(done):
            m.d.sync += [busy.eq(0), finished.eq(0)]
        with m.Else():
            m.d.sync += finished.eq(finished | Cat(*(unit.valid_out for unit in units)))
        return done

    @staticmethod
    def _requantizer_inputs(m, unit, lane, words, use_bias, relu):
        """A requantiser's inputs for one column: its 32-bit ``lane`` and its three parameter
        words (:data:`PARAM_WORDS`: bias, multiplier, ``shift | zero_point << 8``)."""
        bias, multiplier, shift_zero_point = words
        m.d.comb += [unit.acc.eq(lane), unit.bias.eq(Mux(use_bias, bias, 0)),
                     unit.multiplier.eq(multiplier), unit.shift.eq(shift_zero_point[:5]),
                     unit.zero_point.eq(shift_zero_point[8:16]), unit.relu.eq(relu)]

    def _shared_unit(self, m, unit, feed, feeding, int8, use_bias, params, relu):
        """INT8 with one shared serial requantiser: column ``feed`` of the row on
        ``result_words`` goes in with its parameters; results come out in column order into
        a shift register, so ``int8`` (comb) holds the whole row in the cycle of the last
        result. Returns that cycle's "row done" pulse."""
        cols = self.cols
        column_params = params if self.param_lanes else [p.word_select(feed, 32) for p in params]
        self._requantizer_inputs(m, unit, self.result_words.payload.data.word_select(feed, 32),
                                 column_params, 1 if self.param_lanes else use_bias, relu)
        m.d.comb += unit.valid_in.eq(feeding)
        earlier = Signal(8 * cols)      # results so far, the latest in the top byte
        results = Signal(range(cols))   # results of the row so far
        done = Signal()
        m.d.comb += [done.eq(unit.valid_out & (results == cols - 1)),
                     int8.eq(Cat(earlier[8:], unit.result))]
        with m.If(unit.valid_out):
            m.d.sync += [earlier.eq(Cat(earlier[8:], unit.result)),
                         results.eq(Mux(done, 0, results + 1))]
        return done

    def _serialise(self, m, fifo, beats_per_row, done):
        """Rows of one beat or more: ``beats_per_row`` beats from each FIFO row."""
        cols = self.cols
        beat = Signal(range(cols * 32 // self.beat_width + 1))
        out = self.dma_data
        final_beat = beat == beats_per_row - 1
        with m.Switch(beat):
            for n in range(cols * 32 // self.beat_width):
                with m.Case(n):
                    m.d.comb += out.payload.eq(
                        fifo.r_data[n * self.beat_width:(n + 1) * self.beat_width])
        m.d.comb += [out.valid.eq(fifo.r_rdy), fifo.r_en.eq(out.ready & final_beat)]
        with m.If(out.valid & out.ready):
            m.d.sync += beat.eq(Mux(final_beat, 0, beat + 1))
            m.d.comb += done.eq(final_beat & fifo.r_data[-1])


class _ColumnFetch:
    """The store's request for one column's parameter words (``param_lanes``): ``start`` and
    ``column`` in (comb), ``ready`` out (no fetch running)."""

    def __init__(self, cols):
        self.start = Signal(name="fetch_start")
        self.column = Signal(range(cols), name="fetch_column")
        self.ready = Signal(name="fetch_ready")
