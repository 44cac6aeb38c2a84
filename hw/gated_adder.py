"""``a + (b if keep else 0)``, with the gate inside an ECP5 carry chain's look-up tables."""
from amaranth.hdl import Cat, Const, Instance, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .platforms import is_ecp5

__all__ = ["GatedAdder", "CCU2C_GATED_INIT"]

#: The LUT4 of each CCU2C half, inputs ``A`` = a bit of ``a``, ``B`` = the bit of ``b``,
#: ``C`` = ``keep``, ``D`` unused: the propagate ``A ^ (B & C)`` (``0x6A`` for ``D = 0`` and
#: again for ``D = 1``). The half's generate is the LUT2 of ``INIT[3:0]`` over ``A``, ``B``
#: (``0xA``: ``A``), which is right whenever the propagate is 0: then ``A == B & C``, and the
#: carry out of two equal bits is either of them.
CCU2C_GATED_INIT = 0x6A6A


class GatedAdder(wiring.Component):
    """``sum = (a + (b if keep else 0)) mod 2**width``, combinational.

    Why
    ---
    A PE's accumulation loop is ``acc <= product + (0 if first else acc)``. yosys maps the
    adder onto CCU2C carry cells whose look-up tables compute only ``a ^ b``, so the gate in
    front of it is a LUT per bit in another slice: in a 16x16 ECP5-85F build that route, in a
    congested region, was 4.8 ns of the 9.6 ns critical path. Each CCU2C half has a LUT4 with
    two inputs spare, so the gate fits inside it (:data:`CCU2C_GATED_INIT`) and the loop is
    ``acc`` -> its own slice's carry chain -> ``acc``.

    Elaborated for an ECP5 platform, the chain is hand-instanced CCU2C cells (as yosys's
    ``arith_map_ccu2c.v`` builds an adder, carry in 0, two bits a cell); elsewhere (simulation,
    other families) it is the same expression in Amaranth.

    Parameters
    ----------
    width : int
        Bits of ``a``, ``b`` and ``sum`` (two's complement: the sum wraps).

    Attributes
    ----------
    a, b : In(signed(width))
    keep : In(1)
        0 adds nothing of ``b``.
    sum : Out(signed(width))
    """

    def __init__(self, width):
        if not isinstance(width, int) or isinstance(width, bool) or width < 1:
            raise ValueError(f"width must be a positive integer, not {width!r}")
        self.width = width
        super().__init__({"a": In(signed(width)), "b": In(signed(width)), "keep": In(1),
                          "sum": Out(signed(width))})

    def elaborate(self, platform):
        m = Module()
        if not is_ecp5(platform):
            m.d.comb += self.sum.eq(self.a + Mux(self.keep, self.b, 0))
            return m
        carry = Const(0, 1)
        bits = []
        for low in range(0, self.width, 2):
            pair = range(low, min(low + 2, self.width))
            halves, outputs = {}, []
            for half in range(2):
                if half < len(pair):
                    a, b, keep = self.a[pair[half]], self.b[pair[half]], self.keep
                else:                       # the odd top bit's cell: its upper half idles
                    a = b = keep = Const(0, 1)
                halves.update({f"i_A{half}": a, f"i_B{half}": b, f"i_C{half}": keep,
                               f"i_D{half}": Const(1, 1)})
                outputs.append(Signal(name=f"sum_{low + half}"))
            carry_out = Signal(name=f"carry_{low}")
            m.submodules[f"ccu2c_{low}"] = Instance(
                "CCU2C", p_INIT0=Const(CCU2C_GATED_INIT, 16), p_INIT1=Const(CCU2C_GATED_INIT, 16),
                p_INJECT1_0="NO", p_INJECT1_1="NO", i_CIN=carry, **halves,
                o_S0=outputs[0], o_S1=outputs[1], o_COUT=carry_out)
            bits += outputs[:len(pair)]
            carry = carry_out
        m.d.comb += self.sum.eq(Cat(*bits))
        return m
