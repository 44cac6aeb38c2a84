"""The board design (fpga/board_top.py: accelerator + host RAM + bridge + UART) in Amaranth's
simulator, driven at its UART pins by the serial backend: a check of the design itself,
before Verilog generation. ``tb/test_board_system.py`` runs GEMMs and frame faults on the same
design in Verilator, where it is fast enough for whole jobs."""
import pytest

from fpga.board_top import LoomSystem, SystemConfig
from hw.csr_map import ID_MAGIC, register
from sw.backends.serial import SerialTransport
from sw.config import read_config
from tb.bridge_model import UartPinPort

CONFIG = SystemConfig(rows=4, cols=4, data_width=64, depth=16, ram_size=4096,
                      clock_hz=1_000_000, baud=250_000, max_words=8, byte_timeout_s=0.002)


def test_the_serial_backend_reaches_registers_and_memory_over_the_uart_pins(rng):
    system = LoomSystem(CONFIG)
    port = UartPinPort(system, CONFIG.divisor)
    leds = []

    async def monitor(ctx):
        while True:
            leds.append(ctx.get(system.leds))
            await ctx.tick()

    port.sim.add_testbench(monitor, background=True)
    t = SerialTransport(port_object=port, quiet_time=0)
    assert (t.memory_size, t.clock_hz, t.max_words) == (4096, 1e6, 8)
    assert t.read_word(register("ID").offset) == ID_MAGIC
    config = read_config(t.read_word)
    assert (config.rows, config.cols) == (4, 4)
    data = rng.bytes(40)
    t.write_memory(100, data)
    assert t.read_memory(100, 40) == data
    # The LEDs show an idle accelerator without error (STATUS polled by the bridge).
    assert len(leds) > 2048
    assert leds[-1] == 0b001


def test_bitstream_config_overrides_parse_and_reject_bad_fields():
    import pytest

    from fpga.bitstream import parse_overrides
    assert parse_overrides(["rows=16", "datapaths=int8+fp16", "requantizer=serial",
                            "byte_timeout_s=0.1"]) == {
        "rows": 16, "datapaths": ("int8", "fp16"), "requantizer": "serial",
        "byte_timeout_s": 0.1}
    with pytest.raises(ValueError, match="rows takes int values"):
        parse_overrides(["rows=16.5"])
    with pytest.raises(ValueError, match="FIELD one of"):
        parse_overrides(["bogus=1"])


def test_a_design_too_large_for_the_part_is_named_from_nextpnrs_log():
    """The lines of nextpnr's utilisation table whose use exceeds the part, and no others
    (the form nextpnr 0.7 prints: name, used/ available, percent)."""
    from fpga.bitstream import overfull
    log = "\n".join(["Info: Device utilisation:",
                     "Info: \t         ICESTORM_LC:   11634/   5280   220%",
                     "Info: \t        ICESTORM_RAM:      34/     30   113%",
                     "Info: \t               SB_IO:       5/     39    12%",
                     "Info: \t        ICESTORM_DSP:       8/      8   100%"])
    assert overfull(log) == [("ICESTORM_LC", 11634, 5280), ("ICESTORM_RAM", 34, 30)]
    assert overfull("Info: Program finished normally.") == []


def test_margin_constraints_ask_nextpnr_for_every_clock_over_ninety_percent():
    """``constrain_margin``: the board oscillator's constraint (from which nextpnr derives
    the PLL outputs) and any net's are divided by 0.9, in an ECP5 .lpf (Hz) and an iCE40
    .pcf (MHz); other files are left alone; nothing to scale is an error."""
    from fpga.bitstream import MARGIN, scale_clock_constraints
    files = {"loom.lpf": 'BLOCK ASYNCPATHS;\nFREQUENCY PORT "clk25_0__io" 25000000.0 HZ;\n'
                         'FREQUENCY NET "pll.clkos" 100000000.0 HZ;\n',
             "loom.pcf": "set_io clk12_0__io 35\nset_frequency clk12_0__io 12.0\n",
             "loom.il": "FREQUENCY PORT 1.0"}
    scale_clock_constraints(files, 1 / MARGIN)
    lpf = [float(line.split()[3]) for line in files["loom.lpf"].splitlines()[1:]]
    assert lpf == pytest.approx([25e6 / 0.9, 100e6 / 0.9])
    assert files["loom.lpf"].startswith("BLOCK ASYNCPATHS;\n")
    assert float(files["loom.pcf"].split()[-1]) == pytest.approx(12 / 0.9)
    assert files["loom.il"] == "FREQUENCY PORT 1.0"
    with pytest.raises(ValueError, match="no clock constraint"):
        scale_clock_constraints({"loom.il": ""}, 2)


def test_a_margin_build_plan_constrains_the_board_clock_over_ninety_percent():
    from fpga.bitstream import BOARDS, build_plan
    board = BOARDS["icebreaker"]
    plain, scaled = (build_plan(board, margin=margin).files["loom.pcf"]
                     for margin in (False, True))
    frequency = {text: float(text.split("set_frequency clk12_0__io ")[1].split()[0])
                 for text in (plain, scaled)}
    assert frequency[plain] == 12.0 and frequency[scaled] == pytest.approx(12 / 0.9)


@pytest.mark.parametrize("f_out, f_array", [(55e6, 110e6), (50e6, 125e6), (50e6, 100e6),
                                             (40e6, 133e6)])
def test_ecp5_pll_second_output_shares_the_vco(f_out, f_array):
    """CLKOS for the array's clock: the system clock is what it is without it, both
    outputs divide one VCO in 400-800 MHz, and the array's is the closest such divisor."""
    from fpga.pll import ecp5_pll

    alone = ecp5_pll(25e6, f_out)
    pair = ecp5_pll(25e6, f_out, f_array)
    p = pair.params
    assert pair.f_out == alone.f_out
    vco = pair.f_out * p["CLKOP_DIV"]
    assert 400e6 <= vco <= 800e6
    assert p["f_secondary"] == vco / p["CLKOS_DIV"]
    best = min(abs(vco / d - f_array) for d in range(1, 129))
    assert abs(p["f_secondary"] - f_array) <= best + 1e-6


def test_a_separate_array_clock_is_refused_on_ice40():
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    from fpga.board_top import BoardTop

    top = BoardTop(SystemConfig(array_clock_hz=48_000_000), leds=())
    with pytest.raises(ValueError, match="ECP5 boards only"):
        top.pll_config(ICEBreakerPlatform())


def test_every_board_clock_is_at_most_90_percent_of_its_measured_fmax():
    """Issue 6's margin: nextpnr can be optimistic near the edge, so a board's design clock
    stays at or below 90 % of the Fmax its build measured."""
    from fpga.bitstream import BOARDS

    measured = {name: b for name, b in BOARDS.items() if b.measured_fmax_mhz}
    assert measured, "no board records the Fmax its clock was chosen from"
    for name, board in measured.items():
        assert board.config.clock_hz <= 0.9 * board.measured_fmax_mhz * 1e6, name
    # the others ask nextpnr for the margin itself, so their build fails without it
    unmeasured = set(BOARDS) - set(measured)
    assert all(BOARDS[name].constrain_margin for name in unmeasured), unmeasured
