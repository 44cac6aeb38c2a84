"""Which FPGA family a component is being elaborated for (``platform`` is ``None`` in
simulation): the few places that instance vendor primitives or pick a RAM style ask here."""

__all__ = ["is_ecp5", "is_ice40", "has_ice40_dsp"]

#: Parts of the SiliconBlue family that have SB_MAC16 blocks.
_ICE40_DSP_DEVICES = ("iCE40UP", "iCE5LP")


def is_ecp5(platform):
    """Whether ``platform`` is a Lattice ECP5 one (Amaranth's ``LatticePlatform`` also
    serves MachXO parts: its ``family`` tells)."""
    from amaranth.vendor import LatticePlatform
    return isinstance(platform, LatticePlatform) and platform.family == "ecp5"


def is_ice40(platform):
    """Whether ``platform`` is a Lattice iCE40 one."""
    from amaranth.vendor import SiliconBluePlatform
    return isinstance(platform, SiliconBluePlatform)


def has_ice40_dsp(platform):
    """Whether ``platform`` is an iCE40 part with SB_MAC16 blocks (iCE40UP, iCE5LP)."""
    return is_ice40(platform) and str(platform.device).startswith(_ICE40_DSP_DEVICES)
