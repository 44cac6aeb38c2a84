"""One multiply-accumulate cell of the output-stationary systolic array."""
from amaranth.hdl import Cat, Const, Module, Mux, ResetSignal, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .ecp5_multiplier import Ecp5Multiplier
from .fp16_multiplier import Fp16Multiplier
from .fp32_adder import Fp32Adder
from .gated_adder import GatedAdder
from .layouts import BeatControl, check_datapaths, operand_shape
from .platforms import is_ecp5
from .register_copies import register_copies

__all__ = ["ProcessingElement", "check_acc_width", "check_clear_after_last",
           "check_fp32_adder_stages", "check_product_stages", "fp16_delay", "MULTIPLIERS",
           "PRODUCT_STAGES", "lut_product", "booth_digits", "booth_sum",
           "booth_halves", "booth_join"]

#: How a PE's int8 multiply is built: ``"dsp"`` writes ``a * b`` and lets synthesis map it to
#: a hard multiplier (one SB_MAC16 on iCE40; elaborated for an ECP5 platform, a hand-instanced
#: MULT18X18D whose own output register is the product register,
#: :class:`~hw.ecp5_multiplier.Ecp5Multiplier`); ``"lut"`` writes the
#: partial products out (:func:`lut_product`), which synthesis never turns into a DSP: for
#: arrays with more PEs than the part has multipliers; ``"external"`` takes the registered
#: product from the ``product_in`` port (a multiplier shared with another PE, e.g. two
#: products per iCE40 SB_MAC16: :class:`~hw.ice40_dual_multiplier.Ice40DualMultiplier`).
MULTIPLIERS = ("dsp", "lut", "external")

#: Registers an int8 product goes through (``product_stages``): 1, or 2 to split the
#: multiply's path (a LUT PE's Booth product was the 16x16 ECP5 array clock's critical path),
#: or 3 to give the route from a DSP PE's MULT18X18D to its accumulator a cycle of its own (a
#: DSP placed 89 tiles from its PE's fabric was the next one).
PRODUCT_STAGES = (1, 2, 3)


def lut_product(a, b, m=None):
    """The 16-bit signed product of signed 8-bit ``a`` and ``b`` from LUTs and carry chains: no
    ``*`` operator, so no multiplier cell for synthesis to map to a DSP.

    Radix-4 Booth: ``b`` is read as four digits ``d_k = b[2k-1] + b[2k] - 2*b[2k+1]`` in
    ``{-2..2}`` (``b[-1] = 0``), so ``a*b = sum(d_k * a << 2k)``: four partial products instead
    of eight. A negative digit takes the ones' complement of ``|d_k|*a`` and adds the missing
    1 at the partial product's lowest bit, placed in the zero low bits of the operand it is
    added to (the last one needs its own small add). Three adds of at most 16 bits and an
    increment, each on a carry chain: with ``m`` (the module being elaborated) the
    intermediate values are named signals of their own, which keeps yosys from merging all
    of it into one multi-operand adder built from LUTs. A LUT PE (ECP5, ``synth_ecp5``)
    measured 176 LUT4 + 30 CCU2C with this product, against 370 + 32 for a plain sum of
    eight shifted rows (a DSP PE: 67 + 16 and one MULT18X18D). Exact for all 65,536 operand
    pairs (``tb/test_dsp_mapping.py``).

    The digit muxes are :func:`booth_digits`, the adds :func:`booth_sum`: a PE with
    ``product_stages=2`` registers the partial products between the two; with 3 it also
    registers the two halves of the sum (:func:`booth_halves`, :func:`booth_join`)."""
    return booth_sum(*booth_digits(a, b, m), m)


def booth_digits(a, b, m=None):
    """The four radix-4 Booth partial products of :func:`lut_product` (signed 9 bits each,
    ones' complement where the digit is negative) and their ``neg`` bits (``Value`` s of one
    bit): the digit muxes, before any add."""
    parts, negs = [], []
    for k in range(4):
        hi, mid = b[2 * k + 1], b[2 * k]
        lo = b[2 * k - 1] if k else Const(0, 1)
        one = mid ^ lo                                   # |d_k| == 1
        two = (hi & ~mid & ~lo) | (~hi & mid & lo)       # |d_k| == 2
        neg = hi & ~(mid & lo)                           # d_k < 0
        magnitude = Mux(one, a, Mux(two, a << 1, 0))       # signed, 9 bits
        parts.append(_named(m, f"booth_{k}", Mux(neg, ~magnitude, magnitude)))
        negs.append(neg)
    return parts, negs


def booth_sum(parts, negs, m=None):
    """The 16-bit signed product from :func:`booth_digits`' ``parts`` and ``negs``: three
    adds and an increment on carry chains."""
    low, high = booth_halves(parts, negs, m)
    return booth_join(low, high, negs[1], negs[3], m)


def booth_halves(parts, negs, m=None):
    """``d0 + 4 d1`` and ``d2 + 4 d3`` (signed 12 bits each, the ``neg`` bits of digits 0 and
    2 added in): the two independent adds of :func:`booth_sum`."""
    low = _named(m, "booth_low", parts[0] + Cat(negs[0], Const(0, 1), parts[1]).as_signed())
    high = _named(m, "booth_high", parts[2] + Cat(negs[2], Const(0, 1), parts[3]).as_signed())
    return low, high


def booth_join(low, high, neg1, neg3, m=None):
    """The 16-bit signed product from :func:`booth_halves` and the ``neg`` bits of digits 1
    and 3: ``low + 16 high`` and the increment."""
    # arithmetic modulo 2**16 is exact since every product fits 16 signed bits
    total = _named(m, "booth_total",
                   (low + Cat(Const(0, 2), neg1, Const(0, 1), high).as_signed())[:16])
    return (total + Cat(Const(0, 6), neg3))[:16].as_signed()


def _named(m, name, value):
    """``value`` through a signal of its own in ``m`` (when given), so each add stays its own
    carry chain."""
    if m is None:
        return value
    signal = Signal(value.shape(), name=name)
    m.d.comb += signal.eq(value)
    return signal


def fp16_delay(fp32_adder_stages):
    """Cycles an fp16 beat's sum lands (and a ``last`` beat captures) after an int8 beat's:
    none with one-stage adders; with three-stage ones, one for the multiplier's second
    stage and two for the adder."""
    return 0 if fp32_adder_stages == 1 else 3


def check_fp32_adder_stages(stages, datapaths):
    """Raise unless ``stages`` is 1 or 3 (3 only where there is an fp16 datapath)."""
    if stages not in (1, 3) or isinstance(stages, bool):
        raise ValueError(f"fp32_adder_stages must be 1 or 3, not {stages!r}")
    if stages != 1 and "fp16" not in datapaths:
        raise ValueError(f"fp32_adder_stages={stages} needs the fp16 datapath, not {datapaths}")


def check_product_stages(stages, datapaths=("int8",), multiplier="dsp"):
    """Raise unless ``stages`` is 1, 2 or 3, and more than 1 only for an int8-only datapath
    whose multiplier is the PE's own (``"dsp"`` or ``"lut"``, not ``"external"``)."""
    if not isinstance(stages, int) or isinstance(stages, bool):
        raise TypeError(f"product_stages must be an integer, 1, 2 or 3, not {stages!r}")
    if stages not in PRODUCT_STAGES:
        raise ValueError(f"product_stages must be 1, 2 or 3, not {stages}")
    if stages > 1 and tuple(datapaths) != ("int8",):
        raise ValueError(f"product_stages={stages} pipelines the int8 product: int8-only "
                         f"datapaths, not {tuple(datapaths)}")
    if stages > 1 and multiplier == "external":
        raise ValueError(f"product_stages={stages} needs the PE's own multiplier ('dsp' or "
                         "'lut'), not an external one registered outside (paired multipliers)")


def check_clear_after_last(clear, datapaths=("int8",)):
    """Raise unless ``clear`` is a bool, and ``True`` only for an int8-only datapath."""
    if not isinstance(clear, bool):
        raise TypeError(f"clear_after_last must be True or False, not {clear!r}")
    if clear and tuple(datapaths) != ("int8",):
        raise ValueError(f"clear_after_last serves int8-only datapaths, not "
                         f"{tuple(datapaths)}")


def check_acc_width(acc_width, datapaths=("int8",)):
    """Raise unless ``acc_width`` suits the datapaths: at least 16 bits (one int8 x int8
    product) for int8, exactly 32 (binary32) when fp16 is present."""
    if not isinstance(acc_width, int) or isinstance(acc_width, bool):
        raise TypeError(f"acc_width must be an integer, not {acc_width!r}")
    if acc_width < 16:
        raise ValueError(f"acc_width must be at least 16 bits to hold one int8 x int8 "
                         f"product, not {acc_width}")
    if "fp16" in datapaths and acc_width != 32:
        raise ValueError(f"acc_width must be 32 (a binary32 accumulator) when the fp16 "
                         f"datapath is present, not {acc_width}")


class ProcessingElement(wiring.Component):
    """A multiply-accumulate cell that keeps its output: int8 x int8 -> int32, and/or
    binary16 x binary16 -> binary32.

    Dataflow
    --------
    Output-stationary: PE ``(i, j)`` owns ``C[i, j]``. Operand ``a`` (a row of A) arrives from
    the left and leaves to the right one cycle later; ``b`` (a column of B) arrives from above
    and leaves below one cycle later; the beat qualifiers ``ctl`` travel with ``a``.

    Timing (cycles after a beat is on ``a_in``/``b_in``/``ctl_in``)
    ---------------------------------------------------------------
    * +1: ``a_out``, ``b_out``, ``ctl_out`` carry the beat on; the product is registered
      (int8: a 16-bit product; fp16: the exact binary32 product of :class:`Fp16Multiplier`).
      With ``product_stages=2`` or 3 (int8 only) the product takes more registers: +2, +3.
    * +``product_stages`` (combinational ``done``): for a valid beat, ``acc`` takes
      ``acc_next`` at the end of the next cycle; on a ``last`` beat the finished sum loads
      ``result_out`` instead of waiting in ``acc``, so the next tile starts accumulating on
      the very next beat. fp16 beats with ``fp32_adder_stages=3``: +4 instead
      (``fp16_delay`` cycles later).

    Arithmetic
    ----------
    int8 tiles: ``acc_next = product + (0 if first else acc)`` in ``acc_width``-bit two's
    complement; overflow wraps modulo ``2**acc_width``.
    fp16 tiles: ``acc_next = product if first else fp32_add(acc, product)``, one
    :class:`Fp32Adder` (round to nearest even, subnormals kept) per beat, so the sum runs
    strictly in the order ``k = 0, 1, ...`` (the golden model's order). Starting from the
    product, not from ``+0``, keeps ``-0``. Bubbles (``ctl.valid == 0``) leave ``acc``
    untouched. In a dual build ``ctl.fp16`` picks the datapath per beat (constant within a
    tile).

    ``fp32_adder_stages=1``: the adder sits in the accumulation loop in a single cycle, one
    fp16 beat a cycle; it bounds the clock of fp16-capable builds (~27 MHz on the ECP5).
    ``fp32_adder_stages=3``: the adder is three register stages (``Fp32Adder(stages=3)``)
    and the loop three cycles long, so fp16 beats must come at least 3 cycles apart (the
    array spaces them); the multiplier gets a second stage too (``Fp16Multiplier(stages=2)``,
    for the clock); a tile's first beat adds its product to ``-0`` (``x + -0 == x`` for
    every ``x``, ``-0`` included, and the multiplier's NaN is already canonical), so
    ``first`` needs no mux after the adder. fp16 sums land, and fp16 ``last`` beats
    capture, :attr:`fp16_delay` (3) cycles later than int8 ones.

    Drain
    -----
    ``result_out`` registers of one column form a shift chain towards the bottom of the array.
    The column's ``drain_start`` pulse (broadcast) and a token that walks down one row per
    cycle (``drain_token_in`` -> ``drain_token_out``) bound the cycles in which this PE loads
    ``result_in`` from the PE above: from the ``drain_start`` cycle up to and including the
    cycle the token reaches it. ``draining`` is high in exactly those cycles. A capture
    (``done``) has priority over a drain shift. ``done_early`` is ``done`` one cycle ahead
    (for a register tree that delivers ``drain_start`` to a column's PEs in step).

    Parameters
    ----------
    acc_width : int
        Accumulator and result width in bits: at least 16; 32 when fp16 is present.
    datapaths : collection of str
        ``("int8",)`` (default), ``("fp16",)`` or ``("int8", "fp16")``.
    multiplier : str
        ``"dsp"`` (default), ``"lut"`` or ``"external"``: how the int8 multiply is built
        (:data:`MULTIPLIERS`). ``"external"`` (int8 only) adds the input ``product_in``
        (signed, 16 bits): the product of the int8 ``a_in`` and ``b_in`` of the previous
        cycle, registered by whoever computes it, used where the PE's own registered product
        would be.
    fp32_adder_stages : int
        1 (default) or 3: register stages of the fp16 accumulation's adder (see
        "Arithmetic"); only with the fp16 datapath.
    product_stages : int
        1 (default), 2 or 3: registers the int8 product goes through (int8-only PEs with a
        ``"dsp"`` or ``"lut"`` multiplier). With 2 (3) the beat qualifiers that gate the
        accumulation are registered once (twice) more, so ``done`` and ``done_early`` come
        one (two) cycles later, with the same first/last/valid meaning and the same results;
        ``ctl_out``, ``a_out`` and ``b_out`` do not move. ``"lut"``: the four Booth partial
        products and their ``neg`` bits (:func:`booth_digits`) are registered, the adds
        (:func:`booth_sum`) feed the product register; with 3 the two halves of the sum
        (:func:`booth_halves`) are registered too, the last add (:func:`booth_join`) feeds
        the product register. ``"dsp"``: the product of the registered operands
        (``a_out``, ``b_out``), registered; elaborated for an ECP5, the MULT18X18D's own
        input and output registers (:class:`~hw.ecp5_multiplier.Ecp5Multiplier`
        ``input_registers``), no fabric flip-flops; with 3 that product is registered once
        more, in the fabric: the DSPs sit in a few rows of the die, and the route from one
        to its PE's accumulator (89 tiles in a 16x16 ECP5-85F build, 8.3 ns) gets a cycle
        without the carry chain behind it.
    separate_control : bool
        The registered ``ctl`` (also ``ctl_out``) as hand-instanced flip-flops when
        elaborated for an ECP5 (:func:`~hw.register_copies.register_copies`), so synthesis
        keeps it apart from the identical registers of the PEs on its anti-diagonal. Same
        timing and results; its reset is the domain's own (not a ``ResetInserter``'s).
    clear_after_last : bool
        int8-only PEs: the accumulator keeps its tile's sum for the cycle after the ``last``
        beat, when ``result`` takes it from there and the accumulator is cleared (as by
        reset), instead of the next tile's ``first`` beat skipping it. So the adder adds
        ``acc`` as it is (no gate in front of each adder bit) and feeds only the
        accumulator (on the iCE40 its LUT and the accumulator's flip-flop share a logic
        cell, the clear is that flip-flop's synchronous reset): 2 logic cells per result
        bit instead of 3, -23 per PE of the UP5K's 4x4. ``done`` and ``done_early`` come
        one cycle later; a tile's first beat must not come in the cycle after the previous
        tile's ``last`` one (the clear would drop it: :class:`~hw.systolic_array.
        SystolicArray` spaces them). Same results.
    """

    def __init__(self, *, acc_width=32, datapaths=("int8",), multiplier="dsp",
                 fp32_adder_stages=1, separate_control=False, product_stages=1,
                 clear_after_last=False):
        datapaths = check_datapaths(datapaths)
        check_acc_width(acc_width, datapaths)
        check_clear_after_last(clear_after_last, datapaths)
        self.clear_after_last = clear_after_last
        if multiplier not in MULTIPLIERS:
            raise ValueError(f"multiplier must be one of {MULTIPLIERS}, not {multiplier!r}")
        if multiplier == "external" and datapaths != ("int8",):
            raise ValueError(f"an external multiplier serves int8-only PEs, not {datapaths}")
        check_fp32_adder_stages(fp32_adder_stages, datapaths)
        check_product_stages(product_stages, datapaths, multiplier)
        self.product_stages = product_stages
        if not isinstance(separate_control, bool):
            raise TypeError(f"separate_control must be True or False, not "
                            f"{separate_control!r}")
        self.separate_control = separate_control
        self.fp32_adder_stages = fp32_adder_stages
        #: cycles an fp16 beat's sum lands (and a last beat captures) after an int8 beat's
        self.fp16_delay = fp16_delay(fp32_adder_stages)
        self.multiplier = multiplier
        self.acc_width = acc_width
        self.datapaths = datapaths
        operand = operand_shape(datapaths)
        super().__init__({
            "a_in": In(operand),
            "b_in": In(operand),
            "ctl_in": In(BeatControl),
            "a_out": Out(operand),
            "b_out": Out(operand),
            "ctl_out": Out(BeatControl),
            "result_in": In(signed(acc_width)),
            "result_out": Out(signed(acc_width)),
            "done": Out(1),
            "done_early": Out(1),
            "drain_start": In(1),
            "drain_token_in": In(1),
            "drain_token_out": Out(1),
            "draining": Out(1),
            **({"product_in": In(signed(16))} if multiplier == "external" else {}),
        })

    #: The binary32 adder of the fp16 accumulation; mutation tests substitute faulty ones.
    adder_class = Fp32Adder

    def _multiply(self, m, a, b):
        """The int8 product expression (``m``: the PE's module, for the LUT product's
        intermediate signals); mutation tests override it to prove the tests fail."""
        return lut_product(a, b, m) if self.multiplier == "lut" else a * b

    def elaborate(self, platform):
        m = Module()
        has_int8 = "int8" in self.datapaths
        has_fp16 = "fp16" in self.datapaths

        # Systolic forwarding: each operand moves one PE per cycle. The datapath's registers
        # (operands, products, sums) have no reset: ``ctl`` says when they count, and a
        # reset reaching every one of them was the critical path of a 16x16 ECP5 build
        # (one net to ~26,000 flip-flops, 17.5 ns of routing).
        a_reg, b_reg = (Signal(self.a_out.shape(), name=name, reset_less=True)
                        for name in ("a_reg", "b_reg"))
        m.d.sync += [a_reg.eq(self.a_in), b_reg.eq(self.b_in)]
        m.d.comb += [self.a_out.eq(a_reg), self.b_out.eq(b_reg)]

        # Stage 1: registered product (lets synthesis use the DSP's output register).
        def qualifiers(before, name):
            """``before`` (the beat qualifiers) one clock later."""
            held = Signal(BeatControl, name=name)
            if self.separate_control:
                # The qualifiers of all PEs on an anti-diagonal are the same registers of
                # the same values, which yosys merges into one driving them all across the
                # die (a PE's ``valid`` to another's accumulator: 11.4 ns of routing, the
                # array clock's critical path of the 16x16 ECP5 system); on the ECP5 these
                # stay the PE's own.
                m.d.comb += held.eq(register_copies(m, platform, "sync", before.as_value(), 1,
                                                    name=name, reset=True)[0])
            else:
                m.d.sync += held.eq(before)
            return held

        ctl = qualifiers(self.ctl_in, "ctl")
        m.d.comb += self.ctl_out.eq(ctl)
        # the qualifiers of the beat whose int8 product is in ``int_product`` (and the ones
        # a cycle before them, for ``done_early``)
        int_ctl, int_ctl_before = ctl, self.ctl_in
        for stage in range(2, self.product_stages + 1):
            name = "ctl_product" if stage == 2 else f"ctl_product_{stage}"
            int_ctl, int_ctl_before = qualifiers(int_ctl, name), int_ctl
        if has_int8:
            int_product = Signal(signed(16), reset_less=True)
            a, b = self.a_in[:8].as_signed(), self.b_in[:8].as_signed()
            if self.multiplier == "external":
                m.d.comb += int_product.eq(self.product_in)     # registered outside
            elif self.multiplier == "dsp" and is_ecp5(platform):
                # the product register inside the MULT18X18D (yosys leaves it in the fabric),
                # with two stages its input registers too; with three a fabric register
                # after it, which the placer can put next to the accumulator
                m.submodules.int_multiplier = dsp = Ecp5Multiplier(
                    primitive="mult18x18d", input_registers=self.product_stages > 1)
                m.d.comb += [dsp.a.eq(a), dsp.b.eq(b)]
                if self.product_stages == 3:
                    m.d.sync += int_product.eq(dsp.p)
                else:
                    m.d.comb += int_product.eq(dsp.p)
            elif self.product_stages > 1 and self.multiplier == "lut":
                # stage 1: the digit muxes into registers; stage 2: the adds (with three
                # stages the two halves, then stage 3 the last add)
                parts, negs = booth_digits(a, b, m)
                held_parts = [Signal.like(part, name=f"booth_{k}_reg", reset_less=True)
                              for k, part in enumerate(parts)]
                held_negs = Signal(len(negs), name="booth_negs_reg", reset_less=True)
                m.d.sync += [held.eq(part) for held, part in zip(held_parts, parts,
                                                                 strict=True)]
                m.d.sync += held_negs.eq(Cat(*negs))
                if self.product_stages == 2:
                    m.d.sync += int_product.eq(booth_sum(held_parts, list(held_negs), m))
                else:
                    halves = booth_halves(held_parts, list(held_negs), m)
                    held_halves = [Signal.like(half, name=f"{name}_reg", reset_less=True)
                                   for half, name in zip(halves, ("booth_low", "booth_high"),
                                                         strict=True)]
                    late_negs = Signal(2, name="booth_late_negs_reg", reset_less=True)
                    m.d.sync += [held.eq(half) for held, half in zip(held_halves, halves,
                                                                     strict=True)]
                    m.d.sync += late_negs.eq(Cat(held_negs[1], held_negs[3]))
                    m.d.sync += int_product.eq(booth_join(*held_halves, late_negs[0],
                                                          late_negs[1], m))
            elif self.product_stages > 1:
                # the operands are registered already (a_out, b_out); a third stage
                # registers the product once more
                product = self._multiply(m, a_reg[:8].as_signed(), b_reg[:8].as_signed())
                if self.product_stages == 3:
                    early_product = Signal(signed(16), name="early_product", reset_less=True)
                    m.d.sync += early_product.eq(product)
                    product = early_product
                m.d.sync += int_product.eq(product)
            else:
                m.d.sync += int_product.eq(self._multiply(m, a, b))
        if has_fp16:
            m.submodules.multiplier = multiplier = Fp16Multiplier(
                stages=1 if self.fp32_adder_stages == 1 else 2)
            fp_product = Signal(32, reset_less=True)
            m.d.comb += [multiplier.a.eq(self.a_in), multiplier.b.eq(self.b_in)]
            m.d.sync += fp_product.eq(multiplier.product)

        # Stage 2: accumulate. The int8 clear is folded into the adder's operand (faster than
        # an if/else); the assignment truncates, which is the two's-complement wrap.
        acc = Signal(signed(self.acc_width), reset_less=True)

        def is_fp16(beat):
            # single-datapath PEs ignore the qualifier
            return beat.fp16 if has_int8 and has_fp16 else Const(int(has_fp16), 1)

        def ends_tile(beat, fp16):
            return beat.valid & beat.last & (is_fp16(beat) if fp16 else ~is_fp16(beat))

        # ``done_early``: ``done`` one cycle ahead, from the qualifiers before their register
        early = []
        int_done = Signal()
        int_next = Signal(signed(self.acc_width))
        if has_int8 and self.clear_after_last:
            # ``acc`` holds the tile's sum in the cycle after its last beat (``captured``):
            # ``result`` takes it and it is cleared. The reset is one more clear term, not a
            # reset of the register: a flip-flop has one synchronous reset, and with two the
            # clear takes a LUT per bit.
            early.append(ends_tile(int_ctl, fp16=False))
            captured = Signal()
            m.d.sync += captured.eq(ends_tile(int_ctl, fp16=False))
            clear = captured | ResetSignal()
            m.d.comb += int_next.eq(int_product + acc)
            with m.If(int_ctl.valid | clear):
                m.d.sync += acc.eq(Mux(clear, 0, int_next))
            m.d.comb += int_done.eq(captured)
        elif has_int8:
            early.append(ends_tile(int_ctl_before, fp16=False))
            if is_ecp5(platform):
                # the ``first`` gate inside the adder's carry cells, not a LUT per bit in
                # another slice (``GatedAdder``): the loop stays in the accumulator's slices
                m.submodules.accumulate = accumulate = GatedAdder(self.acc_width)
                m.d.comb += [accumulate.a.eq(int_product), accumulate.b.eq(acc),
                             accumulate.keep.eq(~int_ctl.first), int_next.eq(accumulate.sum)]
            else:
                m.d.comb += int_next.eq(int_product + Mux(int_ctl.first, 0, acc))
            with m.If(int_ctl.valid & ~is_fp16(int_ctl)):
                m.d.sync += acc.eq(int_next)
            m.d.comb += int_done.eq(ends_tile(int_ctl, fp16=False))
        fp_done = Signal()
        fp_next = Signal(32)
        if has_fp16:
            m.submodules.adder = adder = self.adder_class(stages=self.fp32_adder_stages)
            if self.fp32_adder_stages == 1:
                m.d.comb += [adder.a.eq(acc), adder.b.eq(fp_product),
                             fp_next.eq(Mux(ctl.first, fp_product, adder.sum))]
                fp_ctl, fp_ctl_before = ctl, self.ctl_in
            else:
                # The beat's qualifiers follow the product through the multiplier's second
                # stage and the sum through the adder's registers; the first product adds
                # to -0 (exact for every x).
                delayed = [ctl]
                for n in range(self.fp16_delay):
                    delayed.append(Signal(BeatControl, name=f"ctl_d{n + 1}"))
                    m.d.sync += delayed[-1].eq(delayed[-2])
                product_ctl, fp_ctl = delayed[multiplier.latency], delayed[-1]
                fp_ctl_before = delayed[-2]
                m.d.comb += [adder.a.eq(Mux(product_ctl.first, 0x8000_0000, acc)),
                             adder.b.eq(fp_product), fp_next.eq(adder.sum)]
            m.d.comb += fp_done.eq(ends_tile(fp_ctl, fp16=True))
            early.append(ends_tile(fp_ctl_before, fp16=True))
            with m.If(fp_ctl.valid & is_fp16(fp_ctl)):
                m.d.sync += acc.eq(fp_next)
        m.d.comb += [self.done.eq(int_done | fp_done), self.done_early.eq(Cat(*early).any())]

        # Drain window: open from drain_start until the walking token has reached this row.
        busy = Signal()
        m.d.comb += self.draining.eq(self.drain_start | busy)
        m.d.sync += [
            busy.eq((busy | self.drain_start) & ~self.drain_token_in),
            self.drain_token_out.eq(self.drain_token_in),
        ]
        result = Signal(signed(self.acc_width), reset_less=True)
        m.d.comb += self.result_out.eq(result)
        with m.If(self.done):
            m.d.sync += result.eq(Mux(fp_done, fp_next,
                                      acc if self.clear_after_last else int_next))
        with m.Elif(self.draining):
            m.d.sync += result.eq(self.result_in)

        return m
