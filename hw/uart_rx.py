"""UART receiver: 8 data bits, no parity, 1 stop bit (8N1), LSB first."""
from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UartRx", "check_divisor"]


def check_divisor(divisor):
    """Raise :class:`ValueError` unless ``divisor`` (clock cycles per bit) is an int >= 4."""
    if not isinstance(divisor, int) or isinstance(divisor, bool) or divisor < 4:
        raise ValueError(f"divisor (clock cycles per bit, clock / baud) must be an integer "
                         f">= 4, not {divisor!r}")


class UartRx(wiring.Component):
    """Receives 8N1 bytes from the ``rx`` pin.

    ``rx`` is asynchronous (it goes through a two-flop synchroniser). A start bit is taken
    when ``rx`` is still low half a bit after its falling edge (shorter glitches are ignored);
    every bit is sampled once in its middle, ``divisor`` cycles apart. When the stop bit
    samples high the byte appears on ``data`` (8 bits) about 1.5 bit times after the start
    of the last data bit, and stays until ``data.ready``. A stop bit sampled low drops the
    byte and pulses ``framing_error`` for one cycle; a byte completed while the previous one
    is still unaccepted is dropped and pulses ``overrun``.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (clock frequency / baud rate), at least 4. The receiver
        tolerates a baud mismatch of about ``(divisor / 2 - 1) / (9.5 * divisor)``: the
        last sample may drift half a bit less the synchroniser's cycle (+-3.7 % at 7,
        +-4.6 % at 16; use exact divisors where the clock allows).
    """

    rx: In(1, init=1)
    data: Out(stream.Signature(8))
    framing_error: Out(1)
    overrun: Out(1)

    def __init__(self, divisor):
        check_divisor(divisor)
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, rx, init=1)

        timer = Signal(range(self.divisor))
        bits = Signal(range(9))
        shift = Signal(8)
        tick = timer == 0
        with m.If(~tick):
            m.d.sync += timer.eq(timer - 1)

        with m.If(self.data.ready):
            m.d.sync += self.data.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += timer.eq(self.divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(tick):
                    with m.If(rx):
                        m.next = "IDLE"            # a glitch, not a start bit
                    with m.Else():
                        m.d.sync += [timer.eq(self.divisor - 1), bits.eq(0)]
                        m.next = "DATA"
            with m.State("DATA"):
                with m.If(tick):
                    m.d.sync += [shift.eq(shift >> 1 | rx << 7), bits.eq(bits + 1),
                                 timer.eq(self.divisor - 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(tick):
                    with m.If(~rx):
                        m.d.comb += self.framing_error.eq(1)
                    with m.Elif(self.data.valid & ~self.data.ready):
                        m.d.comb += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [self.data.payload.eq(shift), self.data.valid.eq(1)]
                    m.next = "IDLE"
        return m
