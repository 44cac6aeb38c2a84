"""PLLs from a board oscillator to the design clock: iCE40 SB_PLL40_PAD, ECP5 EHXPLLL.

:func:`ice40_pll` and :func:`ecp5_pll` search the divider settings (as ``icepll`` and
``ecppll`` do) and return the exact output frequency the hardware will make; :class:`Pll`
instances the primitive, drives the ``sync`` domain from it and holds that domain in reset
until the PLL locks.
"""
from dataclasses import dataclass

from amaranth.hdl import (
    ClockDomain,
    ClockSignal,
    Const,
    Elaboratable,
    Instance,
    Module,
    ResetSignal,
    Signal,
)
from amaranth.lib.cdc import AsyncFFSynchronizer, ResetSynchronizer

__all__ = ["PllConfig", "ice40_pll", "ecp5_pll", "Pll"]


@dataclass(frozen=True)
class PllConfig:
    family: str
    f_in: float
    f_out: float
    params: dict


def ice40_pll(f_in, f_out):
    """Closest SB_PLL40 settings for ``f_out`` Hz from ``f_in`` Hz (iCE40 LP/HX/UP limits:
    PFD 10-133 MHz, VCO 533-1066 MHz, output 16-275 MHz)."""
    if not 16e6 <= f_out <= 275e6:
        raise ValueError(f"iCE40 PLL output must be 16-275 MHz, not {f_out / 1e6} MHz")
    best = None
    for divr in range(16):
        pfd = f_in / (divr + 1)
        if not 10e6 <= pfd <= 133e6:
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not 533e6 <= vco <= 1066e6:
                continue
            for divq in range(1, 7):
                out = vco / 2 ** divq
                if best is None or abs(out - f_out) < abs(best[0] - f_out):
                    best = (out, divr, divf, divq, pfd)
    out, divr, divf, divq, pfd = best
    filter_range = next(i for i, limit in enumerate((17e6, 26e6, 44e6, 66e6, 101e6, 1e12),
                                                     start=1) if pfd < limit)
    return PllConfig("ice40", f_in, out, {"DIVR": divr, "DIVF": divf, "DIVQ": divq,
                                          "FILTER_RANGE": filter_range})


def ecp5_pll(f_in, f_out, f_secondary=None):
    """Closest EHXPLLL settings (CLKOP fed back) for ``f_out`` Hz from ``f_in`` Hz (PFD
    3.125-400 MHz, VCO 400-800 MHz, output 3.125-400 MHz); with ``f_secondary``, a second
    output CLKOS from the same VCO (its frequency in ``params["f_secondary"]``), the pair
    chosen for the smallest error of ``f_out`` first, then of ``f_secondary``."""
    for f in (f_out, f_secondary or f_out):
        if not 3.125e6 <= f <= 400e6:
            raise ValueError(f"ECP5 PLL outputs must be 3.125-400 MHz, not {f / 1e6} MHz")
    best = None
    for clki_div in range(1, 129):
        pfd = f_in / clki_div
        if not 3.125e6 <= pfd <= 400e6:
            continue
        for clkfb_div in range(1, 81):
            out = pfd * clkfb_div
            for clkop_div in range(1, 129):
                vco = out * clkop_div
                if vco > 800e6:
                    break
                if vco < 400e6:
                    continue
                clkos_div = max(1, min(128, round(vco / f_secondary))) if f_secondary else 1
                error = (abs(out - f_out), abs(vco / clkos_div - f_secondary)
                         if f_secondary else 0)
                if best is None or error < best[0]:
                    best = (error, out, clki_div, clkfb_div, clkop_div, clkos_div, vco)
                if not f_secondary:
                    break
    _, out, clki_div, clkfb_div, clkop_div, clkos_div, vco = best
    params = {"CLKI_DIV": clki_div, "CLKFB_DIV": clkfb_div, "CLKOP_DIV": clkop_div,
              "CLKOP_CPHASE": clkop_div - 1}
    if f_secondary:
        params.update(CLKOS_DIV=clkos_div, CLKOS_CPHASE=clkos_div - 1,
                      f_secondary=vco / clkos_div)
    return PllConfig("ecp5", f_in, out, params)


class Pll(Elaboratable):
    """Drives the ``sync`` domain at ``config.f_out`` from the board clock; ``sync`` stays in
    reset until the PLL reports lock (and for two cycles after). An ECP5 configuration with
    a second output (``ecp5_pll(..., f_secondary=...)``) drives the ``array`` domain from
    CLKOS as well, reset the same way, its reset on a global network (a ``DCCA``).

    On ECP5 ``clk_in`` is the input clock signal; on iCE40 it is the clock pin's raw ``io``
    port (``platform.request(..., dir="-").io``): the UP5K's PLL sits at the clock pad
    and takes it through SB_PLL40_PAD.
    """

    def __init__(self, config, clk_in):
        self.config, self.clk_in = config, clk_in
        self.locked = Signal()

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        p, clk_out = self.config.params, Signal()
        m.d.comb += ClockSignal("sync").eq(clk_out)
        if self.config.family == "ice40":
            m.submodules.pll = Instance(
                "SB_PLL40_PAD",
                p_FEEDBACK_PATH="SIMPLE", p_PLLOUT_SELECT="GENCLK",
                p_DIVR=p["DIVR"], p_DIVF=p["DIVF"], p_DIVQ=p["DIVQ"],
                p_FILTER_RANGE=p["FILTER_RANGE"],
                i_PACKAGEPIN=self.clk_in, i_RESETB=1, i_BYPASS=0,
                o_PLLOUTGLOBAL=clk_out, o_LOCK=self.locked)
        else:
            secondary = "f_secondary" in p
            clkos = Signal()
            extra = {}
            if secondary:
                m.domains.array = ClockDomain("array")
                m.d.comb += ClockSignal("array").eq(clkos)
                extra = dict(a_FREQUENCY_PIN_CLKOS=f"{p['f_secondary'] / 1e6:.6f}",
                             p_CLKOS_ENABLE="ENABLED", p_CLKOS_DIV=p["CLKOS_DIV"],
                             p_CLKOS_CPHASE=p["CLKOS_CPHASE"], p_CLKOS_FPHASE=0,
                             p_OUTDIVIDER_MUXB="DIVB", i_ENCLKOS=0, o_CLKOS=clkos)
            m.submodules.pll = Instance(
                "EHXPLLL", **extra,
                a_FREQUENCY_PIN_CLKI=f"{self.config.f_in / 1e6:.6f}",
                a_FREQUENCY_PIN_CLKOP=f"{self.config.f_out / 1e6:.6f}",
                a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
                a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA",
                p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=p["CLKOP_DIV"],
                p_CLKOP_CPHASE=p["CLKOP_CPHASE"], p_CLKOP_FPHASE=0,
                p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=p["CLKFB_DIV"], p_CLKI_DIV=p["CLKI_DIV"],
                i_CLKI=self.clk_in, i_CLKFB=clk_out, i_RST=0, i_STDBY=0,
                i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1,
                i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0,
                o_CLKOP=clk_out, o_LOCK=self.locked)
        m.submodules.reset = ResetSynchronizer(~self.locked, domain="sync")
        if "f_secondary" in p:
            # The array domain's reset reaches ~3,200 synchronous resets spread over the die
            # (every PE's beat qualifiers and drain flags): in fabric routing one net from a
            # flip-flop to a PE 80 tiles away was 10.4 ns, the array clock's critical path
            # of a 16x16 ECP5-85F build. Through a DCCA it takes a global network instead
            # (as the clocks do), which reaches the slices' LSR inputs without fabric routing.
            # nextpnr times the global as 0 ns, so the real path is longer by the network's
            # insertion delay.
            array_reset = Signal()
            m.submodules.array_reset = AsyncFFSynchronizer(~self.locked, array_reset,
                                                           o_domain="array")
            m.submodules.array_reset_buffer = Instance(
                "DCCA", i_CLKI=array_reset, i_CE=Const(1, 1), o_CLKO=ResetSignal("array"))
        if platform is not None:
            platform.add_clock_constraint(clk_out, self.config.f_out)
            if "f_secondary" in p:
                platform.add_clock_constraint(clkos, p["f_secondary"])
        return m
