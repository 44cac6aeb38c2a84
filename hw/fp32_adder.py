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
    """

    a: In(32)
    b: In(32)
    sum: Out(32)

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
        subtract = big["sign"] ^ small["sign"]
        raw = Signal(width)
        big_ext = Cat(Const(0, _GUARD_BITS), big["significand"])
        small_ext = aligned | sticky
        m.d.comb += raw.eq(Mux(subtract, big_ext - small_ext, big_ext + small_ext))

        # Normalise to the leading one at bit width-2, or stop at the subnormal exponent.
        carry = raw[width - 1]
        lz = leading_zeros(m, raw[:width - 1], name="cancel_lz")
        shift = Signal(range(width))
        m.d.comb += shift.eq(Mux(lz < big["exponent"], lz, big["exponent"] - 1))
        normal = Signal(width - 1)                                  # 1 + 23 + GRS bits
        exponent = Signal(fmt.exponent_bits + 2)
        with m.If(carry):
            m.d.comb += [normal.eq(Cat(raw[1] | raw[0], raw[2:])),
                         exponent.eq(big["exponent"] + 1)]
        with m.Else():
            m.d.comb += [normal.eq(raw[:width - 1] << shift),
                         exponent.eq(big["exponent"] - shift)]

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
        m.d.comb += sign.eq(Mux(raw == 0, a["sign"] & b["sign"], big["sign"]))
        overflow = packed >= fmt.infinity
        with m.If(a["nan"] | b["nan"] | (a["inf"] & b["inf"] & (a["sign"] != b["sign"]))):
            m.d.comb += self.sum.eq(fmt.canonical_nan)
        with m.Elif(a["inf"] | b["inf"]):
            m.d.comb += self.sum.eq(Cat(Const(fmt.infinity, 31), Mux(a["inf"], a["sign"],
                                                                      b["sign"])))
        with m.Elif(raw == 0):
            m.d.comb += self.sum.eq(Cat(Const(0, 31), sign))
        with m.Elif(overflow):
            m.d.comb += self.sum.eq(Cat(Const(fmt.infinity, 31), sign))
        with m.Else():
            m.d.comb += self.sum.eq(Cat(packed[:31], sign))
        return m
