"""int32 -> int8 requantisation without a multiplier: one bit of the product per cycle."""
from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from .requantizer import REQUANTIZER_PORTS

__all__ = ["SerialRequantizer"]

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def _beyond(bits, sign):
    """Whether a word whose bits 9..31 are ``bits`` (23 bits) and whose sign is ``sign`` is
    beyond +-511: those bits are not all copies of the sign."""
    return bits != Mux(sign, (1 << 23) - 1, 0)


class SerialRequantizer(wiring.Component):
    """:class:`~hw.requantizer.Requantizer`'s results, bit-serially, in about 200 LUT4 and
    no DSP: for parts whose multipliers all go to the array (the iCE40UP5K has 8).

    The same rules, bit for bit (:func:`tb.golden.requantize`): bias add wrapping in 32 bits,
    saturating rounding doubling high multiply, rounding shift right, zero point, clamp to
    int8 (or to ``[zero_point, 127]`` with ``relu``).

    Method
    ------
    * **Take** (the cycle ``valid_in & ready``): ``x = acc + bias`` (wraps), the other inputs
      are latched (they are in every cycle the unit is idle; the take keeps them).
    * **Multiply** (32 cycles): radix-2 shift-and-add, least significant multiplier bit first;
      the last step subtracts (two's-complement weight ``-2**31``). The high register starts
      at ``2**30``, so the 64-bit result is ``x * multiplier + 2**30``. Its bits 31 and up,
      ``floor((x * multiplier + 2**30) / 2**31)``, are gemmlowp's high word for both signs:
      a negative product's nudge ``1 - 2**30`` plus C's round-toward-zero correction
      ``2**31 - 1`` is again ``2**30``. (The one overflowing case, ``x == multiplier ==
      -2**31``, saturates to ``2**31 - 1`` as in gemmlowp.)
    * **Shift** (31 cycles, whatever the shift): arithmetic shift right one bit a cycle while
      bits remain to be shifted, keeping the last bit shifted out (``half``) and the OR of the
      ones before it (``sticky``). Rounding half away from zero adds one when ``half`` is set
      and, for a negative word, ``sticky`` too. The fixed length makes the timing independent
      of the data, so the cycle model (``sw/cycle_model.py``) predicts stores exactly.
    * **Finish** (1 cycle): ``+ round + zero_point``, clamp, ``result`` registered. Words
      beyond +-511 are first saturated to 10 bits (the clamp to int8 cannot tell them apart
      after adding an 8-bit zero point), so this add is 11 bits wide.

    Timing: ``valid_out`` is high for one cycle :attr:`latency` (65) cycles after the take;
    ``ready`` is high again in that cycle (a take every 65 cycles), one value at a time.

    Ports: as :class:`~hw.requantizer.Requantizer`, plus ``ready`` out.
    """

    #: cycles from a take to ``valid_out``, for every input
    latency = 65

    def __init__(self):
        super().__init__({**REQUANTIZER_PORTS, "ready": Out(1)})

    def _top_bit_subtracts(self):
        """Whether the last step subtracts (multiplier bit 31 weighs ``-2**31``); mutation
        tests override it."""
        return True

    def elaborate(self, platform):
        m = Module()
        x = Signal(signed(32))
        high = Signal(signed(34))   # product high part; then the high word being shifted
        low = Signal(32)            # multiplier bits not yet used, product bits below
        step = Signal(range(32))
        saturate = Signal()
        shift, zero_point, relu = Signal(5), Signal(signed(8)), Signal()
        half, sticky = Signal(), Signal()
        beyond = Signal()           # the shifted word is beyond +-511 (see FINISH)

        # One adder: high + x, or high - x (= high + ~x + 1) on the multiply's last step;
        # high + 0 in SHIFT, where ``low`` is 0.
        last = Signal()         # the multiply's step 31, from a register (set at step 30)
        subtract = self._top_bit_subtracts() & last
        addend = Signal(signed(34))
        m.d.comb += addend.eq(Mux(low[0], x ^ Mux(subtract, -1, 0), 0))
        total = Signal(signed(34))
        m.d.comb += total.eq(high + addend + (low[0] & subtract))

        m.d.sync += self.valid_out.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.ready.eq(1)
                # The inputs are latched in every idle cycle, the take only moves on: the
                # ~100 registers' enables depend on the state alone, not on ``valid_in``,
                # which its source decides late in the cycle (the UP5K's clock).
                wrapped = Signal(signed(32))
                m.d.comb += wrapped.eq(self.acc + self.bias)
                m.d.sync += [
                    x.eq(wrapped), high.eq(1 << 30), low.eq(self.multiplier),
                    step.eq(0),
                    shift.eq(self.shift), zero_point.eq(self.zero_point),
                    relu.eq(self.relu), half.eq(0), sticky.eq(0),
                ]
                with m.If(self.valid_in):
                    m.next = "MULTIPLY"
            with m.State("MULTIPLY"):
                m.d.sync += [step.eq(step + 1), last.eq(step == 30)]
                with m.If(step == 0):
                    # from the registers (``low`` is still the multiplier): the compares
                    # are off the take's adder path; used at step 31
                    m.d.sync += saturate.eq((x == _INT32_MIN) & (low == _INT32_MIN))
                with m.If(last):
                    # after the last step, total = floor((x * m + 2**30) / 2**31); ``low``
                    # cleared, so that the adder adds nothing in SHIFT
                    m.d.sync += [high.eq(Mux(saturate, _INT32_MAX, total)), low.eq(0)]
                    m.next = "SHIFT"
                with m.Else():
                    m.d.sync += [high.eq(total >> 1), low.eq(Cat(low[1:], total[0]))]
            with m.State("SHIFT"):       # step counts on from 0: 31 cycles, then finish
                m.d.sync += step.eq(step + 1)
                # whether the word after this cycle's shift is beyond +-511 (FINISH's clamp),
                # from this cycle's bits: the compare is off FINISH's path
                m.d.sync += beyond.eq(Mux(shift != 0, _beyond(high[10:33], high[32]),
                                          _beyond(high[9:32], high[31])))
                with m.If(shift != 0):
                    # ``total`` is ``high`` here (``low`` is 0): the multiply's shift path
                    m.d.sync += [high.eq(total >> 1), half.eq(high[0]), sticky.eq(sticky | half),
                                 shift.eq(shift - 1)]
                with m.If(step == 30):
                    m.next = "FINISH"
            with m.State("FINISH"):
                # Words beyond +-511 clamp the same whatever zero point (int8) is added:
                # saturate to 10 bits first, so the add and compares are 11 bits wide.
                sign = high[31]
                near = Signal(signed(10))
                m.d.comb += near.eq(Mux(beyond, Mux(sign, -512, 511), high[:10]))
                round_up = half & (~sign | sticky) & ~beyond
                shifted = Signal(signed(11))
                m.d.comb += shifted.eq(near + zero_point + round_up)
                floor = Mux(relu, zero_point, -128)
                with m.If(shifted > 127):
                    m.d.sync += self.result.eq(127)
                with m.Elif(shifted < floor):
                    m.d.sync += self.result.eq(floor)
                with m.Else():
                    m.d.sync += self.result.eq(shifted)
                m.d.sync += self.valid_out.eq(1)
                m.next = "IDLE"
        return m
