"""binary16 x binary16 -> binary32 multiplier whose product is always exact."""
from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .bit_ops import leading_zeros
from .float_format import BINARY16, BINARY32

__all__ = ["Fp16Multiplier"]


class Fp16Multiplier(wiring.Component):
    """Exact product of two IEEE binary16 numbers, as an IEEE binary32 number (combinational).

    Why it is exact: binary16 significands have 11 bits, so their product has at most 22,
    which fits binary32's 24-bit significand; the product's magnitude lies between
    ``2**-48`` (smallest subnormal squared) and ``65504**2 < 2**32``, inside binary32's normal
    range. So no rounding ever happens and subnormal inputs need no special treatment beyond
    normalising the product (a leading-zero count over 22 bits).

    Special values: ``NaN * x``, ``Inf * 0`` -> canonical NaN ``0x7FC00000``; ``Inf * x`` ->
    Inf with the XOR of the signs; ``0 * finite`` -> zero with the XOR of the signs.

    Ports: ``a``, ``b`` (16 bit, binary16 patterns) in; ``product`` (32 bit, binary32) out,
    in the same cycle. The processing element registers it (one pipeline stage).
    """

    a: In(16)
    b: In(16)
    product: Out(32)

    def elaborate(self, platform):
        m = Module()
        a = BINARY16.decode(self.a)
        b = BINARY16.decode(self.b)
        sign = a["sign"] ^ b["sign"]

        wide = Signal(2 * BINARY16.significand_bits)              # 22-bit exact product
        m.d.comb += wide.eq(a["significand"] * b["significand"])
        lz = leading_zeros(m, wide)
        normalised = Signal(len(wide))
        m.d.comb += normalised.eq(wide << lz)                      # leading one at bit 21
        # value = wide * 2**(ea + eb - 2*(15 + 10)); with the leading one at bit 21 - lz the
        # binary32 biased exponent is ea + eb - 50 + (21 - lz) + 127.
        exponent = Signal(BINARY32.exponent_bits)
        m.d.comb += exponent.eq(a["exponent"] + b["exponent"] + 98 - lz)
        fraction = Cat(Const(0, BINARY32.fraction_bits - (len(wide) - 1)), normalised[:-1])

        nan = a["nan"] | b["nan"] | (a["inf"] & b["zero"]) | (a["zero"] & b["inf"])
        with m.If(nan):
            m.d.comb += self.product.eq(BINARY32.canonical_nan)
        with m.Elif(a["inf"] | b["inf"]):
            m.d.comb += self.product.eq(Cat(Const(BINARY32.infinity, 31), sign))
        with m.Elif(a["zero"] | b["zero"]):
            m.d.comb += self.product.eq(Cat(Const(0, 31), sign))
        with m.Else():
            m.d.comb += self.product.eq(Cat(fraction, exponent, sign))
        return m
