"""Bit-level building blocks of the floating-point units: leading zeros, sticky shifts."""
from amaranth.hdl import Const, Mux, Signal

__all__ = ["leading_zeros", "shift_right_sticky"]


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
