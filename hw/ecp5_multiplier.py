"""A signed int8 x int8 product registered inside an ECP5 MULT18X18D."""
from amaranth.hdl import ClockSignal, Const, Instance, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .parameters import check_choice
from .platforms import is_ecp5

__all__ = ["Ecp5Multiplier", "PRIMITIVES", "MULT18X18D_PARAMETERS", "INPUT_REGISTERS"]

#: ``"mult18x18d"`` instances the DSP by hand, ``"behavioural"`` writes ``a * b`` into a
#: register (simulation, other FPGA families), ``"auto"`` picks ``"mult18x18d"`` when
#: elaborated for an ECP5 platform.
PRIMITIVES = ("auto", "mult18x18d", "behavioural")

#: The MULT18X18D configuration: operands straight in (``REG_INPUTA/B_CLK = NONE``), no
#: pipeline register, the product registered by the DSP's output register on ``CLK0``
#: (``CE0`` tied high, ``RST0`` tied low), no global set/reset. Latency: one clock.
MULT18X18D_PARAMETERS = {
    "REG_INPUTA_CLK": "NONE", "REG_INPUTB_CLK": "NONE", "REG_INPUTC_CLK": "NONE",
    "REG_PIPELINE_CLK": "NONE",
    "REG_OUTPUT_CLK": "CLK0", "REG_OUTPUT_CE": "CE0", "REG_OUTPUT_RST": "RST0",
    "GSR": "DISABLED", "RESETMODE": "SYNC", "MULT_BYPASS": "DISABLED",
    "SOURCEB_MODE": "B_SHIFT", "CAS_MATCH_REG": "FALSE",
}

#: With ``input_registers``: the A and B operands registered in the DSP too, on the same
#: ``CLK0``/``CE0``/``RST0`` as the output. Latency: two clocks.
INPUT_REGISTERS = {
    "REG_INPUTA_CLK": "CLK0", "REG_INPUTA_CE": "CE0", "REG_INPUTA_RST": "RST0",
    "REG_INPUTB_CLK": "CLK0", "REG_INPUTB_CE": "CE0", "REG_INPUTB_RST": "RST0",
}


class Ecp5Multiplier(wiring.Component):
    """``p = a * b`` one clock later, the register being the MULT18X18D's own.

    Why
    ---
    yosys maps ``a * b`` to a MULT18X18D with every register disabled and keeps the product
    register in the fabric, so each product is a path from a fabric flip-flop through the
    DSP to another fabric flip-flop. The DSPs sit in a few rows of the die, and in an 8x8
    ECP5-85F build with its array at 110 MHz that path ran 17.5 ns (13 ns of it routing:
    operand register to a DSP 77 columns away and back), the array clock's critical path.
    With the output register inside the DSP the paths end and start at the DSP. The
    latency is unchanged (one clock), so nothing else in the array moves.

    Ports
    -----
    ``a``, ``b``: signed 8-bit operands. ``p``: their signed 16-bit product (exact: an int8 x
    int8 product always fits), showing the product of the operands present at the previous
    clock edge (:attr:`latency` 1), or with ``input_registers`` the one before (latency 2).
    The registers have no reset (the processing element only uses the product of
    a valid beat, whose qualifiers do reset).

    Only ``P[15:0]`` is used, and the operands are sign-extended to 18 bits: the low 16
    bits of the product of the two 18-bit operands are ``a * b mod 2**16`` whether the DSP
    treats them as signed or not, so the product does not depend on how ``SIGNEDA`` and
    ``SIGNEDB`` are interpreted (they are set, for a product that is right in all 36 bits).

    Parameters
    ----------
    primitive : ``"auto"``, ``"mult18x18d"`` or ``"behavioural"``
        ``"auto"`` instances MULT18X18D when elaborated for an ECP5 platform and writes
        ``a * b`` otherwise (simulation; on iCE40 yosys's ``ice40_dsp`` puts the register
        into the SB_MAC16 itself). ``"mult18x18d"`` always instances it (synthesis scripts
        that elaborate without a platform).
    input_registers : bool
        ``False`` (default): one clock, the output register. ``True``: the operands are
        registered first, in the MULT18X18D's own input registers
        (:data:`INPUT_REGISTERS`; behaviourally, two fabric registers before the product
        register): two clocks, so a product pipelined over two registers costs no fabric
        flip-flops on the ECP5 (a processing element's ``product_stages=2``).
    """

    a: In(signed(8))
    b: In(signed(8))
    p: Out(signed(16))

    def __init__(self, *, primitive="auto", input_registers=False):
        check_choice("primitive", primitive, PRIMITIVES)
        if not isinstance(input_registers, bool):
            raise TypeError(f"input_registers must be True or False, not {input_registers!r}")
        self.primitive = primitive
        self.input_registers = input_registers
        #: clocks from the operands to their product on ``p``
        self.latency = 2 if input_registers else 1
        super().__init__()

    def uses_mult18x18d(self, platform):
        """Whether elaboration for ``platform`` (``None`` in simulation) instances it."""
        if self.primitive != "auto":
            return self.primitive == "mult18x18d"
        return is_ecp5(platform)

    def elaborate(self, platform):
        m = Module()
        if not self.uses_mult18x18d(platform):
            a, b = self.a, self.b
            if self.input_registers:
                a, b = Signal.like(a, reset_less=True), Signal.like(b, reset_less=True)
                m.d.sync += [a.eq(self.a), b.eq(self.b)]
            product = Signal(signed(16), reset_less=True)
            m.d.sync += product.eq(a * b)
            m.d.comb += self.p.eq(product)
            return m
        out = Signal(36)
        m.d.comb += self.p.eq(out[:16])
        # sign extension by wiring the sign bit to the high inputs
        ports = {f"i_A{n}": self.a[min(n, 7)] for n in range(18)}
        ports |= {f"i_B{n}": self.b[min(n, 7)] for n in range(18)}
        ports |= {f"i_C{n}": Const(0, 1) for n in range(18)}
        ports |= {f"o_P{n}": out[n] for n in range(36)}
        parameters = MULT18X18D_PARAMETERS | (INPUT_REGISTERS if self.input_registers else {})
        m.submodules.dsp = Instance(
            "MULT18X18D",
            **{f"p_{name}": value for name, value in parameters.items()},
            i_SIGNEDA=Const(1, 1), i_SIGNEDB=Const(1, 1),
            i_SOURCEA=Const(0, 1), i_SOURCEB=Const(0, 1),
            # only CLK0/CE0/RST0 are used; nextpnr cannot route constants to the others
            i_CLK0=ClockSignal("sync"), i_CE0=Const(1, 1), i_RST0=Const(0, 1),
            **ports)
        return m
