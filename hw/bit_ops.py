"""Bit-level building blocks: leading zeros, sticky shifts, comparisons with a constant."""
from amaranth.hdl import Const, Mux, Signal, Value

__all__ = ["at_least", "leading_zeros", "shift_right_sticky"]


def at_least(value, constant):
    """``value >= constant`` for an unsigned ``value`` and an integer ``constant``, as gates.

    Synthesis maps every comparison to an adder's carry chain, even one with a constant:
    on the iCE40 that is a logic cell per bit (a 32-bit ``pitch >= 16`` takes 30). Written
    as a chain from the least significant bit up (``value[:i + 1] >= constant[:i + 1]`` is
    ``value[i] & ...`` where the constant has a 1, ``value[i] | ...`` where it has a 0),
    it becomes a few LUTs: the constant's trailing zeros drop out, its leading zeros make
    an OR of the high bits. Returns a 1-bit value."""
    value = Value.cast(value)
    if constant <= 0:
        return Const(1)
    if constant >= 1 << len(value):
        return Const(0)
    result = Const(1)
    for i in range(len(value)):
        if (constant >> i) & 1:
            result = value[i] & result
        elif (constant >> i) == 0:
            result = value[i:].any() | result
            break
        else:
            result = value[i] | result
    return result


def leading_zeros(m, value, name="lz"):
    """Combinational count of leading zeros of ``value`` (``len(value)`` when it is zero).

    Written as a priority chain from the least significant bit up, which synthesis turns into
    a priority encoder; the result is a new signal wide enough for ``len(value)``.
    """
    width = len(value)
    count = Signal(range(width + 1), name=name)
    result = Const(width, count.shape())
    for bit in range(width):  # a higher set bit overrides every lower one
        result = Mux(value[bit], width - 1 - bit, result)
    m.d.comb += count.eq(result)
    return count


def shift_right_sticky(m, value, amount, name="sh"):
    """``value >> amount`` and whether any 1 bit was shifted out (the IEEE "sticky" bit).

    ``amount`` may exceed ``len(value)``: everything is then shifted out.
    Returns ``(shifted, sticky)`` signals; ``shifted`` is as wide as ``value``.
    """
    width = len(value)
    shifted = Signal(width, name=f"{name}_value")
    sticky = Signal(name=f"{name}_sticky")
    mask = Signal(width, name=f"{name}_mask")  # ones where bits are shifted out
    big = amount >= width
    m.d.comb += [
        shifted.eq(Mux(big, 0, value >> amount)),
        mask.eq(Mux(big, (1 << width) - 1, ~(Const((1 << width) - 1, width) << amount))),
        sticky.eq((value & mask) != 0),
    ]
    return shifted, sticky
