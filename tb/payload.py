"""Pack and unpack stream payloads as integers, using the gateware's own layouts.

cocotb sees a struct-shaped Amaranth port as one flat vector; these helpers convert between
that integer and nested Python values by walking the :mod:`amaranth.lib.data` layout, so bit
offsets are never written down twice.
"""
from amaranth.hdl import Shape
from amaranth.lib import data

__all__ = ["pack", "unpack"]


def _fields(layout):
    if isinstance(layout, data.ArrayLayout):
        return [(index, layout[index]) for index in range(layout.length)]
    return list(layout)


def pack(layout, value):
    """Integer of ``value`` (nested dicts/lists of ints, matching ``layout``)."""
    if not isinstance(layout, data.Layout):
        shape = Shape.cast(layout)
        mask = (1 << shape.width) - 1
        if shape.signed and not -(1 << (shape.width - 1)) <= value < (1 << (shape.width - 1)):
            raise ValueError(f"{value} does not fit {shape}")
        if not shape.signed and not 0 <= value <= mask:
            raise ValueError(f"{value} does not fit {shape}")
        return int(value) & mask
    word = 0
    for name, field in _fields(layout):
        word |= pack(field.shape, value[name]) << field.offset
    return word


def unpack(layout, word):
    """Nested dicts (struct) / lists (array) of ints from the integer ``word``."""
    if not isinstance(layout, data.Layout):
        shape = Shape.cast(layout)
        value = word & ((1 << shape.width) - 1)
        if shape.signed and value >> (shape.width - 1):
            value -= 1 << shape.width
        return value
    values = {name: unpack(field.shape, word >> field.offset) for name, field in _fields(layout)}
    if isinstance(layout, data.ArrayLayout):
        return [values[index] for index in range(layout.length)]
    return values
