"""binary32 -> binary16 conversion, round to nearest, ties to even."""
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .bit_ops import shift_right_sticky
from .float_format import BINARY16, BINARY32

__all__ = ["Fp32ToFp16"]


class Fp32ToFp16(wiring.Component):
    """Converts an IEEE binary32 number to the nearest binary16 number (combinational).

    Rounding: to nearest, ties to even, as NumPy's ``astype(np.float16)`` does. Magnitudes of
    65520 and more (the midpoint above the largest binary16, 65504) become Inf; results below
    the binary16 normal range become subnormal, and below half the smallest subnormal
    (``2**-25``) zero, keeping the sign. Inf keeps its sign; NaN becomes the canonical
    binary16 NaN ``0x7E00``.

    Ports: ``a`` (32 bit, binary32) in; ``result`` (16 bit, binary16) out, same cycle.
    """

    a: In(32)
    result: Out(16)

    def _round_half_up(self):
        """False: ties go to even. Mutation tests set True to prove the tests notice."""
        return False

    def elaborate(self, platform):
        m = Module()
        src, dst = BINARY32, BINARY16
        a = src.decode(self.a)

        # Target biased exponent (binary32 subnormals give very negative values -> zero).
        exponent = Signal(signed(src.exponent_bits + 2))
        m.d.comb += exponent.eq(a["exponent"] - (src.bias - dst.bias))
        # Shift the significand right so the result's last bit lands at bit 1 and the guard
        # bit at bit 0: 12 places for normal results, more for subnormal ones (exponent <= 0);
        # 24 or more shifts everything out (the result is zero).
        normal_shift = src.fraction_bits - dst.fraction_bits - 1
        all_out = src.significand_bits
        shift = Signal(range(all_out + 1))
        m.d.comb += shift.eq(Mux(exponent >= 1, normal_shift,
                                 Mux(exponent <= normal_shift + 1 - all_out, all_out,
                                     normal_shift + 1 - exponent)))
        kept_g, sticky = shift_right_sticky(m, a["significand"], shift, name="narrow")
        guard = kept_g[0]
        kept = kept_g[1:]
        round_up = guard if self._round_half_up() else guard & (sticky | kept[0])
        packed = Signal(dst.exponent_bits + dst.fraction_bits + 2)
        field = Mux(exponent >= 1, exponent - 1, 0)
        m.d.comb += packed.eq((field << dst.fraction_bits) + kept + round_up)

        sign = a["sign"]
        with m.If(a["nan"]):
            m.d.comb += self.result.eq(dst.canonical_nan)
        with m.Elif(a["inf"] | (exponent >= dst.max_exponent) | (packed >= dst.infinity)):
            m.d.comb += self.result.eq(Cat(Const(dst.infinity, 15), sign))
        with m.Else():
            m.d.comb += self.result.eq(Cat(packed[:15], sign))
        return m
