"""The output-stationary int8 systolic array with skewed inputs and a streaming drain."""
from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .ice40_dual_multiplier import Ice40DualMultiplier
from .layouts import BeatControl, check_datapaths, operand_layout, operand_shape, result_layout
from .processing_element import (
    ProcessingElement,
    check_acc_width,
    check_clear_after_last,
    check_fp32_adder_stages,
    check_product_stages,
    fp16_delay,
)
from .register_copies import register_copies
from .skew_buffer import SkewBuffer

__all__ = ["SystolicArray"]


def _check_dimension(name, value):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, not {value}")


class SystolicArray(wiring.Component):
    """``rows`` x ``cols`` output-stationary array computing ``C = A @ B`` one tile at a time.

    A tile is ``A`` (``rows`` x ``K``) times ``B`` (``K`` x ``cols``) into ``C`` (``rows`` x
    ``cols``), for any ``K >= 1``: int8 operands into int32 (wrapping), or binary16 operands
    into binary32 (exact products, round-to-nearest-even sums in ascending ``k``), as the
    ``datapaths`` of the build allow; a dual build picks per tile with the beats' ``fp16``.

    Ports
    -----
    operands : In(stream)
        One beat per ``k``: ``a[i] = A[i, k]``, ``b[j] = B[k, j]``, ``last`` on ``k = K - 1``
        (and in dual builds ``fp16``, the same for all beats of a tile).
        ``valid`` may drop at any time (bubbles are carried through the array). ``ready`` is
        low for a ``last`` beat that comes less than :attr:`tile_spacing` cycles after the
        previous accepted ``last``: the drain of one tile takes ``rows`` cycles, so tiles
        shorter than ``rows`` beats are spaced out; int8 tiles with ``K >= rows`` stream back
        to back. With ``fp32_adder_stages=3`` it is also low for an fp16 beat less than
        :attr:`fp16_beat_cycles` cycles after an fp16 beat (the PEs' accumulation loop is
        that long), and for an int8 beat less than :attr:`fp16_delay` ``+ 1`` cycles after
        one (the fp16 sum must be in the accumulator first).
    results : Out(stream, always ready)
        ``rows`` beats per tile, bottom row first: ``data[j] = C[row, j]``, ``last`` on row 0.
        The consumer must take a beat in every cycle ``valid`` is high (no backpressure).
    next_row : Out({valid, row})
        What ``results`` will show in the next cycle: its ``valid`` and ``row`` (for a
        consumer that looks the row up a cycle ahead).

    Latency (no bubbles): the first result row appears :attr:`latency` (``rows + cols +
    product_stages - 1``) cycles after the cycle in which the tile's ``last`` beat was
    accepted (:attr:`fp16_delay` more for fp16 tiles); the tile's last row ``rows - 1``
    cycles later. See
    ``docs/architecture.md`` for the timing diagram.

    Parameters
    ----------
    rows, cols : int
        Array dimensions, each ``>= 1``.
    acc_width : int
        Accumulator width in bits (default 32; must be 32 with fp16).
    datapaths : collection of str
        ``("int8",)`` (default), ``("fp16",)`` or ``("int8", "fp16")``.
    pe_class : type
        The cell to instantiate; mutation tests substitute a faulty
        :class:`ProcessingElement` subclass here.
    lut_multipliers : int
        How many PEs build their int8 multiply from LUTs instead of a DSP (the bottom rows,
        right to left): for arrays with more PEs than the FPGA has multipliers (an ECP5-85F
        has 156 MULT18X18D; a 16x16 array needs 256 products a cycle).
    paired_multipliers : bool
        The PEs that use a DSP share one :class:`~hw.ice40_dual_multiplier.
        Ice40DualMultiplier` per two (row-major neighbours): on iCE40 parts with DSPs, two
        int8 products per SB_MAC16 (a 4x4 array in the UP5K's 8); elsewhere, and in
        simulation, the same registered products written as ``a * b``. int8 only.
    fp32_adder_stages : int
        1 (default) or 3 (fp16 datapath only): the PEs' binary32 adder in one cycle (one fp16
        beat a cycle, a long loop) or in three register stages (one fp16 beat every 3
        cycles, a clock about 2.4x higher on the ECP5). Same results.
    separate_control : bool
        Each PE's beat qualifiers in flip-flops of its own that synthesis does not merge with
        the PEs' on its anti-diagonal (:class:`ProcessingElement`; ECP5 only, else plain
        registers), and each PE's ``drain_start`` from a two-level register tree instead of
        one register per column (:meth:`_drain_starts`); same rows at the same cycles.
        Their reset is the domain's own, which a ``ResetInserter`` above does not reach:
        for arrays in a clock domain without a soft reset (the compute unit's own).
    product_stages : int
        1 (default), 2 or 3 (int8-only arrays without ``paired_multipliers``): registers
        each PE's product goes through (:class:`ProcessingElement`; 2 splits the multiply's
        path, 3 also gives a DSP's product a cycle to reach its accumulator, for the
        clock). Every PE has the same latency; results come
        ``product_stages - 1`` cycles later (:attr:`latency`), the tile spacing and the
        results are the same.
    clear_after_last : bool
        int8-only arrays: each PE's result is taken from its accumulator in the cycle after
        the tile's ``last`` beat, which clears it, instead of the next ``first`` beat
        skipping it (:class:`ProcessingElement`: a logic cell fewer per result bit on the
        iCE40). Results come a cycle later (:attr:`latency`) and a tile's first beat is
        not accepted in the cycle after the previous tile's ``last`` beat (one cycle
        between back-to-back tiles, :meth:`ideal_cycles`). Same results.
    aligned_drain : bool
        Every column starts draining when the last column does, so the rows leave the
        array aligned, without the deskew registers (``acc_width`` x ``cols * (cols - 1)
        / 2`` flip-flops; 138 on the UP5K's 4x4): the early columns hold their results up
        to ``cols - 1`` cycles longer, so :attr:`tile_spacing` grows by ``cols - 1``
        (tiles shorter than ``rows + cols - 1`` beats are spaced out). Same latency and
        results; for builds whose tiles do not stream back to back (the accelerator runs
        one COMPUTE at a time).
    broadcast_operands : bool
        Each beat's operands reach every PE of their row (A) and column (B) in the cycle
        they are accepted, instead of flowing one PE a cycle: no skew registers and no
        forwarding registers between the PEs (on the UP5K's 4x4 about 300 flip-flops,
        each a logic cell of its own: 318 cells). For small arrays only, whose rows and
        columns are short wires: an operand bit drives ``cols`` (A) or ``rows`` (B)
        multipliers, the beat's qualifiers every PE, and the default systolic flow is what
        keeps a large array's clock. Every PE finishes a tile in the same cycle: results
        ``rows + cols - 2`` cycles sooner (:attr:`latency`), and the columns drain
        together without deskew registers or waiting (``aligned_drain`` then costs no tile
        spacing). Same results.
    """

    def __init__(self, rows, cols, *, acc_width=32, datapaths=("int8",),
                 pe_class=ProcessingElement, lut_multipliers=0, paired_multipliers=False,
                 fp32_adder_stages=1, separate_control=False, product_stages=1,
                 clear_after_last=False, aligned_drain=False, broadcast_operands=False):
        _check_dimension("rows", rows)
        _check_dimension("cols", cols)
        if not isinstance(lut_multipliers, int) or not 0 <= lut_multipliers <= rows * cols:
            raise ValueError(f"lut_multipliers must be an integer in 0..{rows * cols}, not "
                             f"{lut_multipliers!r}")
        self.lut_multipliers = lut_multipliers
        datapaths = check_datapaths(datapaths)
        if not isinstance(paired_multipliers, bool):
            raise TypeError(f"paired_multipliers must be True or False, not "
                            f"{paired_multipliers!r}")
        if paired_multipliers and datapaths != ("int8",):
            raise ValueError(f"paired multipliers serve int8-only arrays, not {datapaths}")
        self.paired_multipliers = paired_multipliers
        check_acc_width(acc_width, datapaths)
        check_fp32_adder_stages(fp32_adder_stages, datapaths)
        check_product_stages(product_stages, datapaths,
                             "external" if paired_multipliers else "dsp")
        self.product_stages = product_stages
        check_clear_after_last(clear_after_last, datapaths)
        self.clear_after_last = clear_after_last
        if not isinstance(aligned_drain, bool):
            raise TypeError(f"aligned_drain must be True or False, not {aligned_drain!r}")
        self.aligned_drain = aligned_drain
        if not isinstance(broadcast_operands, bool):
            raise TypeError(f"broadcast_operands must be True or False, not "
                            f"{broadcast_operands!r}")
        self.broadcast_operands = broadcast_operands
        self.fp32_adder_stages = fp32_adder_stages
        self.separate_control = separate_control
        #: cycles an fp16 tile's results come later than an int8 tile's
        self.fp16_delay = fp16_delay(fp32_adder_stages)
        #: cycles from one fp16 operand beat to the next (at least)
        self.fp16_beat_cycles = fp32_adder_stages
        if not (isinstance(pe_class, type) and issubclass(pe_class, ProcessingElement)):
            raise TypeError(f"pe_class must be a ProcessingElement subclass, not {pe_class!r}")
        self.rows = rows
        self.cols = cols
        self.acc_width = acc_width
        self.datapaths = datapaths
        self._pe_class = pe_class
        super().__init__({
            "operands": In(stream.Signature(operand_layout(rows, cols, datapaths))),
            "results": Out(stream.Signature(result_layout(rows, cols, acc_width),
                                            always_ready=True)),
            # what ``results`` will show in the next cycle: its valid and row
            "next_row": Out(data.StructLayout({"valid": 1, "row": range(rows)})),
        })

    @property
    def latency(self):
        """Cycles from accepting an int8 tile's ``last`` beat to its first result row (no
        bubbles): ``rows + cols + product_stages - 1``, one more with ``clear_after_last``,
        ``rows + cols - 2`` fewer with ``broadcast_operands`` (no operand flow across the
        array); :attr:`fp16_delay` more for an fp16 tile."""
        flow = 0 if self.broadcast_operands else self.rows + self.cols - 2
        return flow + self.product_stages + 1 + self.clear_after_last

    @property
    def tile_spacing(self):
        """Least cycles between two accepted ``last`` beats: ``rows`` (one tile drains while
        the next accumulates), plus :attr:`fp16_delay` in dual builds, whose int8 tiles
        capture that much earlier than fp16 ones and must not catch up with their drain.
        With three-stage adders at least 4 (+ ``fp16_delay`` in dual builds) even for
        fewer rows: the result buffer then needs a row's writes 4 cycles apart."""
        dual = len(self.datapaths) > 1
        rows = max(self.rows, 4) if self.fp32_adder_stages == 3 else self.rows
        # the early columns' wait (with broadcast operands no column is early)
        held = self.cols - 1 if self.aligned_drain and not self.broadcast_operands else 0
        return rows + held + (self.fp16_delay if dual else 0)

    def ideal_cycles(self, tile_ks, fp16=False):
        """Cycles from the first operand beat to the last result row of back-to-back tiles
        (all int8, or all fp16 with ``fp16=True``).

        With operands offered every cycle, beats of a tile come every cycle (int8) or every
        :attr:`fp16_beat_cycles` (fp16), a tile's first beat no earlier than that after the
        previous tile's last beat (int8 with ``clear_after_last``: a cycle later), and
        ``last`` beats at least :attr:`tile_spacing` apart; the last tile's rows arrive
        ``latency`` (+ ``fp16_delay``) to that + ``rows - 1`` cycles after its final beat.
        """
        tile_ks = list(tile_ks)
        if not tile_ks or any(k < 1 for k in tile_ks):
            raise ValueError(f"tile_ks must list at least one K >= 1, not {tile_ks!r}")
        step = self.fp16_beat_cycles if fp16 else 1
        last = None
        gap = step + (self.clear_after_last and not fp16)    # after a ``last`` beat
        for k in tile_ks:
            first = 0 if last is None else last + gap
            end = first + step * (k - 1)
            last = end if last is None else max(end, last + self.tile_spacing)
        delay = self.fp16_delay if fp16 else 0
        return last + 1 + self.latency + delay + self.rows - 1

    def elaborate(self, platform):
        m = Module()
        rows, cols = self.rows, self.cols

        beat = self._admit(m)

        dsp_pes = rows * cols - self.lut_multipliers
        paired = dsp_pes - dsp_pes % 2 if self.paired_multipliers else 0

        def multiplier(n):
            return "external" if n < paired else "dsp" if n < dsp_pes else "lut"

        pes = [[self._pe_class(acc_width=self.acc_width, datapaths=self.datapaths,
                               multiplier=multiplier(i * cols + j),
                               fp32_adder_stages=self.fp32_adder_stages,
                               separate_control=self.separate_control,
                               product_stages=self.product_stages,
                               clear_after_last=self.clear_after_last)
                for j in range(cols)]
               for i in range(rows)]
        for i in range(rows):
            for j in range(cols):
                m.submodules[f"pe_{i}_{j}"] = pes[i][j]
        flat = [pe for row in pes for pe in row]
        for n in range(0, paired, 2):
            pair = m.submodules[f"multiplier_{n // 2}"] = Ice40DualMultiplier()
            for lane, pe in enumerate(flat[n:n + 2]):
                m.d.comb += [getattr(pair, f"a{lane}").eq(pe.a_in[:8].as_signed()),
                             getattr(pair, f"b{lane}").eq(pe.b_in[:8].as_signed()),
                             pe.product_in.eq(getattr(pair, f"p{lane}"))]
        if self.broadcast_operands:
            for i, row in enumerate(pes):
                for j, pe in enumerate(row):
                    m.d.comb += [pe.a_in.eq(beat["a"][i]), pe.b_in.eq(beat["b"][j]),
                                 pe.ctl_in.eq(beat["ctl"])]
        else:
            self._connect_mesh(m, pes, beat)
        valid, column_data = self._connect_drain(m, pes, platform)

        if self.aligned_drain or self.broadcast_operands:   # the drains are aligned already
            self._emit_rows(m, valid, column_data)
            return m
        # Deskew: column j finishes j cycles after column 0; delay the early ones to align.
        m.submodules.result_deskew = deskew = SkewBuffer(
            signed(self.acc_width), [cols - 1 - j for j in range(cols)], reset_less=True)
        m.d.comb += deskew.i.eq(column_data)
        self._emit_rows(m, valid, deskew.o)
        return m

    def _admit(self, m):
        """Operand stream handshake: tile spacing, fp16 beat spacing, and the ``first`` flag
        of each tile."""
        spacing = self.tile_spacing
        payload = self.operands.payload
        dual = len(self.datapaths) > 1
        fp16 = payload.fp16 if dual else Const(self.datapaths == ("fp16",), 1)
        fresh = Signal(init=1)                       # next accepted beat starts a tile
        # ``clear_after_last``: the cycle after an accepted ``last`` beat takes no beat
        just_last = Signal()
        since_last = Signal(range(spacing + 1), init=spacing)  # cycles since a ``last`` (sat.)
        # After an fp16 beat: another fp16 beat may follow fp16_beat_cycles later (its sum
        # needs the previous one), an int8 beat only once the fp16 sum has landed in the
        # accumulator (fp16_delay + 1 later), or both would write it in the same cycle.
        hold = Signal(range(self.fp16_delay + 1))
        fp16_gap = self.fp16_delay - self.fp16_beat_cycles + 1
        accept = Signal()
        m.d.comb += [
            self.operands.ready.eq((hold <= Mux(fp16, fp16_gap, 0)) &
                                   (~payload.last | (since_last == spacing)) & ~just_last),
            accept.eq(self.operands.valid & self.operands.ready),
        ]
        with m.If(accept):
            m.d.sync += fresh.eq(payload.last)
        if self.clear_after_last:
            m.d.sync += just_last.eq(accept & payload.last)
        with m.If(accept & payload.last):
            m.d.sync += since_last.eq(1 if spacing > 1 else spacing)
        with m.Elif(since_last != spacing):
            m.d.sync += since_last.eq(since_last + 1)
        if self.fp16_delay:
            with m.If(accept & fp16):
                m.d.sync += hold.eq(self.fp16_delay)
            with m.Elif(hold != 0):
                m.d.sync += hold.eq(hold - 1)
        ctl = Signal(BeatControl)
        m.d.comb += [ctl.valid.eq(accept), ctl.first.eq(fresh), ctl.last.eq(payload.last),
                     ctl.fp16.eq(fp16)]
        return {"a": payload.a, "b": payload.b, "ctl": ctl}

    def _connect_mesh(self, m, pes, beat):
        """A flows left to right, B top to bottom, one PE per cycle: row i of A (with the
        beat qualifiers) enters i cycles late, column j of B j cycles late."""
        # Operands are data (the qualifiers say when they count): no reset.
        lane = operand_shape(self.datapaths)
        m.submodules.a_skew = a_skew = SkewBuffer(lane, range(self.rows), reset_less=True)
        m.submodules.ctl_skew = ctl_skew = SkewBuffer(BeatControl, range(self.rows))
        m.submodules.b_skew = b_skew = SkewBuffer(lane, range(self.cols), reset_less=True)
        for i in range(self.rows):
            m.d.comb += [a_skew.i[i].eq(beat["a"][i]), ctl_skew.i[i].eq(beat["ctl"])]
        m.d.comb += b_skew.i.eq(beat["b"])
        for i, row in enumerate(pes):
            for j, pe in enumerate(row):
                if j == 0:
                    m.d.comb += [pe.a_in.eq(a_skew.o[i]), pe.ctl_in.eq(ctl_skew.o[i])]
                else:
                    m.d.comb += [pe.a_in.eq(row[j - 1].a_out), pe.ctl_in.eq(row[j - 1].ctl_out)]
                if i == 0:
                    m.d.comb += pe.b_in.eq(b_skew.o[j])
                else:
                    m.d.comb += pe.b_in.eq(pes[i - 1][j].b_out)

    def _connect_drain(self, m, pes, platform):
        """Per column: when the bottom PE captures, shift the column's results out downwards.
        Returns the last column's drain window (when a result row leaves the array) and the
        bottom PEs' results."""
        rows, cols = self.rows, self.cols
        column_data = Signal(self.results.payload.data.shape())
        for j in range(cols):
            # aligned: every column drains when the last one does
            last = pes[rows - 1][cols - 1 if self.aligned_drain else j]
            starts = self._drain_starts(m, last, j, platform)
            for i in range(rows):
                pe = pes[i][j]
                m.d.comb += pe.drain_start.eq(starts[i])
                if i == 0:
                    m.d.comb += [pe.drain_token_in.eq(starts[i]), pe.result_in.eq(0)]
                else:
                    m.d.comb += [pe.drain_token_in.eq(pes[i - 1][j].drain_token_out),
                                 pe.result_in.eq(pes[i - 1][j].result_out)]
            m.d.comb += column_data[j].eq(pes[rows - 1][j].result_out)
        # The bottom-right PE drains for the ``rows`` cycles from the one after its capture
        # (``drain_start``). Its ``draining`` is a LUT after registers spread over the column;
        # the results' consumers take it as a clock enable across the die (16x16 on the
        # ECP5: 15.5 ns, the array clock's critical path). The same window from a register
        # of its own: captures are at least ``tile_spacing >= rows`` cycles apart, so windows
        # never overlap, at most abut.
        bottom = pes[rows - 1][cols - 1]
        valid = Signal()
        left = Signal(range(rows))                   # window cycles after this one
        with m.If(bottom.done):
            m.d.sync += [valid.eq(1), left.eq(rows - 1)]
        with m.Elif(left != 0):
            m.d.sync += left.eq(left - 1)
        with m.Else():
            m.d.sync += valid.eq(0)
        m.d.comb += self.next_row.valid.eq(bottom.done | (left != 0))
        return valid, column_data

    def _drain_starts(self, m, bottom, column, platform):
        """Each row's ``drain_start`` of a column: the bottom PE's ``done``, registered.

        One register broadcast to the column's PEs (``rows`` x the result width of clock
        enables up the whole column), or with ``separate_control`` a tree of two: the bottom
        PE's ``done_early`` into one register per four rows, each into one per PE (ECP5
        flip-flops that stay apart, :func:`~hw.register_copies.register_copies`), the same
        cycle. The broadcast was the array clock's critical path of the 16x16 ECP5 system
        (10 ns of routing up a column)."""
        if not self.separate_control:
            start = Signal(name=f"drain_start_{column}")
            m.d.sync += start.eq(bottom.done)
            return [start] * self.rows
        groups = register_copies(m, platform, "sync", bottom.done_early,
                                 (self.rows + 3) // 4, name=f"drain_group_{column}",
                                 reset=True)
        return [register_copies(m, platform, "sync", groups[i // 4], 1,
                                name=f"drain_start_{column}_{i}", reset=True)[0]
                for i in range(self.rows)]

    def _emit_rows(self, m, valid, row_data):
        """Number the drained rows (bottom first) and mark the tile's final row."""
        rows = self.rows
        count = Signal(range(rows))
        count_next = Signal(range(rows))
        with m.If(valid):
            m.d.comb += count_next.eq(Mux(count == rows - 1, 0, count + 1))
        with m.Else():
            m.d.comb += count_next.eq(count)
        m.d.sync += count.eq(count_next)
        m.d.comb += [
            self.next_row.row.eq(rows - 1 - count_next),
            self.results.valid.eq(valid),
            self.results.payload.data.eq(row_data),
            self.results.payload.row.eq(rows - 1 - count),
            self.results.payload.last.eq(count == rows - 1),
        ]
