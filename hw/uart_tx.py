"""UART transmitter: 8 data bits, no parity, 1 stop bit (8N1), LSB first."""
from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .uart_rx import check_divisor

__all__ = ["UartTx"]


class UartTx(wiring.Component):
    """Sends the bytes of ``data`` on the ``tx`` pin (idle high).

    A byte is accepted (``data.ready``) whenever the transmitter is idle, including the
    cycle its previous stop bit ends, so back-to-back bytes leave without gaps: one frame
    is exactly ``10 * divisor`` cycles. ``tx`` is a register (glitch-free) and goes low one
    cycle after the transfer.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (clock frequency / baud rate), at least 4.
    """

    data: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, divisor):
        check_divisor(divisor)
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        shift = Signal(9)                   # data bits then the stop bit, after the start bit
        bits = Signal(range(11))            # bits still to send, the current one included
        # ready: idle, or in the last cycle of the stop bit ((bits == 0) | (bits == 1) &
        # (timer == 0)), worked out a cycle ahead into a register so that the sender's
        # decisions do not wait for the timer's compare
        ready = Signal(init=1)
        m.d.comb += self.data.ready.eq(ready)
        with m.If(self.data.valid & ready):
            m.d.sync += [self.tx.eq(0), shift.eq(Cat(self.data.payload, Const(1, 1))),
                         bits.eq(10), timer.eq(self.divisor - 1), ready.eq(0)]
        with m.Elif(bits != 0):
            with m.If(timer == 0):
                m.d.sync += [self.tx.eq(shift[0]), shift.eq(Cat(shift[1:], Const(1, 1))),
                             bits.eq(bits - 1), timer.eq(self.divisor - 1),
                             ready.eq(bits == 1)]
            with m.Else():
                m.d.sync += [timer.eq(timer - 1), ready.eq((bits == 1) & (timer == 1))]
        with m.Else():
            m.d.sync += ready.eq(1)
        return m
