"""binary32 + binary32 adder, round to nearest, ties to even, with subnormals."""
from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .bit_ops import leading_zeros, shift_right_sticky
from .float_format import BINARY32

__all__ = ["Fp32Adder"]

_GUARD_BITS = 3  # guard, round, sticky


class Fp32Adder(wiring.Component):
    """IEEE 754 binary32 addition ``sum = a + b`` (combinational), as NumPy's float32 does it.

    Rounding: to nearest, ties to even, applied once to the exact sum. Subnormal operands and
    results are kept (no flush to zero). Results too large round to Inf.

    Signed zeros: an exact zero sum of operands with opposite signs (``x + -x``) is ``+0``;
    ``-0 + -0`` is ``-0``.

    Special values: NaN in either operand, or ``Inf + -Inf``, gives the canonical NaN
    ``0x7FC00000`` (payloads are not propagated); ``Inf + finite`` is that Inf.

    Algorithm: order the operands by magnitude, align the smaller significand to the larger
    exponent keeping guard, round and sticky bits, add or subtract, normalise (a carry shifts
    right by one; a cancellation shifts left by the leading-zero count, but never below the
    subnormal exponent), then round. Rounding is an integer increment of the packed
    exponent|fraction word, so a carry out of the fraction bumps the exponent, a subnormal
    that rounds up becomes normal, and the largest finite number rounds up to Inf, with no
    special cases.

    Ports: ``a``, ``b`` (32 bit, binary32 patterns) in; ``sum`` (32 bit) out, same cycle.

    ``stages=3``: the same arithmetic with registers after the alignment and after the add
    (with its leading-zero count): ``sum`` is the sum of the ``a`` and ``b`` of
    :attr:`latency` (2) cycles before, one new pair a cycle. For an accumulation loop that
    must keep its order (``acc <= acc + x``, one addition at a time) it is a loop of three
    cycles instead of one: on the ECP5-85F such a loop alone (``acc`` register, adder, one
    input register) measured 27.2 MHz with ``stages=1``, 65.3 MHz with ``stages=3`` and
    50.3 MHz with a two-stage split tried on the way (align+add | normalise+round);
    nextpnr out of context, seed 1, 2026-11-29. Not used by the PEs yet.
    """

    a: In(32)
    b: In(32)
    sum: Out(32)

    def __init__(self, stages=1):
        if stages not in (1, 3):
            raise ValueError(f"stages must be 1 or 3, not {stages!r}")
        self.stages = stages
        #: cycles from ``a``/``b`` to their ``sum``
        self.latency = stages - 1
        super().__init__()

    def _stage(self, m, name, values):
        """``values`` (a dict of values) through a register stage when pipelined."""
        if self.stages == 1:
            return values
        registered = {}
        for key, value in values.items():
            reg = Signal.like(value, name=f"{name}_{key}") if isinstance(value, Signal) \
                else Signal(len(value), name=f"{name}_{key}")
            m.d.sync += reg.eq(value)
            registered[key] = reg
        return registered

    def _round_half_up(self):
        """False: ties go to even. Mutation tests set True to prove the tests notice."""
        return False

    def elaborate(self, platform):
        m = Module()
        fmt = BINARY32
        a = fmt.decode(self.a)
        b = fmt.decode(self.b)

        # Order by magnitude: the encoding of |x| compares like |x| for finite values.
        swap = self.a[:31] < self.b[:31]
        big = {key: Mux(swap, b[key], a[key]) for key in ("sign", "exponent", "significand")}
        small = {key: Mux(swap, a[key], b[key]) for key in ("sign", "exponent", "significand")}

        width = fmt.significand_bits + _GUARD_BITS + 1                # 28: carry + 24 + GRS
        distance = Signal(fmt.exponent_bits)
        m.d.comb += distance.eq(big["exponent"] - small["exponent"])
        aligned, sticky = shift_right_sticky(
            m, Cat(Const(0, _GUARD_BITS), small["significand"]), distance, name="align")
        # Results that do not depend on the sum: NaN, Inf, the sign of an exact zero sum.
        special = {
            "nan": a["nan"] | b["nan"] | (a["inf"] & b["inf"] & (a["sign"] != b["sign"])),
            "inf": a["inf"] | b["inf"], "inf_sign": Mux(a["inf"], a["sign"], b["sign"]),
            "zero_sign": a["sign"] & b["sign"], "big_sign": big["sign"],
            "big_exponent": big["exponent"]}
        s1 = self._stage(m, "aligned", {
            **special, "subtract": big["sign"] ^ small["sign"],
            "big_ext": Cat(Const(0, _GUARD_BITS), big["significand"]),
            "small_ext": aligned | sticky})

        raw = Signal(width)
        m.d.comb += raw.eq(Mux(s1["subtract"], s1["big_ext"] - s1["small_ext"],
                               s1["big_ext"] + s1["small_ext"]))
        lz = leading_zeros(m, raw[:width - 1], name="cancel_lz")
        s2 = self._stage(m, "added", {**{key: s1[key] for key in special}, "raw": raw,
                                      "lz": lz})
        self._normalise_round(m, s2, width)
        return m

    def _normalise_round(self, m, s, width):
        """Normalise ``s["raw"]`` (leading one at bit width-2, or stop at the subnormal
        exponent), round to nearest even, pack; or the special result."""
        fmt = BINARY32
        raw, lz, big_exponent = s["raw"], s["lz"], s["big_exponent"]
        carry = raw[width - 1]
        shift = Signal(range(width))
        m.d.comb += shift.eq(Mux(lz < big_exponent, lz, big_exponent - 1))
        normal = Signal(width - 1)                                  # 1 + 23 + GRS bits
        exponent = Signal(fmt.exponent_bits + 2)
        with m.If(carry):
            m.d.comb += [normal.eq(Cat(raw[1] | raw[0], raw[2:])),
                         exponent.eq(big_exponent + 1)]
        with m.Else():
            m.d.comb += [normal.eq(raw[:width - 1] << shift),
                         exponent.eq(big_exponent - shift)]

        significand = normal[_GUARD_BITS:]                           # 24 bits with hidden one
        guard = normal[_GUARD_BITS - 1]
        rest = normal[:_GUARD_BITS - 1] != 0
        if self._round_half_up():
            round_up = guard
        else:
            round_up = guard & (rest | significand[0])
        # Packed exponent|fraction: the hidden bit adds 1 to (exponent - 1) for normal results
        # and nothing for subnormal ones (exponent stays 1, hidden bit 0 -> field 0).
        packed = Signal(fmt.exponent_bits + fmt.fraction_bits + 2)
        m.d.comb += packed.eq(((exponent - 1) << fmt.fraction_bits) + significand + round_up)

        sign = Signal()
        m.d.comb += sign.eq(Mux(raw == 0, s["zero_sign"], s["big_sign"]))
        overflow = packed >= fmt.infinity
        with m.If(s["nan"]):
            m.d.comb += self.sum.eq(fmt.canonical_nan)
        with m.Elif(s["inf"]):
            m.d.comb += self.sum.eq(Cat(Const(fmt.infinity, 31), s["inf_sign"]))
        with m.Elif(raw == 0):
            m.d.comb += self.sum.eq(Cat(Const(0, 31), sign))
        with m.Elif(overflow):
            m.d.comb += self.sum.eq(Cat(Const(fmt.infinity, 31), sign))
        with m.Else():
            m.d.comb += self.sum.eq(Cat(packed[:31], sign))
