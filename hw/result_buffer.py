"""Slots of drained result rows, written (or accumulated into) as the array produces them."""
from amaranth.hdl import Cat, Mux, Signal

from .fp32_adder import Fp32Adder
from .operand_buffer import OperandBuffer

__all__ = ["ResultBuffer"]


class ResultBuffer(OperandBuffer):
    """An :class:`~hw.operand_buffer.OperandBuffer` whose writes may add to what is stored.

    A slot holds one tile: word ``index`` is result row ``index`` (``lanes`` lanes of
    ``lane_width`` bits). A write with ``accumulate`` set adds its lanes to the stored ones;
    without it, it overwrites. The addition is two's complement, wrapping (int32 partial
    sums of a reduction split over several passes) or, with ``fp32`` set (only in buffers
    built with ``fp32=True``; ``lane_width`` 32), binary32 with :class:`~hw.fp32_adder.
    Fp32Adder` per lane: round to nearest even, subnormals kept, canonical NaN, ``-0 + -0 =
    -0``, ``x + -x = +0`` (fp16 tiles whose ``K`` is split, ``tb/golden.py``).

    Writes take one per cycle, no backpressure, and land :attr:`write_latency` (2) cycles
    after they are presented: cycle 0 looks the row up, cycle 1 registers the stored value,
    cycle 2 adds and writes back. The adder sits between registers (old value and new row
    in, block-RAM write port out), so its path is as long as a processing element's
    accumulator loop and the buffer does not lower the array's clock. Back-to-back updates
    of one row see each other: the lookup port is transparent to the write port (a write
    two cycles later), and a write one cycle later takes the sum being written instead of
    the stale stored value. The read side streams a slot's rows exactly as the operand
    buffer streams words.

    Ports: as :class:`~hw.operand_buffer.OperandBuffer`, plus ``write.accumulate`` (and
    ``write.fp32`` when built with ``fp32=True``).
    """

    #: cycles from presenting a write until a read command may see it
    write_latency = 2

    def __init__(self, *, lanes, lane_width=32, depth, slots=2, fp32=False):
        for name, value in (("lanes", lanes), ("lane_width", lane_width)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if not isinstance(fp32, bool):
            raise ValueError(f"fp32 must be True or False, not {fp32!r}")
        if fp32 and lane_width != 32:
            raise ValueError(f"fp32 accumulation needs 32-bit lanes, not {lane_width}")
        self.lanes, self.lane_width, self.fp32 = lanes, lane_width, fp32
        self._extra_write_fields = {"accumulate": 1, **({"fp32": 1} if fp32 else {})}
        super().__init__(width=lanes * lane_width, depth=depth, slots=slots)

    def _write_path(self, m, ram):
        wr = ram.write_port()
        old = ram.read_port(transparent_for=(wr,))
        # Stage 0: look the row up. Stage 1: register it. Stage 2: sum or replace, write.
        looked_up = Signal(self.write.shape())
        adding = Signal(self.write.shape())
        stored = Signal(self.width)
        result = Signal(self.width)
        address = self.write.slot * self.depth + self.write.index
        m.d.comb += old.addr.eq(address)
        same_row = ((adding.slot == looked_up.slot) & (adding.index == looked_up.index) &
                    adding.valid)
        m.d.sync += [looked_up.eq(self.write), adding.eq(looked_up),
                     stored.eq(Mux(same_row, result, old.data))]
        lanes = []
        for lane in range(self.lanes):
            part = slice(lane * self.lane_width, (lane + 1) * self.lane_width)
            total = (adding.data[part] + stored[part])[:self.lane_width]
            if self.fp32:
                adder = m.submodules[f"fp32_add_{lane}"] = Fp32Adder()
                m.d.comb += [adder.a.eq(stored[part]), adder.b.eq(adding.data[part])]
                total = Mux(adding.fp32, adder.sum, total)
            lanes.append(Mux(adding.accumulate, total, adding.data[part]))
        m.d.comb += [
            result.eq(Cat(*lanes)),
            wr.addr.eq(adding.slot * self.depth + adding.index),
            wr.data.eq(result),
            wr.en.eq(adding.valid),
        ]
