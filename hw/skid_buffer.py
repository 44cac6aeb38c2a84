"""A register slice for a valid/ready stream: both directions registered, full throughput."""
from amaranth.hdl import Module, Shape, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .register_copies import register_copies

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

    ``ready_copies=N``: ``ready_copy`` (``N`` bits) holds ``N`` copies of ``i.ready``,
    each its own register (:func:`~hw.register_copies.register_copies`: flip-flops that
    synthesis keeps apart on the ECP5), for producers whose parts sit far apart: each part
    takes its copy, placed next to it, instead of one register reaching them all. In the
    16x16 ECP5 system the A and B operand buffers' enables hung off one ``i.ready`` (and
    each other's ``valid``): 4.8 + 5.8 ns of routing, the array clock's critical path at
    84.2 MHz. The copies reset with the domain's own reset only (not a ``ResetInserter``'s;
    :func:`~hw.register_copies.register_copies`), so use them in a domain without one.

    Parameters
    ----------
    payload_shape : ShapeLike
        The stream's payload (for example a :class:`~amaranth.lib.data.StructLayout`).
    ready_copies : int
        Copies of ``i.ready`` on the ``ready_copy`` port (0: no such port).
    """

    def __init__(self, payload_shape, *, ready_copies=0):
        Shape.cast(payload_shape)  # raises TypeError on a bad shape
        if not isinstance(ready_copies, int) or isinstance(ready_copies, bool) \
                or ready_copies < 0:
            raise ValueError(f"ready_copies must be a non-negative integer, not "
                             f"{ready_copies!r}")
        self.payload_shape = payload_shape
        self.ready_copies = ready_copies
        ports = {"i": In(stream.Signature(payload_shape)),
                 "o": Out(stream.Signature(payload_shape))}
        if ready_copies:
            ports["ready_copy"] = Out(ready_copies)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        # payloads are data (the valid bits say when they count): no reset
        skid = Signal(self.payload_shape, reset_less=True)  # taken while o was stalled
        out = Signal(self.payload_shape, reset_less=True)
        skid_valid = Signal()
        skid_next = Signal()                                # skid_valid a cycle later
        m.d.comb += [self.i.ready.eq(~skid_valid), self.o.payload.eq(out),
                     skid_next.eq(skid_valid)]
        # The payload registers' enables do not wait for ``i.valid`` (a register loaded
        # with an invalid payload is marked so): with a wide payload ``i.valid`` would be
        # a wide fan-out, and in the compute unit it comes from both operand buffers. The
        # skid register takes ``i.payload`` whenever it holds nothing, so its enable is a
        # register, not ``o.ready`` (the array's admission logic, whose route to the skid
        # register's 257 enables was the 16x16 ECP5 array clock's critical path at 89 MHz).
        with m.If(~self.o.valid | self.o.ready):
            # o is free this cycle: refill it, from the skid register first
            with m.If(skid_valid):
                m.d.sync += out.eq(skid)
                m.d.comb += skid_next.eq(0)
            with m.Else():
                m.d.sync += out.eq(self.i.payload)
            m.d.sync += self.o.valid.eq(skid_valid | self.i.valid)
        with m.Elif(~skid_valid):
            m.d.comb += skid_next.eq(self.i.valid)
        with m.If(~skid_valid):
            m.d.sync += skid.eq(self.i.payload)
        m.d.sync += skid_valid.eq(skid_next)
        if self.ready_copies:
            # copies of skid_valid (reset 0, as it is): i.ready is its complement
            held = register_copies(m, platform, "sync", skid_next, self.ready_copies,
                                   name="skid_valid_copy", reset=True)
            m.d.comb += [self.ready_copy[n].eq(~copy) for n, copy in enumerate(held)]
        return m
