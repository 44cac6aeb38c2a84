"""Deliberately broken processing elements: the regression must catch each of them.

``make test`` builds the array with these in place of the real PE and expects failures,
which proves the tests compare something that can differ.
"""
from hw.processing_element import ProcessingElement

__all__ = ["MUTANTS"]


class ProductBitFlip(ProcessingElement):
    """Bit 3 of every product inverted."""

    def _multiply(self, a, b):
        return (a * b) ^ 0b1000


class UnsignedProduct(ProcessingElement):
    """Operands multiplied as unsigned bytes (a classic sign-extension bug)."""

    def _multiply(self, a, b):
        return a.as_unsigned() * b.as_unsigned()


#: name -> ProcessingElement subclass
MUTANTS = {"product_bit_flip": ProductBitFlip, "unsigned_product": UnsignedProduct}
