"""``make bitstream BOARD=...``: build a board's bitstream and its resource/timing report.

Usage: ``python -m fpga.bitstream BOARD [--measure] [--seed N] [--clock-mhz F]
[--set FIELD=VALUE ...] [--tag NAME] [--router router1|router2]``

``--set`` overrides fields of the board's :class:`~fpga.board_top.SystemConfig` (e.g.
``--set rows=16 --set requantizer=serial``) to explore configurations; ``--tag`` builds
into ``build/fpga/<board>-<tag>/`` so such runs keep the board's own products.

Each board row fixes the accelerator configuration and the design clock. The clock was
chosen from a measured run (``--measure`` places and routes with ``--timing-allow-fail``
and prints nextpnr's Fmax) and set at no more than 90 % of that Fmax. A real build fails
when nextpnr misses the clock. Products go to ``build/fpga/<board>/``: ``loom.bin`` /
``loom.bit``, nextpnr's ``loom.tim`` log and ``report.json``, and ``report.md``.
Tools: the YoWASP ones (``fpga/yowasp.py``).
"""
import argparse
import json
import re
import sys
import traceback
from dataclasses import dataclass, field, replace
from dataclasses import fields as dataclass_fields

from amaranth_boards.icebreaker import ICEBreakerPlatform
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from fpga.board_top import BoardTop, SystemConfig
from fpga.no_rw_check import apply_no_rw_check
from fpga.yowasp import setup_yowasp
from sim.toolchain import BUILD_DIR

__all__ = ["Board", "BOARDS", "build", "main"]

@dataclass(frozen=True)
class Board:
    platform: type
    config: SystemConfig
    leds: tuple
    #: What the part has, for the report (nextpnr's names -> ours).
    resources: dict = field(default_factory=dict)
    synth_opts: str = ""
    measured_fmax_mhz: float | None = None   # the run the clock was chosen from
    #: nextpnr's placement seed of that run: with the same netlist (no source paths in it)
    #: and tools, a build places and routes exactly as the one measured
    seed: int = 1
    #: True: nextpnr is asked for every clock divided by :data:`MARGIN`, so a build that
    #: meets timing has issue 6's margin by itself (and the placer works towards it);
    #: False: the design clocks, the margin checked against a measured run
    constrain_margin: bool = False
    #: nextpnr's router, when not its default (``router1``)
    router: str | None = None
    #: more nextpnr options (placer weights and such), appended to the command line
    nextpnr_opts: str = ""


#: What an ECP5 part has, for the report (nextpnr's names -> ours).
ECP5_RESOURCES = {"TRELLIS_COMB": "LUT4", "TRELLIS_FF": "FF", "DP16KD": "EBR (18 kbit)",
                  "MULT18X18D": "MULT18X18D", "EHXPLLL": "PLL"}
#: The ULX3S LEDs for (idle, busy, error).
ULX3S_LEDS = (("led", 0), ("led", 1), ("led", 2))


BOARDS = {
    "icebreaker": Board(
        ICEBreakerPlatform,
        # a 32-bit memory bus: one A or B word (four int8) a beat; the serial link, not the
        # bus, limits a board driven over the UART
        SystemConfig(rows=4, cols=4, datapaths=("int8",), data_width=32, depth=128,
                     ram_size=128 * 1024, ram_primitive="spram", clock_hz=30_000_000,
                     baud=115_200, requantizer="shared", counter_width=32,
                     paired_multipliers=True, span_multiplier="serial", addr_width=17,
                     slots=1, result_storage="shared_port", operand_registers=False,
                     clear_after_last=True, aligned_drain=True, broadcast_operands=True),
        leds=(("led_g", 0), ("led_g", 1), ("led_r", 0)),
        resources={"ICESTORM_LC": "LUT4+FF", "ICESTORM_RAM": "EBR (4 kbit)",
                   "ICESTORM_SPRAM": "SPRAM (256 kbit)", "ICESTORM_DSP": "SB_MAC16",
                   "SB_GB": "global buffers", "ICESTORM_PLL": "PLL"},
        synth_opts="-dsp",
        # 30 MHz (PLL 12 MHz x 80 / 32): the build at 30 MHz achieved 34.51 MHz with
        # placement seed 3, so the clock is 86.9 % of it (issue 6's margin: at most 90 %).
        # Seeds 1, 2 and 4 achieved 32.31, 33.48 and 33.77 MHz (91.6 % of the logic cells;
        # docs/fpga.md, "The UP5K's clock").
        measured_fmax_mhz=34.51,
        seed=3,
    ),
    "ulx3s-85f": Board(
        ULX3S_85F_Platform,
        SystemConfig(rows=8, cols=8, datapaths=("int8",), data_width=64, depth=512,
                     ram_size=64 * 1024, ram_primitive="memory", clock_hz=55_000_000,
                     baud=115_200),
        leds=ULX3S_LEDS,
        # 55 MHz (25 MHz x 11 / 5): the build at 55 MHz achieved 64.84 MHz (hardware of
        # 2026-11-30 evening, the PEs' first gate in the carry cells; 66.4 and 62.1 before),
        # so the clock is 84.8 % of it (docs/fpga.md)
        measured_fmax_mhz=64.84,
        resources=ECP5_RESOURCES,
    ),
    # 16x16 int8 on the ULX3S-85F, issue 6's target: the array on a clock of its own at
    # 100 MHz, the rest at 50 MHz. 154 PE products in MULT18X18D, 102 in LUTs (two of the
    # 156 DSPs idle), bit-serial requantisers (their DSPs to the array), each product over
    # three registers. Every clock constrained at / 0.9 (111.1 and 55.6 MHz): the build at
    # seed 2 with these placer and router options achieved 112.89 and 66.85 MHz
    # (docs/fpga.md, "The 16x16 compute path").
    "ulx3s-85f-16x16": Board(
        ULX3S_85F_Platform,
        SystemConfig(rows=16, cols=16, datapaths=("int8",), data_width=128, depth=512,
                     ram_size=64 * 1024, ram_primitive="memory", clock_hz=50_000_000,
                     baud=115_200, requantizer="serial", lut_multipliers=102,
                     span_multiplier="lut", array_clock_hz=100_000_000, product_stages=3),
        leds=ULX3S_LEDS,
        resources=ECP5_RESOURCES,
        seed=2, router="router2", constrain_margin=True,
        nextpnr_opts="--placer-heap-timingweight 25 --tmg-ripup",
    ),
    # fp16 on the ULX3S: a dual 4x4 (an fp16 PE is ~1,200 LUT4) whose binary32 adders and
    # fp16 multipliers are pipelined for the board clock (fp16 beats one every 3 cycles).
    # 50 MHz (25 MHz x 2): the build at 50 MHz achieved 57.68 MHz (hardware of 2026-11-30
    # evening; 56.5 at 55 MHz before), so 50 is 86.7 % of it
    "ulx3s-85f-fp16": Board(
        ULX3S_85F_Platform,
        SystemConfig(rows=4, cols=4, datapaths=("int8", "fp16"), data_width=64, depth=512,
                     ram_size=64 * 1024, ram_primitive="memory", clock_hz=50_000_000,
                     baud=115_200, fp32_adder_stages=3),
        leds=ULX3S_LEDS,
        measured_fmax_mhz=57.68,
        resources=ECP5_RESOURCES,
    ),
}


#: Issue 6's rule: a design clock at most 90 % of the Fmax nextpnr achieves.
MARGIN = 0.9

#: clock constraints in the files Amaranth writes for nextpnr: an ECP5 ``.lpf`` (Hz) and an
#: iCE40 ``.pcf`` (MHz); the number is the second group
_CONSTRAINTS = {".lpf": re.compile(r'^(FREQUENCY (?:PORT|NET) "[^"]+" )([0-9.]+)( HZ;)$', re.M),
                ".pcf": re.compile(r"^(set_frequency \S+ )([0-9.]+)()$", re.M)}


def scale_clock_constraints(files, factor):
    """Multiply every clock constraint of a build plan's ``files`` (name -> text, changed in
    place) by ``factor``. nextpnr derives a PLL's output clocks from its input's constraint,
    so the PLL outputs scale with it. Raises :class:`ValueError` when no file has one."""
    scaled = 0
    for name, text in files.items():
        for suffix, pattern in _CONSTRAINTS.items():
            if name.endswith(suffix):
                files[name], count = pattern.subn(
                    lambda found: f"{found[1]}{float(found[2]) * factor!r}{found[3]}", text)
                scaled += count
    if not scaled:
        raise ValueError(f"no clock constraint to scale in {sorted(files)}")


def _report(board_name, board, clock_hz, out, seed, margin=False):
    report = json.loads((out / "report.json").read_text())
    used = report.get("utilization", {})
    lines = [f"# {board_name}: Loom {board.config.rows}x{board.config.cols} "
             f"{'+'.join(board.config.datapaths)}, {board.config.data_width}-bit bus, "
             f"depth {board.config.depth}", "",
             "| resource | used | available | % |", "|---|---|---|---|"]
    for name, label in board.resources.items():
        if name in used:
            u, a = used[name]["used"], used[name]["available"]
            lines.append(f"| {label} (`{name}`) | {u} | {a} | {100 * u / max(a, 1):.1f} |")
    # with ``margin`` nextpnr's constraint is the design clock / MARGIN
    scale = MARGIN if margin else 1.0
    lines += ["", "| clock | achieved Fmax (MHz) | constraint (MHz) | design clock (MHz) | "
              "design clock / achieved |", "|---|---|---|---|---|"]
    fmax = report.get("fmax", {})
    worst = None
    for clock, values in fmax.items():
        achieved, constraint = values["achieved"], values["constraint"]
        worst = achieved if worst is None else min(worst, achieved)
        lines.append(f"| `{clock}` | {achieved:.1f} | {constraint:.1f} | "
                     f"{constraint * scale:.1f} | {constraint * scale / achieved:.3f} |")
    lines.append("")
    lines.append(f"system clock {clock_hz / 1e6:.3f} MHz; 90 % of the slowest clock's achieved "
                 f"Fmax would be {0.9 * worst:.1f} MHz" if worst else "no clock reported")
    if margin:
        lines.append(f"(every clock constrained at its design clock / {MARGIN}: timing met is "
                     "the margin met)")
    lines.append(f"(nextpnr placement seed {seed})")
    text = "\n".join(lines) + "\n"
    (out / "report.md").write_text(text)
    return text, worst


#: one line of nextpnr's "Device utilisation" table: name, used, available
_UTILISATION = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", flags=re.M)


def overfull(log_text):
    """``[(resource, used, available)]`` for the resources nextpnr's log reports as used
    beyond what the part has (nothing when its utilisation table is missing)."""
    return [(name, int(used), int(available))
            for name, used, available in _UTILISATION.findall(log_text)
            if int(used) > int(available)]


def parse_overrides(pairs):
    """``["rows=16", "requantizer=serial", "datapaths=int8+fp16"]`` -> SystemConfig fields."""
    fields = {f.name: f for f in dataclass_fields(SystemConfig)}
    overrides = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or name not in fields:
            raise ValueError(f"--set {pair!r}: expected FIELD=VALUE with FIELD one of "
                             f"{sorted(fields)}")
        default = getattr(SystemConfig(), name)
        kind = type(default)
        try:
            value = tuple(text.split("+")) if kind is tuple else kind(text)
        except ValueError:
            raise ValueError(f"--set {pair!r}: {name} takes {kind.__name__} values like "
                             f"{default!r}") from None
        overrides[name] = value
    return overrides


def build(board_name, measure=False, seed=None, clock_mhz=None, overrides=None, tag=None,
          router=None, margin=None, nextpnr_opts=None):
    """Build ``board_name``; return (report text, worst achieved Fmax in MHz). ``seed``:
    nextpnr's placement seed (default: the board's, :attr:`Board.seed`). ``router``:
    nextpnr's router (default: the board's; ``router2`` finished a 16x16 ECP5 system in 5
    min where ``router1`` had not in 31, but does not converge on the 92 %-full UP5K).
    ``margin``: constrain every clock at its frequency / :data:`MARGIN` (default: the
    board's :attr:`Board.constrain_margin`). ``nextpnr_opts``: more nextpnr options
    (default: the board's)."""
    board = BOARDS[board_name]
    seed = board.seed if seed is None else seed
    router = board.router if router is None else router
    margin = board.constrain_margin if margin is None else margin
    config = replace(board.config, **(overrides or {}))
    if clock_mhz is not None:
        config = replace(config, clock_hz=int(clock_mhz * 1e6))
    board = replace(board, config=config)
    setup_yowasp()
    out = BUILD_DIR / "fpga" / (f"{board_name}-{tag}" if tag else board_name)
    out.mkdir(parents=True, exist_ok=True)
    nextpnr = f"--report report.json --seed {seed}"
    if router is not None:
        nextpnr += f" --router {router}"
    if measure:
        nextpnr += " --timing-allow-fail"
    extra = board.nextpnr_opts if nextpnr_opts is None else nextpnr_opts
    if extra:
        nextpnr += f" {extra}"
    plan = build_plan(board, nextpnr, margin)
    plan.execute_local(str(out))
    return _report(board_name, board, config.clock_hz, out, seed, margin)


def build_plan(board, nextpnr_opts="", margin=False):
    """Amaranth's build plan for ``board`` (its files, not yet run): the RTLIL with the
    block RAMs' read-during-write don't-care, the constraints scaled by ``1 / MARGIN``
    with ``margin``."""
    platform = board.platform()
    # no source locations in the RTLIL: they are absolute paths, so the netlist file would
    # differ from one checkout to another (nextpnr's placement did not depend on them: the
    # same seed gave the same Fmax with and without them); without them it is one file
    plan = platform.build(BoardTop(board.config, board.leds), name="loom", do_build=False,
                          synth_opts=board.synth_opts, nextpnr_opts=nextpnr_opts,
                          emit_src=False)
    # the block RAMs' read-during-write don't-care, which yosys's RTLIL reader drops
    plan.files["loom.il"] = apply_no_rw_check(plan.files["loom.il"])
    if margin:
        scale_clock_constraints(plan.files, 1 / MARGIN)
    return plan


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fpga.bitstream")
    parser.add_argument("board", choices=sorted(BOARDS))
    parser.add_argument("--measure", action="store_true",
                        help="allow missed timing (to find Fmax); never for a real build")
    parser.add_argument("--seed", type=int,
                        help="nextpnr placement seed (default: the board's, which its clock "
                             "was measured with)")
    parser.add_argument("--clock-mhz", type=float, help="override the board's design clock")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a SystemConfig field (repeatable), e.g. rows=16")
    parser.add_argument("--tag", help="build into build/fpga/BOARD-TAG/")
    parser.add_argument("--router", choices=("router1", "router2"),
                        help="nextpnr's router (default: the board's, or nextpnr's router1)")
    parser.add_argument("--margin", action=argparse.BooleanOptionalAction,
                        help=f"ask nextpnr for every clock / {MARGIN} (default: the board's)")
    parser.add_argument("--nextpnr-opts", metavar="OPTIONS",
                        help="more nextpnr options, e.g. '--tmg-ripup' (default: the board's)")
    args = parser.parse_args(argv)
    try:
        overrides = parse_overrides(args.set)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        text, _ = build(args.board, args.measure, args.seed, args.clock_mhz, overrides,
                        args.tag, args.router, args.margin, args.nextpnr_opts)
    except Exception as exc:  # the build's own error names the failing tool and its log
        traceback.print_exc()
        out = f"build/fpga/{args.board}" + (f"-{args.tag}" if args.tag else "")
        log = BUILD_DIR / "fpga" / (f"{args.board}-{args.tag}" if args.tag else args.board) \
            / "loom.tim"
        full = overfull(log.read_text()) if log.exists() else []
        if full:
            print(f"{args.board}: the design does not fit the part: " + ", ".join(
                f"{name} {used:,} of {available:,} ({100 * used / available:.0f} %)"
                for name, used, available in full), file=sys.stderr)
        print(f"bitstream for {args.board} failed: {exc}\n(see {out}/loom.rpt for yosys's "
              f"log and {out}/loom.tim for nextpnr's)", file=sys.stderr)
        return 1
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
