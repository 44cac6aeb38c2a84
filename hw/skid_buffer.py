"""A register slice for a valid/ready stream: both directions registered, full throughput."""
from amaranth.hdl import Module, Shape, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SkidBuffer"]


class SkidBuffer(wiring.Component):
    """Passes payloads from ``i`` to ``o`` one cycle later, in order, none lost or repeated.

    ``o.valid`` and ``o.payload`` come from registers, and ``i.ready`` is a register (low
    only while a second payload waits in the skid register): no combinational path runs from
    ``o.ready`` to ``i.ready`` or from ``i`` to ``o``. What it is for: a consumer whose
    ``ready`` is logic of its own (the systolic array's admission rules) and a producer whose
    ``ready`` enables wide registers and block RAMs far away on the die (the operand
    buffers); without the slice those form one path across a 16x16 array (the 68 MHz
    critical path of its compute unit on the ECP5-85F).

    A payload accepted in cycle ``t`` is offered on ``o`` from cycle ``t + 1``; with ``o``
    always ready, one payload a cycle goes through. Cost: two registers of the payload.

    Parameters
    ----------
    payload_shape : ShapeLike
        The stream's payload (for example a :class:`~amaranth.lib.data.StructLayout`).
    """

    def __init__(self, payload_shape):
        Shape.cast(payload_shape)  # raises TypeError on a bad shape
        self.payload_shape = payload_shape
        super().__init__({
            "i": In(stream.Signature(payload_shape)),
            "o": Out(stream.Signature(payload_shape)),
        })

    def elaborate(self, platform):
        m = Module()
        # payloads are data (the valid bits say when they count): no reset
        skid = Signal(self.payload_shape, reset_less=True)  # taken while o was stalled
        out = Signal(self.payload_shape, reset_less=True)
        skid_valid = Signal()
        m.d.comb += [self.i.ready.eq(~skid_valid), self.o.payload.eq(out)]
        with m.If(~self.o.valid | self.o.ready):
            # o is free this cycle: refill it, from the skid register first
            with m.If(skid_valid):
                m.d.sync += [out.eq(skid), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += out.eq(self.i.payload)
            m.d.sync += self.o.valid.eq(skid_valid | self.i.valid)
        with m.Elif(self.i.valid & ~skid_valid):
            m.d.sync += [skid.eq(self.i.payload), skid_valid.eq(1)]
        return m
