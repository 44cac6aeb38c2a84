"""int32 -> int8 requantisation (gemmlowp / TensorFlow Lite rounding), pipelined."""
from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Requantizer"]

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


class Requantizer(wiring.Component):
    """``result = clamp(RoundingDivideByPOT(SRDHM(acc + bias, multiplier), shift) + zp)``.

    Exactly the rules of :func:`tb.golden.requantize` (see ``tb/golden.py``): the bias add
    wraps in 32 bits; the doubling high multiply rounds to nearest with ties away from zero
    and saturates its one overflow case; the shift right (0..31) rounds ties away from zero;
    the output zero point is added and the result clamped to int8, or to
    ``[max(zero_point, -128), 127]`` with ``relu``.

    Pipeline: 3 stages, one input per cycle. Stage 1 adds the bias and forms the 64-bit
    product (DSP multipliers); stage 2 rounds to the high word and divides by the power of
    two; stage 3 adds the zero point and clamps. ``valid_out`` follows ``valid_in`` three
    cycles later; the other inputs must be valid in the same cycle as ``valid_in``.

    Ports: ``acc``, ``bias``, ``multiplier`` (signed 32 bit), ``shift`` (unsigned 5 bit),
    ``zero_point`` (signed 8 bit), ``relu``, ``valid_in`` in; ``result`` (signed 8 bit),
    ``valid_out`` out.
    """

    acc: In(signed(32))
    bias: In(signed(32))
    multiplier: In(signed(32))
    shift: In(unsigned(5))
    zero_point: In(signed(8))
    relu: In(1)
    valid_in: In(1)
    result: Out(signed(8))
    valid_out: Out(1)

    latency = 3

    def _high_word(self, nudged):
        """C's truncating division by 2**31; mutation tests use a flooring shift instead."""
        return (nudged + Mux(nudged < 0, (1 << 31) - 1, 0)) >> 31

    def elaborate(self, platform):
        m = Module()

        # Stage 1: wrapped bias add, full product, the saturating case flagged.
        x = Signal(signed(32))
        m.d.comb += x.eq(self.acc + self.bias)
        product = Signal(signed(64))
        saturate = Signal()
        shift1, zp1, relu1, valid1 = (Signal.like(s) for s in (self.shift, self.zero_point,
                                                                 self.relu, self.valid_in))
        m.d.sync += [
            product.eq(x * self.multiplier),
            saturate.eq((x == _INT32_MIN) & (self.multiplier == _INT32_MIN)),
            shift1.eq(self.shift), zp1.eq(self.zero_point), relu1.eq(self.relu),
            valid1.eq(self.valid_in),
        ]

        # Stage 2: high word rounded half away from zero (C's truncating division by 2**31),
        # then the rounding shift right.
        nudged = Signal(signed(65))
        m.d.comb += nudged.eq(product + Mux(product >= 0, 1 << 30, 1 - (1 << 30)))
        high = Signal(signed(32))
        m.d.comb += high.eq(Mux(saturate, _INT32_MAX, self._high_word(nudged)))
        mask = Signal(32)
        m.d.comb += mask.eq((1 << shift1) - 1)
        remainder = high.as_unsigned() & mask
        threshold = (mask >> 1) + (high < 0)
        scaled = Signal(signed(32))
        zp2, relu2, valid2 = (Signal.like(s) for s in (zp1, relu1, valid1))
        m.d.sync += [
            scaled.eq((high >> shift1) + (remainder > threshold)),
            zp2.eq(zp1), relu2.eq(relu1), valid2.eq(valid1),
        ]

        # Stage 3: zero point and clamp.
        shifted = Signal(signed(34))
        m.d.comb += shifted.eq(scaled + zp2)
        low = Signal(signed(9))
        m.d.comb += low.eq(Mux(relu2, zp2, -128))
        with m.If(shifted > 127):
            m.d.sync += self.result.eq(127)
        with m.Elif(shifted < low):
            m.d.sync += self.result.eq(low)
        with m.Else():
            m.d.sync += self.result.eq(shifted)
        m.d.sync += self.valid_out.eq(valid2)
        return m
