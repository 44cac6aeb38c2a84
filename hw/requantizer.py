"""int32 -> int8 requantisation (gemmlowp / TensorFlow Lite rounding), pipelined."""
from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Requantizer", "REQUANTIZER_PORTS"]

#: The ports of every requantiser (the serial one adds ``ready``).
REQUANTIZER_PORTS = {
    "acc": In(signed(32)), "bias": In(signed(32)), "multiplier": In(signed(32)),
    "shift": In(unsigned(5)), "zero_point": In(signed(8)), "relu": In(1), "valid_in": In(1),
    "result": Out(signed(8)), "valid_out": Out(1),
}

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


class Requantizer(wiring.Component):
    """``result = clamp(RoundingDivideByPOT(SRDHM(acc + bias, multiplier), shift) + zp)``.

    Exactly the rules of :func:`tb.golden.requantize` (see ``tb/golden.py``): the bias add
    wraps in 32 bits; the doubling high multiply rounds to nearest with ties away from zero
    and saturates its one overflow case; the shift right (0..31) rounds ties away from zero;
    the output zero point is added and the result clamped to int8, or to
    ``[max(zero_point, -128), 127]`` with ``relu``.

    Pipeline: 5 stages, one input per cycle, each stage between registers so the clock is
    set by the array, not here. 1: the wrapped bias add. 2: the four 16x16 partial products
    of the 32x32 multiply (one 18x18 DSP each, registered). 3: their sum plus ``2**30`` and
    the high word ``floor((x * multiplier + 2**30) / 2**31)``: gemmlowp's nudged,
    truncating division for both signs (a negative product's nudge ``1 - 2**30`` plus the
    round-toward-zero correction ``2**31 - 1`` is again ``2**30``), or the saturated case.
    4: the rounding shift right. 5: zero point and clamp. ``valid_out`` follows ``valid_in``
    :attr:`latency` cycles later; the other inputs must be valid in the same cycle as
    ``valid_in``.

    Ports: ``acc``, ``bias``, ``multiplier`` (signed 32 bit), ``shift`` (unsigned 5 bit),
    ``zero_point`` (signed 8 bit), ``relu``, ``valid_in`` in; ``result`` (signed 8 bit),
    ``valid_out`` out.
    """

    latency = 5

    def __init__(self):
        super().__init__(REQUANTIZER_PORTS)

    def _high_word(self, product):
        """``floor((product + 2**30) / 2**31)``; mutation tests substitute the classic slip
        (nudge by sign, then floor instead of C's truncation)."""
        return (product + (1 << 30)) >> 31

    def elaborate(self, platform):
        m = Module()

        def delay(signal, name):
            """``signal`` one cycle later."""
            out = Signal.like(signal, name=name)
            m.d.sync += out.eq(signal)
            return out

        # Stage 1: wrapped bias add.
        x = Signal(signed(32))
        m.d.sync += x.eq(self.acc + self.bias)
        mult1 = delay(self.multiplier, "multiplier1")
        shift, zp, relu, valid = self.shift, self.zero_point, self.relu, self.valid_in
        shift, zp, relu, valid = (delay(v, f"{n}1") for v, n in
                                  ((shift, "shift"), (zp, "zp"), (relu, "relu"), (valid, "v")))

        # Stage 2: partial products of the 16-bit halves (low halves unsigned, high signed).
        halves = {"x": (x[:16], x[16:].as_signed()), "m": (mult1[:16], mult1[16:].as_signed())}
        partial = {}
        for a in (0, 1):
            for b in (0, 1):
                p = Signal(signed(34), name=f"partial_{a}{b}")
                m.d.sync += p.eq(halves["x"][a] * halves["m"][b])
                partial[a, b] = p
        saturate = Signal()
        m.d.sync += saturate.eq((x == _INT32_MIN) & (mult1 == _INT32_MIN))
        shift, zp, relu, valid = (delay(v, f"{n}2") for v, n in
                                  ((shift, "shift"), (zp, "zp"), (relu, "relu"), (valid, "v")))

        # Stage 3: the product and its high word.
        product = Signal(signed(64))
        m.d.comb += product.eq((partial[1, 1] << 32) + ((partial[0, 1] + partial[1, 0]) << 16)
                               + partial[0, 0])
        high = Signal(signed(32))
        m.d.sync += high.eq(Mux(saturate, _INT32_MAX, self._high_word(product)))
        shift, zp, relu, valid = (delay(v, f"{n}3") for v, n in
                                  ((shift, "shift"), (zp, "zp"), (relu, "relu"), (valid, "v")))

        # Stage 4: the rounding shift right (ties away from zero).
        mask = Signal(32)
        m.d.comb += mask.eq((1 << shift) - 1)
        remainder = high.as_unsigned() & mask
        threshold = (mask >> 1) + (high < 0)
        scaled = Signal(signed(32))
        m.d.sync += scaled.eq((high >> shift) + (remainder > threshold))
        zp, relu, valid = (delay(v, f"{n}4") for v, n in
                           ((zp, "zp"), (relu, "relu"), (valid, "v")))

        # Stage 5: zero point and clamp.
        shifted = Signal(signed(34))
        m.d.comb += shifted.eq(scaled + zp)
        low = Signal(signed(9))
        m.d.comb += low.eq(Mux(relu, zp, -128))
        with m.If(shifted > 127):
            m.d.sync += self.result.eq(127)
        with m.Elif(shifted < low):
            m.d.sync += self.result.eq(low)
        with m.Else():
            m.d.sync += self.result.eq(shifted)
        m.d.sync += self.valid_out.eq(valid)
        return m
