"""One multiply-accumulate cell of the output-stationary systolic array."""
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .layouts import OPERAND_WIDTH, BeatControl

__all__ = ["ProcessingElement", "check_acc_width"]


def check_acc_width(acc_width):
    """Raise unless ``acc_width`` can hold one int8 x int8 product (16 bits or more)."""
    if not isinstance(acc_width, int) or isinstance(acc_width, bool):
        raise TypeError(f"acc_width must be an integer, not {acc_width!r}")
    if acc_width < 2 * OPERAND_WIDTH:
        raise ValueError(f"acc_width must be at least {2 * OPERAND_WIDTH} bits to hold one "
                         f"int8 x int8 product, not {acc_width}")


class ProcessingElement(wiring.Component):
    """An int8 x int8 multiply, int32 (``acc_width``) accumulate cell that keeps its output.

    Dataflow
    --------
    Output-stationary: PE ``(i, j)`` owns ``C[i, j]``. Operand ``a`` (a row of A) arrives from
    the left and leaves to the right one cycle later; ``b`` (a column of B) arrives from above
    and leaves below one cycle later; the beat qualifiers ``ctl`` travel with ``a``.

    Timing (cycles after a beat is on ``a_in``/``b_in``/``ctl_in``)
    ---------------------------------------------------------------
    * +1: ``a_out``, ``b_out``, ``ctl_out`` carry the beat on; the product is registered.
    * +1 (same edge, combinational ``done``): for a valid beat, ``acc`` becomes
      ``product + (0 if first else acc)`` at the end of the next cycle; on a ``last`` beat the
      finished sum loads ``result_out`` instead of waiting in ``acc``, so the next tile can
      start accumulating on the very next beat (no idle cycles between tiles).

    Arithmetic
    ----------
    The 16-bit product is sign-extended and added in ``acc_width``-bit two's complement;
    overflow wraps (the sum is kept modulo ``2**acc_width``).  Bubbles (``ctl.valid == 0``)
    leave ``acc`` untouched.

    Drain
    -----
    ``result_out`` registers of one column form a shift chain towards the bottom of the array.
    The column's ``drain_start`` pulse (broadcast) and a token that walks down one row per
    cycle (``drain_token_in`` -> ``drain_token_out``) bound the cycles in which this PE loads
    ``result_in`` from the PE above: from the ``drain_start`` cycle up to and including the
    cycle the token reaches it. ``draining`` is high in exactly those cycles. A capture
    (``done``) has priority over a drain shift.

    Parameters
    ----------
    acc_width : int
        Accumulator and result width in bits, at least 16 (one full product).
    """

    def __init__(self, *, acc_width=32):
        check_acc_width(acc_width)
        self.acc_width = acc_width
        operand = signed(OPERAND_WIDTH)
        super().__init__({
            "a_in": In(operand),
            "b_in": In(operand),
            "ctl_in": In(BeatControl),
            "a_out": Out(operand),
            "b_out": Out(operand),
            "ctl_out": Out(BeatControl),
            "result_in": In(signed(acc_width)),
            "result_out": Out(signed(acc_width)),
            "done": Out(1),
            "drain_start": In(1),
            "drain_token_in": In(1),
            "drain_token_out": Out(1),
            "draining": Out(1),
        })

    def _multiply(self, a, b):
        """The product expression; mutation tests override this to prove the tests can fail."""
        return a * b

    def elaborate(self, platform):
        m = Module()

        # Systolic forwarding: each operand moves one PE per cycle.
        m.d.sync += [
            self.a_out.eq(self.a_in),
            self.b_out.eq(self.b_in),
            self.ctl_out.eq(self.ctl_in),
        ]

        # Stage 1: registered product (lets synthesis use the DSP's output register).
        product = Signal(signed(2 * OPERAND_WIDTH))
        ctl = Signal(BeatControl)
        m.d.sync += [
            product.eq(self._multiply(self.a_in, self.b_in)),
            ctl.eq(self.ctl_in),
        ]

        # Stage 2: accumulate. The clear is folded into the adder's operand (faster than an
        # if/else around the add); the assignment truncates, which is the two's-complement wrap.
        acc = Signal(signed(self.acc_width))
        acc_next = Signal(signed(self.acc_width))
        m.d.comb += [
            acc_next.eq(product + Mux(ctl.first, 0, acc)),
            self.done.eq(ctl.valid & ctl.last),
        ]
        with m.If(ctl.valid):
            m.d.sync += acc.eq(acc_next)

        # Drain window: open from drain_start until the walking token has reached this row.
        busy = Signal()
        m.d.comb += self.draining.eq(self.drain_start | busy)
        m.d.sync += [
            busy.eq((busy | self.drain_start) & ~self.drain_token_in),
            self.drain_token_out.eq(self.drain_token_in),
        ]
        with m.If(self.done):
            m.d.sync += self.result_out.eq(acc_next)
        with m.Elif(self.draining):
            m.d.sync += self.result_out.eq(self.result_in)

        return m


