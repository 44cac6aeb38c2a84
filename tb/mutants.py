"""Deliberately broken processing elements: the regression must catch each of them.

``make test`` builds the array with these in place of the real PE and expects failures,
which proves the tests compare something that can differ.
"""
from hw.fp32_adder import Fp32Adder
from hw.processing_element import ProcessingElement

__all__ = ["MUTANTS"]


class ProductBitFlip(ProcessingElement):
    """Bit 3 of every product inverted."""

    def _multiply(self, m, a, b):
        return (a * b) ^ 0b1000


class UnsignedProduct(ProcessingElement):
    """Operands multiplied as unsigned bytes (a classic sign-extension bug)."""

    def _multiply(self, m, a, b):
        return a.as_unsigned() * b.as_unsigned()


class HalfUpAdder(Fp32Adder):
    """binary32 adder that rounds ties away from zero instead of to even."""

    def _round_half_up(self):
        return True


class HalfUpAccumulation(ProcessingElement):
    """fp16 accumulation with the tie-breaking rule of :class:`HalfUpAdder`."""

    adder_class = HalfUpAdder


#: name -> ProcessingElement subclass
MUTANTS = {"product_bit_flip": ProductBitFlip, "unsigned_product": UnsignedProduct,
           "fp_round_half_up": HalfUpAccumulation}
