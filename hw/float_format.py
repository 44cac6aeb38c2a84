"""IEEE 754 binary formats used by the fp16 datapath, and the field decoding they share."""
from dataclasses import dataclass

from amaranth.hdl import Cat, Mux

__all__ = ["FloatFormat", "BINARY16", "BINARY32"]


@dataclass(frozen=True)
class FloatFormat:
    """An IEEE 754 binary interchange format.

    ``exponent_bits`` and ``fraction_bits`` are the stored field widths; the significand has
    one more (hidden) bit. ``canonical_nan`` is the single NaN pattern Loom's hardware emits
    (positive, quiet, zero payload, as RISC-V does): NaN payloads are not propagated.
    """
    name: str
    exponent_bits: int
    fraction_bits: int

    @property
    def width(self):
        return 1 + self.exponent_bits + self.fraction_bits

    @property
    def bias(self):
        return (1 << (self.exponent_bits - 1)) - 1

    @property
    def max_exponent(self):
        """The all-ones biased exponent of Inf and NaN."""
        return (1 << self.exponent_bits) - 1

    @property
    def significand_bits(self):
        return self.fraction_bits + 1

    @property
    def canonical_nan(self):
        return (self.max_exponent << self.fraction_bits) | (1 << (self.fraction_bits - 1))

    @property
    def infinity(self):
        """Bit pattern of +Inf (OR in the sign bit for -Inf)."""
        return self.max_exponent << self.fraction_bits

    def decode(self, bits):
        """Fields of an Amaranth value holding one number of this format.

        Returns a dict: ``sign``; ``exponent`` (effective biased exponent: 1 for subnormals,
        so that ``value = significand * 2**(exponent - bias - fraction_bits)`` everywhere);
        ``significand`` (fraction with the hidden bit, 0 for subnormals); ``zero``, ``inf``,
        ``nan`` class flags.
        """
        fraction = bits[:self.fraction_bits]
        exponent = bits[self.fraction_bits:self.width - 1]
        sign = bits[self.width - 1]
        is_normal_or_special = exponent != 0
        all_ones = exponent == self.max_exponent
        return {
            "sign": sign,
            "exponent": Mux(is_normal_or_special, exponent, 1),
            "significand": Cat(fraction, is_normal_or_special),
            "zero": ~is_normal_or_special & (fraction == 0),
            "inf": all_ones & (fraction == 0),
            "nan": all_ones & (fraction != 0),
        }


BINARY16 = FloatFormat("binary16", exponent_bits=5, fraction_bits=10)
BINARY32 = FloatFormat("binary32", exponent_bits=8, fraction_bits=23)
