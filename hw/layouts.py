"""Payload layouts shared by the array, its testbenches and (later) the DMA side.

Every layout here is a :class:`amaranth.lib.data.StructLayout`; field order is bit order,
least significant first, so a testbench can pack and unpack payloads from these objects
instead of re-deriving bit offsets by hand.
"""
from amaranth.hdl import signed, unsigned
from amaranth.lib import data

__all__ = ["OPERAND_WIDTH", "BeatControl", "operand_layout", "result_layout"]

#: Width of one int8 operand, in bits.
OPERAND_WIDTH = 8


class BeatControl(data.Struct):
    """Qualifiers that travel through the array beside every operand beat.

    ``valid``: the beat carries data (a bubble otherwise; PEs ignore it).
    ``first``: first beat of a tile; the accumulator restarts from this product.
    ``last``: last beat of a tile; the finished sum is captured for draining.
    """
    valid: 1
    first: 1
    last: 1


def operand_layout(rows, cols):
    """One operand beat: column ``k`` of A and row ``k`` of B.

    ``a[i]`` (signed 8 bit) enters array row ``i``; ``b[j]`` (signed 8 bit) enters array column
    ``j``; ``last`` marks the final beat (``k = K - 1``) of a tile.
    """
    return data.StructLayout({
        "a": data.ArrayLayout(signed(OPERAND_WIDTH), rows),
        "b": data.ArrayLayout(signed(OPERAND_WIDTH), cols),
        "last": 1,
    })


def result_layout(rows, cols, acc_width=32):
    """One drained result row: ``data[j]`` is ``C[row, j]`` (signed ``acc_width`` bit).

    A tile drains as ``rows`` beats, bottom row first (``row = rows - 1`` down to ``0``);
    ``last`` is set on the beat with ``row == 0``.
    """
    return data.StructLayout({
        "data": data.ArrayLayout(signed(acc_width), cols),
        "row": unsigned(max(1, (rows - 1).bit_length())),
        "last": 1,
    })
