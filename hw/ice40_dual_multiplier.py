"""Two signed int8 x int8 products in one iCE40 SB_MAC16 DSP."""
from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Mux, ResetSignal, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .parameters import check_choice
from .platforms import has_ice40_dsp

__all__ = ["Ice40DualMultiplier", "PRIMITIVES", "SIGNED_MODES", "SB_MAC16_PARAMETERS"]

#: ``"sb_mac16"`` instances the DSP by hand, ``"behavioural"`` writes ``a * b`` (simulation,
#: other FPGA families), ``"auto"`` picks ``"sb_mac16"`` on an iCE40 platform with DSPs.
PRIMITIVES = ("auto", "sb_mac16", "behavioural")

#: Who makes the SB_MAC16 products signed: ``"dsp"`` sets ``A_SIGNED``/``B_SIGNED``, which in
#: 8x8 mode sign-extend both bytes of each operand (Lattice's simulation model, mirrored by
#: yosys's ``cells_sim.v``): no logic at all. ``"lut"`` runs the DSP unsigned and corrects both
#: products in LUTs, exact whatever the silicon does with the sign of the low bytes.
SIGNED_MODES = ("dsp", "lut")

#: The SB_MAC16 configuration, encodings as in yosys's ``techlibs/ice40/cells_sim.v``: two
#: independent 8x8 multipliers (top ``A[15:8] * B[15:8]`` -> ``O[31:16]``, bottom
#: ``A[7:0] * B[7:0]`` -> ``O[15:0]``), each output taken straight from the register behind
#: its multiplier (``*OUTPUT_SELECT = 2``: the 8x8 product, registered by ``*_8x8_MULT_REG``).
#: Operands are not registered (``A_REG = B_REG = 0``) and the adders and accumulators are
#: unused, so the latency is exactly one clock. ``A_SIGNED``/``B_SIGNED`` follow the mode.
SB_MAC16_PARAMETERS = {
    "NEG_TRIGGER": 0, "C_REG": 0, "A_REG": 0, "B_REG": 0, "D_REG": 0,
    "TOP_8x8_MULT_REG": 1, "BOT_8x8_MULT_REG": 1,
    "PIPELINE_16x16_MULT_REG1": 0, "PIPELINE_16x16_MULT_REG2": 0,
    "TOPOUTPUT_SELECT": 2, "TOPADDSUB_LOWERINPUT": 0, "TOPADDSUB_UPPERINPUT": 0,
    "TOPADDSUB_CARRYSELECT": 0,
    "BOTOUTPUT_SELECT": 2, "BOTADDSUB_LOWERINPUT": 0, "BOTADDSUB_UPPERINPUT": 0,
    "BOTADDSUB_CARRYSELECT": 0,
    "MODE_8x8": 1,
}
_PARAMETER_WIDTHS = {"TOPOUTPUT_SELECT": 2, "TOPADDSUB_LOWERINPUT": 2,
                     "TOPADDSUB_CARRYSELECT": 2, "BOTOUTPUT_SELECT": 2,
                     "BOTADDSUB_LOWERINPUT": 2, "BOTADDSUB_CARRYSELECT": 2}



class Ice40DualMultiplier(wiring.Component):
    """Two independent products ``p0 = a0 * b0`` and ``p1 = a1 * b1`` in one SB_MAC16.

    Why
    ---
    The iCE40UP5K has 8 SB_MAC16 blocks and ``synth_ice40 -dsp`` maps one ``*`` to each (its
    16x16 mode), so a 4x4 int8 array (16 products) runs out of DSPs. In 8x8 mode one SB_MAC16
    holds two independent 8x8 multipliers; yosys never infers that mode, so this component
    instances it by hand: 16 products in 8 DSPs.

    Ports
    -----
    ``a0``, ``b0``, ``a1``, ``b1``: signed 8-bit operands. ``p0``, ``p1``: their signed 16-bit
    products, exact (an int8 x int8 product always fits; -128 * -128 = 16384), registered:
    ``p`` shows the product of the operands present at the previous clock edge, exactly like
    ``m.d.sync += p.eq(a * b)``. Both lanes have the same latency of one cycle, and every
    cycle takes new operands. A ``sync`` reset clears both products (in the DSP the reset
    clears the product registers asynchronously).

    Parameters
    ----------
    primitive : ``"auto"``, ``"sb_mac16"`` or ``"behavioural"``
        ``"auto"`` instances SB_MAC16 when elaborated for an iCE40 platform with DSPs
        (iCE40UP, iCE5LP) and writes ``a * b`` otherwise (simulation, other families).
        ``"sb_mac16"`` always instances it (for synthesis scripts that elaborate without a
        platform).
    signed_mode : ``"dsp"`` (default) or ``"lut"``
        ``"dsp"`` sets ``A_SIGNED = B_SIGNED = 1``: in 8x8 mode that sign-extends the low
        bytes as well as the high ones (in 16x16 mode only the high byte of an operand carries
        its sign), so both products are signed with no logic at all: 0 SB_LUT4. This is how
        yosys's ``cells_sim.v`` models SB_MAC16, checked there against Lattice's iCEcube2
        model (yosys PR #1212); it has not been checked on silicon here. ``"lut"`` runs the
        DSP unsigned (a mode whose meaning is not in doubt) and corrects both products:
        with unsigned bytes ``ua``, ``ub``, ``a * b = ua * ub - 256 * ((a < 0 ? ub : 0) +
        (b < 0 ? ua : 0))`` modulo 2**16, so only the high byte changes. Measured
        48 SB_LUT4, 14 SB_CARRY and 32 SB_DFFSR for both lanes (``synth_ice40 -dsp``).
    """

    a0: In(signed(8))
    b0: In(signed(8))
    a1: In(signed(8))
    b1: In(signed(8))
    p0: Out(signed(16))
    p1: Out(signed(16))

    def __init__(self, *, primitive="auto", signed_mode="dsp"):
        check_choice("primitive", primitive, PRIMITIVES)
        check_choice("signed_mode", signed_mode, SIGNED_MODES)
        self.primitive = primitive
        self.signed_mode = signed_mode
        super().__init__()

    def uses_sb_mac16(self, platform):
        """Whether elaboration for ``platform`` (``None`` in simulation) instances SB_MAC16."""
        if self.primitive != "auto":
            return self.primitive == "sb_mac16"
        return has_ice40_dsp(platform)

    def elaborate(self, platform):
        m = Module()
        lanes = ((self.a0, self.b0, self.p0), (self.a1, self.b1, self.p1))
        if not self.uses_sb_mac16(platform):
            for a, b, p in lanes:
                m.d.sync += p.eq(a * b)
            return m

        in_dsp = self.signed_mode == "dsp"
        out = Signal(32)
        m.submodules.dsp = Instance(
            "SB_MAC16",
            **{f"p_{name}": Const(value, _PARAMETER_WIDTHS.get(name, 1))
               for name, value in SB_MAC16_PARAMETERS.items()},
            p_A_SIGNED=Const(in_dsp, 1), p_B_SIGNED=Const(in_dsp, 1),
            i_CLK=ClockSignal("sync"), i_CE=Const(1, 1),
            i_A=Cat(self.a0, self.a1), i_B=Cat(self.b0, self.b1),
            i_C=Const(0, 16), i_D=Const(0, 16),
            i_AHOLD=0, i_BHOLD=0, i_CHOLD=0, i_DHOLD=0,
            i_IRSTTOP=ResetSignal("sync"), i_IRSTBOT=ResetSignal("sync"),
            i_ORSTTOP=0, i_ORSTBOT=0, i_OLOADTOP=0, i_OLOADBOT=0,
            i_ADDSUBTOP=0, i_ADDSUBBOT=0, i_OHOLDTOP=0, i_OHOLDBOT=0,
            i_CI=0, i_ACCUMCI=0, i_SIGNEXTIN=0,
            o_O=out, o_CO=Signal(), o_ACCUMCO=Signal(), o_SIGNEXTOUT=Signal())
        for (a, b, p), product in zip(lanes, (out[:16], out[16:]), strict=True):
            if in_dsp:
                m.d.comb += p.eq(product)
            else:
                m.d.comb += p.eq(_corrected(m, a, b, product))
        return m


def _corrected(m, a, b, product):
    """The signed product of ``a`` and ``b`` from the DSP's registered unsigned ``product``:
    its high byte minus ``a < 0 ? ub : 0`` minus ``b < 0 ? ua : 0`` (modulo 256). Both terms
    are registered beside the DSP's product register, so this lane keeps its one cycle of
    latency, and subtracted after it: 24 SB_LUT4, 7 SB_CARRY and 16 SB_DFFSR per lane
    (registering the terms' 8-bit sum instead measured 38 SB_LUT4 per lane)."""
    terms = []
    for sign, other in ((a[7], b), (b[7], a)):
        term = Signal(8)
        m.d.sync += term.eq(Mux(sign, other.as_unsigned(), 0))
        terms.append(term)
    return Cat(product[:8], (product[8:] - terms[0] - terms[1])[:8]).as_signed()
