"""hw/platforms.py: which family a board platform is (the vendor primitives depend on it)."""
from amaranth_boards.icebreaker import ICEBreakerPlatform
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from hw.platforms import has_ice40_dsp, is_ecp5, is_ice40


def test_the_board_platforms_are_told_apart():
    ecp5, ice40 = ULX3S_85F_Platform(), ICEBreakerPlatform()
    assert is_ecp5(ecp5) and not is_ice40(ecp5) and not has_ice40_dsp(ecp5)
    assert is_ice40(ice40) and has_ice40_dsp(ice40) and not is_ecp5(ice40)
    assert not any(check(None) for check in (is_ecp5, is_ice40, has_ice40_dsp))
