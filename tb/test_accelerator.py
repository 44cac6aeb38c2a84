"""The whole Accelerator in Verilator with cocotbext-axi host memory and register master."""
import os

import pytest

from hw.accelerator import Accelerator
from sim.cocotb_run import run_cocotb

COMMON = ("identifies_itself", "one_tile_int8_gemm_matches_golden",
          "bad_opcode_stops_with_its_code_and_soft_reset_recovers",
          "store_outside_the_window_writes_nothing", "tiled_int8_gemms_in_every_store_mode",
          "every_error_has_its_code_and_soft_reset_recovers", "a_silent_bus_trips_the_watchdog",
          "a_misplaced_descriptor_table_is_refused_before_any_fetch")
FP16 = ("tiled_fp16_gemms_store_fp32_and_fp16",)
#: build -> (datapaths, bus bits, tests[, more Accelerator parameters]), all 8x8. On the
#: 256-bit bus the 16-byte operand words and the 8-byte int8 / 16-byte fp16 result rows are
#: narrower than a beat: packed.
BUILDS = {
    "int8": (("int8",), 64, COMMON),
    "dual": (("int8", "fp16"), 64, (*COMMON, *FP16)),
    "dual_256": (("int8", "fp16"), 256, (*COMMON, *FP16, "packed_rows_follow_their_rules",
                                         "gemms_split_over_k_accumulate")),
    # each PE's product over two registers, a quarter of the PEs' products in LUTs
    "int8_p2": (("int8",), 64, ("identifies_itself", "one_tile_int8_gemm_matches_golden",
                                "tiled_int8_gemms_in_every_store_mode"),
                {"lut_multipliers": 16, "product_stages": 2}),
    # the same over three registers (the 16x16 ECP5 build's)
    "int8_p3": (("int8",), 64, ("identifies_itself", "one_tile_int8_gemm_matches_golden",
                                "tiled_int8_gemms_in_every_store_mode"),
                {"lut_multipliers": 16, "product_stages": 3}),
}


#: builds only `make test-full` runs (the regular suite covers product_stages=2 and 3 in the
#: array's Verilator regression, the compute unit's tests and the cycle model's RTL sweep;
#: "dual"'s tests are a subset of "dual_256"'s, and the dual 64-bit bus runs GEMMs in the
#: cycle model's RTL sweep and tb/test_layers.py)
SLOW_BUILDS = ("dual", "int8_p2", "int8_p3")


@pytest.mark.parametrize("build", [pytest.param(b, marks=pytest.mark.slow)
                                   if b in SLOW_BUILDS else b for b in sorted(BUILDS)])
def test_accelerator(build):
    rows, cols = 8, 8
    datapaths, data_width, tests, *more = BUILDS[build]
    more = more[0] if more else {}
    seed = int(os.environ["LOOM_SEED"])
    timeout = 2048
    top = Accelerator(rows, cols, datapaths=datapaths, data_width=data_width, depth=64,
                      timeout=timeout, **more)
    env = {"LOOM_ROWS": str(rows), "LOOM_COLS": str(cols), "LOOM_DATA_WIDTH": str(data_width),
           "LOOM_LANE_BYTES": str(top.lane_bits // 8), "LOOM_TIMEOUT": str(timeout),
           "LOOM_PRODUCT_STAGES": str(more.get("product_stages", 1))}
    result = run_cocotb(top, "accelerator", "tb.accelerator_tb", f"accelerator_8x8_{build}",
                        seed, tests=tests, env=env)
    assert result.failed == {}, f"seed {seed}: {result.failed}"
    assert sorted(result.passed) == sorted(tests)


# --- the Sequencer's descriptor check against the golden model's rules ---------------------
#: Sequencer builds: (beat bytes, datapaths, lane bytes); the 32-byte beat has packed rows
#: build -> (beat bytes, datapaths, lane bytes, more Sequencer parameters)
CHECK_BUILDS = {"bus64_int8": (8, ("int8",), 1, {}),
                "bus256_dual": (32, ("int8", "fp16"), 2, {}),
                # the UP5K's: 17-bit addresses, the span multiplied without a DSP
                "bus64_int8_narrow_lut": (8, ("int8",), 1,
                                          {"addr_width": 17, "span_multiplier": "lut"}),
                # and its 32-bit bus: descriptors checked one at a time
                "bus32_int8_narrow_lut": (4, ("int8",), 1,
                                          {"addr_width": 17, "span_multiplier": "lut"}),
                # the span multiplied a bit a cycle, as on the iCEBreaker
                "bus32_int8_narrow_serial": (4, ("int8",), 1,
                                             {"addr_width": 17, "span_multiplier": "serial"})}


def _check_cases(golden, rng, n):
    """``n`` (descriptor bytes, window base, window limit), mostly LOADs and STOREs with
    edge values: addresses and spans beyond 2**32 (or 2**addr_width), footprints ending
    exactly at the window limit or at 2**32, windows above 2**32, rows 0 or too many, bad
    alignment."""
    from hw.isa import DESCRIPTOR_BYTES, FIELDS, Opcode, encode
    beat, top = golden.beat, 1 << golden.addr_width
    pick = lambda *values: int(values[rng.integers(len(values))])  # noqa: E731
    for _ in range(n):
        opcode = pick(*[Opcode.LOAD.value] * 5, *[Opcode.STORE.value] * 4, Opcode.COMPUTE.value,
                      Opcode.END.value, 0x55)
        if opcode == 0x55:
            yield bytes([0x55]) + bytes(DESCRIPTOR_BYTES - 1), 0, top
            continue
        opcode = Opcode(opcode)
        fields = {}
        for field in FIELDS[opcode]:
            fields[field.name] = int(rng.integers(1 << min(field.width, 3)))
        if opcode == Opcode.COMPUTE:
            fields["k"] = pick(0, 1, golden.depth, golden.depth + 1, 65535)
        if opcode in (Opcode.LOAD, Opcode.STORE):
            if opcode == Opcode.LOAD:
                fields["target"] = pick(0, 1, 2, 2, 3)
                fields["slot"] = pick(0, 1, golden.slots, 2 * golden.slots)
                fields["count"] = pick(0, 1, 2, 3, 4, golden.depth - 1, golden.depth,
                                       golden.depth + 1, 65535, rng.integers(1, 9))
                row = golden._row_bytes_load(fields["target"])
            else:
                fields["mode"] = pick(0, 1, 2, 3)
                row = golden.cols * {0: 4, 1: 1, 2: 2}.get(fields["mode"], 4)
            rows = fields["count"] if opcode == Opcode.LOAD else golden.rows
            # the least pitch of whole beats whose span reaches 2**addr_width: its span's
            # low bits are small, so only the carry past them makes it OUT_OF_WINDOW
            wrap = beat * -(-top // (beat * max(rows - 1, 1))) % (1 << 32)
            fields["pitch"] = pick(0, beat, row, 2 * beat, 0x1000, 0x0400_0000, 1 << 31,
                                   (1 << 31) - beat, (1 << 32) - 2 * beat, (1 << 32) // 3,
                                   top - beat, (1 << 32) - 1, rng.integers(1 << 32),
                                   beat * rng.integers(1 << 8), wrap, wrap)
            span = golden._footprint(0, fields["pitch"], rows, row, opcode == Opcode.LOAD)
            # footprints ending at 2**32 or a beat either side of it
            edge = [(top - (span or 0) + beat * n) % (1 << 64) for n in (-1, 0, 0, 1)]
            fields["addr"] = pick(0, 0x1000, 0x1001, top - beat, top - 0x1000, top,
                                  top + 0x1000, 1 << 63, (1 << 64) - beat, (1 << 64) - 1,
                                  beat * rng.integers(top // beat), rng.integers(1 << 63),
                                  *edge)
            end = fields["addr"] + (span or 0)
            base = pick(0, 0, fields["addr"], fields["addr"] + beat, top, top + 1, 1 << 40,
                        (1 << 64) - 1) % (1 << 64)
            limit = pick(end, end, end - 1, end + beat, top, top + beat, 1 << 40,
                         (1 << 64) - 1, 0x2000) % (1 << 64)
        else:
            base, limit = 0, top
        yield encode(opcode, **fields), base, limit


@pytest.mark.parametrize("build", sorted(CHECK_BUILDS))
def test_sequencer_check_codes_match_the_golden_rules(build):
    """Each descriptor alone (then END) through the Sequencer in Amaranth's simulator: the
    error code (or none) is the golden model's, whatever the address, pitch and window."""
    import numpy as np
    from amaranth.hdl import Module, ResetInserter, Signal
    from amaranth.sim import Simulator

    from hw.isa import DESCRIPTOR_BYTES, Opcode, encode
    from hw.sequencer import ERROR, Sequencer
    from sw.backends.golden import GoldenTransport

    beat, datapaths, lane, more = CHECK_BUILDS[build]
    addr_width = more.get("addr_width", 32)
    golden = GoldenTransport(8, 8, datapaths=datapaths, data_width=8 * beat, depth=64,
                             addr_width=addr_width, memory_size=1 << 12)
    seq = Sequencer(rows=8, cols=8, beat_bytes=beat, depth=64, slots=2, datapaths=datapaths,
                    lane_bytes=lane, **{"addr_width": 32, **more})
    m = Module()
    clear = Signal()
    m.submodules.seq = ResetInserter(clear)(seq)
    rng = np.random.default_rng(int(os.environ["LOOM_SEED"]))
    cases = list(_check_cases(golden, rng, 2000))
    end = encode(Opcode.END)
    seen = set()

    async def bench(ctx):
        for port in (seq.fetch_cmd, seq.load_cmd, seq.compute_cmd, seq.store_cmd):
            ctx.set(port.ready, 1)
        for descriptor, base, limit in cases:
            ctx.set(clear, 1)
            await ctx.tick()
            ctx.set(clear, 0)
            # The table (at 0) passes its start check in a window of everything; then the
            # case's window applies, before the descriptor reaches the check.
            ctx.set(seq.window_base, 0)
            ctx.set(seq.window_limit, (1 << 64) - 1)
            ctx.set(seq.desc_count, 2)
            ctx.set(seq.start, 1)
            await ctx.tick()
            ctx.set(seq.start, 0)
            ctx.set(seq.window_base, base)
            ctx.set(seq.window_limit, limit)
            words = [int.from_bytes(d, "little") for d in (descriptor, end)]
            for word in words:
                for n in range(DESCRIPTOR_BYTES // beat):
                    ctx.set(seq.fetch_data.payload.data, word >> (8 * beat * n))
                    ctx.set(seq.fetch_data.valid, 1)
                    await ctx.tick()
            ctx.set(seq.fetch_data.valid, 0)
            for _ in range(40):
                if ctx.get(seq.done) or ctx.get(seq.error):
                    break
                await ctx.tick()
            got = ctx.get(seq.error_code) if ctx.get(seq.error) else 0
            assert ctx.get(seq.done) or ctx.get(seq.error), descriptor.hex()
            try:
                opcode = Opcode(descriptor[0])
            except ValueError:
                want = ERROR["BAD_OPCODE"]
            else:
                golden._regs.update(WINDOW_BASE=base, WINDOW_LIMIT=limit)
                want = golden._check(opcode, golden._fields_ignoring_reserved(descriptor,
                                                                              opcode))
            assert got == want, (f"{descriptor.hex()} window [{base:#x}, {limit:#x}): "
                                 f"code {got}, golden {want}")
            seen.add(want)

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen >= {0, *(ERROR[n] for n in ("BAD_OPCODE", "BAD_SIZE", "MISALIGNED",
                                            "OUT_OF_WINDOW"))}, seen


@pytest.mark.parametrize("kwargs, message", [
    ({"counter_width": 16}, "counter_width must be an integer from 32 to 64"),
    ({"counter_width": 65}, "counter_width"),
    ({"span_multiplier": "mac"}, "span_multiplier must be one of"),
    ({"span_multiplier": "serial"}, "needs a bus of 4 bytes"),
    ({"paired_multipliers": True, "datapaths": ("int8", "fp16")}, "paired multipliers"),
    ({"product_stages": 4}, "product_stages must be 1, 2 or 3"),
    ({"product_stages": 2, "datapaths": ("int8", "fp16")}, "int8-only"),
    ({"product_stages": 2, "paired_multipliers": True}, "external"),
    ({"dma_outstanding": 0}, "dma_outstanding must be an integer from 1 to 16"),
])
def test_small_part_options_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Accelerator(4, 4, data_width=64, **kwargs)
