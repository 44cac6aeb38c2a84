"""The Loom accelerator: the systolic array wrapped as an AXI peripheral with DMA."""
from amaranth.hdl import Module, Mux, ResetInserter, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .axi import AxiLiteSignature, AxiSignature, connect_members
from .compute_unit import ComputeUnit
from .csr_bank import CsrBank
from .csr_map import ID_MAGIC, VERSION, pack
from .dma_reader import DmaReader
from .dma_writer import DmaWriter
from .layouts import check_datapaths, operand_shape
from .load_unit import LoadUnit
from .operand_buffer import OperandBuffer
from .register_copies import register_copies
from .sequencer import ERROR, SPAN_MULTIPLIERS, Sequencer, span_steps
from .store_unit import SERIAL_REQUANTIZERS, StoreUnit
from .width_converter import word_ratio

__all__ = ["Accelerator"]


class Accelerator(wiring.Component):
    """Loom as a SoC peripheral: AXI4-Lite registers, one AXI4 master port, an interrupt.

    The host writes descriptors (``hw/isa.py``) into its memory, points ``DESC_ADDR`` /
    ``DESC_COUNT`` at them, sets the DMA window and writes ``CONTROL.start``; the device
    fetches and runs them (``hw/sequencer.py``) and sets ``STATUS.done`` or ``STATUS.error``.
    Registers: ``docs/registers.md``. Blocks and data layout: ``docs/accelerator.md``.

    Parameters
    ----------
    rows, cols : int
        Array shape.
    datapaths : collection of str
        ``("int8",)``, ``("fp16",)`` or both.
    data_width : int
        AXI4 data width in bits (32, 64, 128, 256). Buffer words (``rows`` or ``cols`` lanes) and
        stored rows must be power-of-two multiples or fractions of it; words narrower than a
        beat travel packed, several a beat (``docs/isa.md``), and a tile's stored rows must
        then fill whole beats (the store unit checks).
    depth : int
        Words per operand buffer slot: the largest ``K`` of one COMPUTE.
    slots : int
        Slots per buffer (2: double buffering).
    addr_width : int
        AXI4 address width (32).
    timeout : int
        DMA watchdog in cycles.
    dma_outstanding : int
        Bursts each DMA engine keeps in flight, 1 to 16 (``max_outstanding`` of
        :class:`~hw.dma_reader.DmaReader`); 1 costs nothing behind a memory that serves one
        burst at a time, and leaves the writer's burst-length FIFO one entry.
    requantizer : str
        ``"parallel"``: a pipelined requantiser per column (a row per cycle, DSP multipliers);
        ``"serial"``: a bit-serial one per column (66 cycles a row, no DSPs; for
        parts whose multipliers all go to the array); ``"shared"``: one bit-serial one for
        all columns in turn (``cols * 65`` cycles a row; for parts short of logic too).
        ``ARRAY_CONFIG.serial_requant`` / ``shared_requant`` tell. With ``"shared"`` and a
        parameter row (``cols * 32`` bits) of whole beats, the parameter buffer holds 32-bit
        lanes and the store unit keeps one column's parameters at a time
        (:class:`~hw.store_unit.StoreUnit` ``param_lanes``).
    lut_multipliers : int
        PEs whose int8 multiply is built from LUTs rather than a DSP (see
        :class:`~hw.systolic_array.SystolicArray`); results are the same.
    paired_multipliers : bool
        Two PEs share one DSP (iCE40 SB_MAC16 in 8x8 mode; see
        :class:`~hw.systolic_array.SystolicArray`); int8 only; results are the same.
    span_multiplier : str
        How the sequencer's descriptor check multiplies rows by pitch: ``"dsp"`` (a hard
        multiplier; two SB_MAC16 on iCE40), ``"lut"`` (adders, ~addr_width x log2(depth)
        bits of them; for parts whose DSPs all go to the array) or ``"serial"`` (one shift
        and add a cycle, log2(depth) cycles more per descriptor, ``BUS_CONFIG.check_steps``;
        32-bit buses, for parts short of logic too). Same error codes.
    result_storage : str
        ``"ram"``, ``"registers"`` or ``"shared_port"``: how the result buffer keeps its
        rows (:class:`~hw.result_buffer.ResultBuffer`'s ``storage``: ``"registers"``,
        flip-flops without the block-RAM pipeline's lookup registers, for parts without
        distributed RAM; ``"shared_port"``, one block RAM read through one port, one slot
        only, for parts short of logic). Same results and timing.
    fp32_adder_stages : int
        1 or 3 (builds with fp16): the binary32 adders of the fp16 accumulation (PEs and
        result buffer) in one cycle (one fp16 beat a cycle; a long path: ~27 MHz on the ECP5)
        or in three register stages (one fp16 beat every 3 cycles, the clock of the int8
        builds); ``ARRAY_CONFIG.fp16_beat_cycles`` tells. Same results.
    product_stages : int
        1, 2 or 3 (int8-only builds without ``paired_multipliers``): registers of each PE's
        int8 product (see :class:`~hw.systolic_array.SystolicArray`); 2 or 3 split the
        multiply's path for the array clock and land every COMPUTE's results
        ``product_stages - 1`` array cycles later. ``ARRAY_CONFIG.product_stages`` tells.
        Same results.
    operand_registers : bool
        ``False``: the operand buffers' block RAM data goes straight into the array, without
        their output registers and the register slice the ECP5 clock needs
        (:class:`~hw.compute_unit.ComputeUnit`); 2 cycles fewer per COMPUTE, for slow
        clocks and small parts. ``ARRAY_CONFIG.direct_operands`` tells. Same results.
    clear_after_last : bool
        int8-only builds: each PE's result taken from its accumulator the cycle after a
        tile's last beat, which clears it, not skipped by the next tile's first
        (:class:`~hw.processing_element.ProcessingElement`): fewer logic cells, for small
        parts; every COMPUTE's results one array cycle later.
        ``ARRAY_CONFIG.clear_after_last`` tells. Same results.
    aligned_drain : bool
        The array's columns drain together, without its deskew registers
        (:class:`~hw.systolic_array.SystolicArray`); its tiles then need ``cols - 1`` more
        cycles between them, which COMPUTEs, one at a time, never come close to. Same
        timing and results.
    broadcast_operands : bool
        Each operand beat reaches all PEs of its row and column at once instead of flowing
        through the array (:class:`~hw.systolic_array.SystolicArray`): no skew and
        forwarding registers, for small arrays on small parts; every COMPUTE's results
        ``rows + cols - 2`` array cycles sooner. ``ARRAY_CONFIG.broadcast_operands``
        tells. Same results.
    array_clock : bool
        ``True``: the compute path (operand buffers' read side, the array, the result
        buffer's write side) runs in its own clock domain ``array`` (top-level ports
        ``array_clk``/``array_rst``), e.g. twice the system clock; the rest stays in
        ``sync``. Commands, ``busy`` and the beat count cross in
        :class:`~hw.compute_unit.ComputeUnit`; a soft reset leaves the compute domain to
        finish what it has. ``ARRAY_CONFIG.array_clock`` tells; ``PERF_*`` cycle counts
        stay in system clock cycles.
    counter_width : int
        Bits of each ``PERF_*`` counter, 32 to 64 (``BUS_CONFIG.counter_bits``). 32-bit
        counters wrap sooner (total cycles after 2**32: 86 s at 50 MHz) and cost half the
        adders and flip-flops, which matters on small parts.
    """

    def __init__(self, rows, cols, *, datapaths=("int8",), data_width=128, depth=1024,
                 slots=2, addr_width=32, timeout=1 << 16, requantizer="parallel",
                 lut_multipliers=0, paired_multipliers=False, counter_width=64,
                 span_multiplier="dsp", result_storage="ram", fp32_adder_stages=1,
                 product_stages=1, operand_registers=True, clear_after_last=False,
                 aligned_drain=False, broadcast_operands=False, array_clock=False,
                 dma_outstanding=4):
        datapaths = check_datapaths(datapaths)
        lane_bits = operand_shape(datapaths).width
        for name, bits in (("an A word (rows lanes)", rows * lane_bits),
                           ("a B word (cols lanes)", cols * lane_bits),
                           ("a parameter word", cols * 32)):
            try:
                word_ratio(bits, data_width)
            except ValueError:
                raise ValueError(f"{name} is {bits} bits: it must be a power-of-two multiple "
                                 f"or fraction of the {data_width}-bit bus") from None
        if (not isinstance(counter_width, int) or isinstance(counter_width, bool)
                or not 32 <= counter_width <= 64):
            raise ValueError(f"counter_width must be an integer from 32 to 64, not "
                             f"{counter_width!r}")
        if span_multiplier not in SPAN_MULTIPLIERS:
            raise ValueError(f"span_multiplier must be one of {SPAN_MULTIPLIERS}, not "
                             f"{span_multiplier!r}")
        if span_multiplier == "serial" and data_width != 32:
            raise ValueError(f"span_multiplier='serial' needs a bus of 4 bytes (32 bits; one "
                             f"descriptor checked at a time), not {data_width} bits")
        if (not isinstance(dma_outstanding, int) or isinstance(dma_outstanding, bool)
                or not 1 <= dma_outstanding <= 16):
            raise ValueError(f"dma_outstanding must be an integer from 1 to 16, not "
                             f"{dma_outstanding!r}")
        if not isinstance(array_clock, bool):
            raise TypeError(f"array_clock must be True or False, not {array_clock!r}")
        self.counter_width = counter_width
        self.span_multiplier = span_multiplier
        self.rows, self.cols, self.datapaths = rows, cols, datapaths
        self.data_width, self.depth, self.slots = data_width, depth, slots
        self.addr_width, self.lane_bits = addr_width, lane_bits
        self.compute = ComputeUnit(rows, cols, datapaths=datapaths, depth=depth, slots=slots,
                                   lut_multipliers=lut_multipliers,
                                   paired_multipliers=paired_multipliers,
                                   result_storage=result_storage,
                                   fp32_adder_stages=fp32_adder_stages,
                                   product_stages=product_stages,
                                   operand_registers=operand_registers,
                                   clear_after_last=clear_after_last,
                                   aligned_drain=aligned_drain,
                                   broadcast_operands=broadcast_operands,
                                   domain="array" if array_clock else "sync")
        self.fp32_adder_stages = fp32_adder_stages
        self.product_stages = product_stages
        self.array_clock = array_clock
        self.store = StoreUnit(rows=rows, cols=cols, beat_width=data_width,
                               addr_width=addr_width, slots=slots, requantizer=requantizer,
                               fp16_output="fp16" in datapaths,
                               param_lanes=requantizer == "shared" and cols * 32 >= data_width)
        self.requantizer = requantizer
        self.timeout, self.dma_outstanding = timeout, dma_outstanding
        super().__init__({
            "csr": In(AxiLiteSignature(addr_width=12)),
            "mem": Out(AxiSignature(addr_width=addr_width, data_width=data_width)),
            "irq": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        # The address registers keep the bits the sequencer's checks use (docs/registers.md;
        # a count of 2**(addr_width - 4) descriptors or more is OUT_OF_WINDOW anyway)
        aw = self.addr_width
        m.submodules.csr = csr = CsrBank(kept_bits={
            "DESC_ADDR": aw, "WINDOW_BASE": aw, "WINDOW_LIMIT": aw, "DESC_COUNT": aw - 4})
        wiring.connect(m, wiring.flipped(self.csr), csr.bus)

        core = Module()   # everything a soft reset returns to idle
        seq = Sequencer(rows=self.rows, cols=self.cols, beat_bytes=self.data_width // 8,
                        depth=self.depth, slots=self.slots, addr_width=self.addr_width,
                        datapaths=self.datapaths, lane_bytes=self.lane_bits // 8,
                        span_multiplier=self.span_multiplier)
        reader = DmaReader(data_width=self.data_width, addr_width=self.addr_width,
                           max_outstanding=self.dma_outstanding, timeout=self.timeout)
        writer = DmaWriter(data_width=self.data_width, addr_width=self.addr_width,
                           max_outstanding=self.dma_outstanding, timeout=self.timeout)
        loader = LoadUnit(beat_width=self.data_width, addr_width=self.addr_width,
                          slots=2 * self.slots, targets={
                              "a": self.rows * self.lane_bits,
                              "b": self.cols * self.lane_bits,
                              "params": (self.cols * 32, self.store.param_width)})
        params = OperandBuffer(width=self.store.param_width, depth=self.store.param_slot_words,
                               slots=2 * self.slots)
        compute, store = self.compute, self.store
        glue = Module()   # the units' connections (the reader's owner is a register)
        units = (("sequencer", seq), ("reader", reader), ("writer", writer),
                 ("loader", loader), ("params", params), ("compute", compute),
                 ("store", store), ("glue", glue))
        # The soft reset a cycle after its CONTROL bit, from a register of each unit's own
        # (and one for the performance counters' clear, which must come with it): the
        # flip-flops' synchronous resets were one net from the bit, ORed with the system
        # reset in one LUT, to ~5,600 flip-flops across the die (19.5 ns of routing, the
        # system clock's critical path of the 16x16 ECP5 system at 48.5 MHz). Each unit's
        # OR of the two is then its own, next to it. STATUS and the counters show the
        # reset one cycle later than before.
        soft_resets = register_copies(m, platform, "sync", csr.control[1], len(units) + 1,
                                      name="soft_reset")
        for (name, unit), soft_reset in zip(units, soft_resets, strict=False):
            core.submodules[name] = ResetInserter({"sync": soft_reset})(unit)
        m.submodules.core = core

        self._connect_bus(glue, reader, writer)
        self._share_reader(glue, reader, seq, loader)
        self._connect_units(glue, seq, loader, params, compute, store, writer)
        self._registers(m, csr, seq, reader, writer, compute, soft_resets[-1])
        return m

    def _connect_bus(self, m, reader, writer):
        connect_members(m, reader.bus, self.mem)     # the read channels
        connect_members(m, writer.bus, self.mem)     # the write channels

    def _share_reader(self, m, reader, seq, loader):
        """Descriptor fetch and LOAD take turns on the DMA reader, a whole command each."""
        owner = Signal(2)           # 0 free, 1 fetch, 2 load
        with m.If(owner == 0):
            with m.If(seq.fetch_cmd.valid):
                m.d.comb += [reader.cmd.valid.eq(1), reader.cmd.payload.eq(seq.fetch_cmd.payload),
                             seq.fetch_cmd.ready.eq(reader.cmd.ready)]
                with m.If(reader.cmd.ready):
                    m.d.sync += owner.eq(1)
            with m.Elif(loader.dma_cmd.valid):
                m.d.comb += [reader.cmd.valid.eq(1),
                             reader.cmd.payload.eq(loader.dma_cmd.payload),
                             loader.dma_cmd.ready.eq(reader.cmd.ready)]
                with m.If(reader.cmd.ready):
                    m.d.sync += owner.eq(2)
        for n, sink in ((1, seq.fetch_data), (2, loader.dma_data)):
            m.d.comb += sink.payload.eq(reader.data.payload)
            with m.If(owner == n):
                m.d.comb += [sink.valid.eq(reader.data.valid),
                             reader.data.ready.eq(sink.ready)]
        with m.If(reader.data.valid & reader.data.ready & reader.data.payload.last):
            m.d.sync += owner.eq(0)

    def _connect_units(self, m, seq, loader, params, compute, store, writer):
        wiring.connect(m, seq.load_cmd, loader.cmd)
        m.d.comb += [seq.load_busy.eq(loader.busy), seq.store_busy.eq(store.busy)]
        for target, port in (("a", compute.a_write), ("b", compute.b_write),
                             ("params", params.write)):
            src = getattr(loader, f"write_{target}")
            m.d.comb += [port.valid.eq(src.valid), port.slot.eq(src.slot),
                         port.index.eq(src.index), port.data.eq(src.data)]
        # COMPUTE: the fp16 bit exists only in dual builds.
        cmd = seq.compute_cmd
        m.d.comb += [compute.cmd.valid.eq(cmd.valid), cmd.ready.eq(compute.cmd.ready),
                     seq.compute_busy.eq(compute.busy)]
        for name, _ in compute.cmd.payload.shape():
            m.d.comb += getattr(compute.cmd.payload, name).eq(getattr(cmd.payload, name))
        wiring.connect(m, seq.store_cmd, store.cmd)
        wiring.connect(m, store.result_read, compute.result_read)
        wiring.connect(m, compute.result_words, store.result_words)
        wiring.connect(m, store.param_read, params.read)
        wiring.connect(m, params.words, store.param_words)
        wiring.connect(m, store.dma_cmd, writer.cmd)
        m.d.comb += [writer.data.valid.eq(store.dma_data.valid),
                     writer.data.payload.eq(store.dma_data.payload),
                     store.dma_data.ready.eq(writer.data.ready),
                     store.dma_idle.eq(~writer.busy)]

    def _check_steps(self):
        """``BUS_CONFIG.check_steps``: cycles of a serial span multiply, else 0."""
        if self.span_multiplier != "serial":
            return 0
        return span_steps(self.depth, self.rows)

    def _registers(self, m, csr, seq, reader, writer, compute, soft_reset):
        beat_bytes = self.data_width // 8
        unit_error = Signal()
        code = Signal(8)
        with m.If(reader.error):
            m.d.comb += [unit_error.eq(1), code.eq(ERROR["AXI_READ_ERROR"])]
        with m.Elif(writer.error):
            m.d.comb += [unit_error.eq(1), code.eq(ERROR["AXI_WRITE_ERROR"])]
        with m.Elif(reader.timeout | writer.timeout):
            m.d.comb += [unit_error.eq(1), code.eq(ERROR["TIMEOUT"])]
        m.d.comb += [
            seq.start.eq(csr.control[0]), seq.desc_addr.eq(csr.desc_addr),
            seq.desc_count.eq(csr.desc_count), seq.window_base.eq(csr.window_base),
            seq.window_limit.eq(csr.window_limit),
            seq.unit_error.eq(unit_error), seq.unit_error_code.eq(code),
            csr.id.eq(ID_MAGIC),
            csr.version.eq(VERSION[0] << 16 | VERSION[1] << 8 | VERSION[2]),
            csr.array_config.eq(pack(
                "ARRAY_CONFIG", rows=self.rows, cols=self.cols,
                int8="int8" in self.datapaths, fp16="fp16" in self.datapaths,
                serial_requant=self.requantizer in SERIAL_REQUANTIZERS,
                shared_requant=self.requantizer == "shared",
                fp16_beat_cycles=self.fp32_adder_stages, array_clock=self.array_clock,
                product_stages=self.product_stages,
                direct_operands=not self.compute.operand_registers,
                clear_after_last=self.compute.array.clear_after_last,
                broadcast_operands=self.compute.array.broadcast_operands)),
            csr.bus_config.eq(beat_bytes | self.addr_width << 8 | self.counter_width << 16
                              | self._check_steps() << 24),
            csr.buffer_config.eq(self.depth | (self.rows * self.slots) << 16),
            csr.status.eq(seq.busy | seq.done << 1 | seq.error << 2 | seq.error_code << 8),
            self.irq.eq((seq.done & csr.irq_enable[0]) | (seq.error & csr.irq_enable[1])),
        ]
        counters = {
            "perf_total_cycles": seq.busy,
            "perf_busy_cycles": seq.busy & (reader.busy | writer.busy | compute.busy),
            "perf_array_active_cycles": compute.beats,
            "perf_dma_read_bytes": reader.data.valid & reader.data.ready,
            "perf_dma_write_bytes": writer.data.valid & writer.data.ready,
            "perf_dma_stall_cycles": seq.busy & ~compute.busy & (reader.busy | writer.busy),
        }
        scale = {"perf_dma_read_bytes": beat_bytes, "perf_dma_write_bytes": beat_bytes}
        macs = self.rows * self.cols
        macs_derived = not macs & (macs - 1)       # a power of two: PERF_MACS is derived
        if not macs_derived:
            counters["perf_macs"] = compute.beats
            scale["perf_macs"] = macs
        clear = csr.control[0] | soft_reset
        for name, event in counters.items():
            # counter_width bits, zero-extended to the 64-bit register (the constant high
            # bits cost nothing). The event is registered first (a clear drops it, as it
            # drops an event of its own cycle): counted a cycle later, the same counts, and
            # the handshakes that make the events stay off the counters' carry chains.
            held = Signal(len(event), name=f"{name}_event")
            m.d.sync += held.eq(Mux(clear, 0, event))
            event = held
            count = Signal(self.counter_width, name=name)
            m.d.comb += getattr(csr, name).eq(count)
            with m.If(clear):
                m.d.sync += count.eq(0)
            with m.Elif(event != 0):
                # events are 0/1, except the beats of a compute unit in its own clock
                m.d.sync += count.eq(count + (event if len(event) > 1 else 1) *
                                     scale.get(name, 1))
        if macs_derived:
            # the MACs are the active cycles' count shifted, wrapping alike (no counter of
            # their own)
            m.d.comb += csr.perf_macs.eq(
                (csr.perf_array_active_cycles << (macs.bit_length() - 1))[:self.counter_width])
