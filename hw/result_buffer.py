"""Slots of drained result rows, written (or accumulated into) as the array produces them."""
from amaranth.hdl import Cat, Mux, Signal

from .operand_buffer import OperandBuffer

__all__ = ["ResultBuffer"]


class ResultBuffer(OperandBuffer):
    """An :class:`~hw.operand_buffer.OperandBuffer` whose writes may add to what is stored.

    A slot holds one tile: word ``index`` is result row ``index`` (``lanes`` lanes of
    ``lane_width`` bits). A write with ``accumulate`` set adds its lanes to the stored ones
    (two's complement, wrapping: int32 partial sums of a reduction split over several
    passes); without it, it overwrites. A write lands one cycle after it is presented (read,
    add, write back); the lookup port is transparent to the write port, so back-to-back
    updates of the same row see each other. The read side streams a slot's rows exactly as
    the operand buffer streams words.

    Ports: as :class:`~hw.operand_buffer.OperandBuffer`, plus ``write.accumulate``.
    """

    _extra_write_fields = {"accumulate": 1}

    def __init__(self, *, lanes, lane_width=32, depth, slots=2):
        for name, value in (("lanes", lanes), ("lane_width", lane_width)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        self.lanes, self.lane_width = lanes, lane_width
        super().__init__(width=lanes * lane_width, depth=depth, slots=slots)

    def _write_path(self, m, ram):
        wr = ram.write_port()
        old = ram.read_port(transparent_for=(wr,))
        # Stage 0: look the row up. Stage 1: write it back, summed or replaced.
        pending = Signal(self.write.shape())
        m.d.comb += old.addr.eq(self.write.slot * self.depth + self.write.index)
        m.d.sync += pending.eq(self.write)
        lanes = []
        for lane in range(self.lanes):
            part = slice(lane * self.lane_width, (lane + 1) * self.lane_width)
            lanes.append((pending.data[part] + Mux(pending.accumulate, old.data[part], 0))
                         [:self.lane_width])
        m.d.comb += [
            wr.addr.eq(pending.slot * self.depth + pending.index),
            wr.data.eq(Cat(*lanes)),
            wr.en.eq(pending.valid),
        ]
