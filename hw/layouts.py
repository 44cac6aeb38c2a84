"""Datapath selection and the payload layouts shared by the array and its testbenches.

Every layout here is a :class:`amaranth.lib.data.StructLayout`; field order is bit order,
least significant first, so a testbench can pack and unpack payloads from these objects
instead of re-deriving bit offsets by hand.
"""
from amaranth.hdl import signed, unsigned
from amaranth.lib import data

__all__ = ["DATAPATHS", "check_datapaths", "operand_shape", "BeatControl", "operand_layout",
           "result_layout"]

#: The arithmetic datapaths a build can include.
DATAPATHS = ("int8", "fp16")


def check_datapaths(datapaths):
    """Validate a datapath selection; return it as a tuple in canonical order.

    ``("int8",)``: int8 x int8 -> int32. ``("fp16",)``: binary16 x binary16 -> binary32.
    ``("int8", "fp16")``: both, selected per tile at run time.
    """
    if isinstance(datapaths, str) or not hasattr(datapaths, "__iter__"):
        raise TypeError(f"datapaths must be a collection of names from {DATAPATHS}, "
                        f"not {datapaths!r}")
    chosen = set(datapaths)
    unknown = chosen - set(DATAPATHS)
    if unknown:
        raise ValueError(f"unknown datapaths {sorted(unknown)}; choose from {DATAPATHS}")
    if not chosen:
        raise ValueError(f"datapaths must name at least one of {DATAPATHS}")
    return tuple(name for name in DATAPATHS if name in chosen)


def operand_shape(datapaths):
    """One operand lane: ``signed(8)`` for int8-only builds, else 16 raw bits (binary16, or
    an int8 in the low byte when a dual build runs an int8 tile)."""
    return signed(8) if datapaths == ("int8",) else unsigned(16)


class BeatControl(data.Struct):
    """Qualifiers that travel through the array beside every operand beat.

    ``valid``: the beat carries data (a bubble otherwise; PEs ignore it).
    ``first``: first beat of a tile; the accumulator restarts from this product.
    ``last``: last beat of a tile; the finished sum is captured for draining.
    ``fp16``: the tile uses the fp16 datapath (always 0 in int8-only builds, 1 in fp16-only).
    """
    valid: 1
    first: 1
    last: 1
    fp16: 1


def operand_layout(rows, cols, datapaths=("int8",)):
    """One operand beat: column ``k`` of A and row ``k`` of B.

    ``a[i]`` enters array row ``i``; ``b[j]`` enters array column ``j`` (lanes of
    :func:`operand_shape`); ``last`` marks the final beat (``k = K - 1``) of a tile. Builds
    with both datapaths add ``fp16``, which must hold the same value for every beat of a tile.
    """
    datapaths = check_datapaths(datapaths)
    lane = operand_shape(datapaths)
    fields = {
        "a": data.ArrayLayout(lane, rows),
        "b": data.ArrayLayout(lane, cols),
        "last": 1,
    }
    if len(datapaths) > 1:
        fields["fp16"] = 1
    return data.StructLayout(fields)


def result_layout(rows, cols, acc_width=32):
    """One drained result row: ``data[j]`` is ``C[row, j]`` (``acc_width`` bits: an int32, or
    the binary32 bit pattern of an fp16 tile's result).

    A tile drains as ``rows`` beats, bottom row first (``row = rows - 1`` down to ``0``);
    ``last`` is set on the beat with ``row == 0``.
    """
    return data.StructLayout({
        "data": data.ArrayLayout(signed(acc_width), cols),
        "row": unsigned(max(1, (rows - 1).bit_length())),
        "last": 1,
    })
