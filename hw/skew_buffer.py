"""Per-lane delay lines: the one place where the array's operand and result skew lives."""
from amaranth.hdl import Module, Shape, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SkewBuffer"]


class SkewBuffer(wiring.Component):
    """Delays lane ``k`` of ``i`` by ``delays[k]`` clock cycles onto lane ``k`` of ``o``.

    A systolic array needs its operands staggered in time (row ``i`` of A enters ``i`` cycles
    after row 0) and its results straightened again; both are this component with different
    delay lists. A delay of 0 is a combinational pass-through. Cost: ``sum(delays)`` registers
    of ``lane_shape``.

    Parameters
    ----------
    lane_shape : ShapeLike
        Shape of one lane (for example ``signed(8)`` or a :class:`~amaranth.lib.data.Layout`).
    delays : sequence of int
        Delay of each lane in cycles, each ``>= 0``; one lane per entry.
    reset_less : bool
        Registers without a reset (data whose validity travels elsewhere): a reset then
        reaches none of them. In a 16x16 ECP5 build the array clock's reset drove ~26,000
        flip-flops, mostly such data, and that one net (17.5 ns of routing) was the clock's
        critical path.
    """

    def __init__(self, lane_shape, delays, *, reset_less=False):
        Shape.cast(lane_shape)  # raises TypeError on a bad shape
        delays = list(delays)
        if not delays:
            raise ValueError("delays must name at least one lane")
        for lane, delay in enumerate(delays):
            if not isinstance(delay, int) or isinstance(delay, bool) or delay < 0:
                raise ValueError(f"delay of lane {lane} must be a non-negative integer, "
                                 f"not {delay!r}")
        if not isinstance(reset_less, bool):
            raise TypeError(f"reset_less must be True or False, not {reset_less!r}")
        self.lane_shape = lane_shape
        self.delays = tuple(delays)
        self.reset_less = reset_less
        lanes = data.ArrayLayout(lane_shape, len(delays))
        super().__init__({"i": In(lanes), "o": Out(lanes)})

    def elaborate(self, platform):
        m = Module()
        for lane, delay in enumerate(self.delays):
            stage = self.i[lane]
            for step in range(delay):
                reg = Signal(self.lane_shape, name=f"lane{lane}_d{step + 1}",
                             reset_less=self.reset_less)
                m.d.sync += reg.eq(stage)
                stage = reg
            m.d.comb += self.o[lane].eq(stage)
        return m
