"""HostRam in Amaranth's simulator: AXI4 bursts and AXI4-Lite words at the same time, with
random handshakes, against a bytearray model; out-of-range accesses; parameter checks."""
import pytest
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator

from hw.axi import RESP_DECERR, RESP_OKAY, connect_members
from hw.dma_reader import DmaReader
from hw.dma_writer import DmaWriter
from hw.host_ram import HostRam

BASE = 0x1_0000


async def wait_ready(ctx, valid_signal, ready_signal, rng, pause_rate):
    """Raise ``valid_signal`` (after random pauses) and wait for the transfer."""
    while rng.random() < pause_rate:
        await ctx.tick()
    ctx.set(valid_signal, 1)
    # Sampled at the clock edge, not now: `ready` may depend on what the other master's
    # testbench sets later in this same step (the RAM serves one port at a time).
    while not (await ctx.tick().sample(ready_signal))[2]:
        pass
    ctx.set(valid_signal, 0)


class Masters:
    """An AXI4 burst master and an AXI4-Lite master driving one :class:`HostRam`."""

    def __init__(self, ram, rng, pause_rate=0.3):
        self.ram, self.rng, self.pause = ram, rng, pause_rate

    async def burst_write(self, ctx, addr, beats, strobes, ident=3):
        bus = self.ram.bus
        ctx.set(bus.awaddr, addr)
        ctx.set(bus.awlen, len(beats) - 1)
        ctx.set(bus.awid, ident)
        await wait_ready(ctx, bus.awvalid, bus.awready, self.rng, self.pause)
        for i, (beat, strobe) in enumerate(zip(beats, strobes, strict=True)):
            ctx.set(bus.wdata, beat)
            ctx.set(bus.wstrb, strobe)
            ctx.set(bus.wlast, i == len(beats) - 1)
            await wait_ready(ctx, bus.wvalid, bus.wready, self.rng, self.pause)
        return await self._response(ctx, bus.bvalid, bus.bready, [bus.bresp, bus.bid])

    async def burst_read(self, ctx, addr, count, ident=5):
        bus = self.ram.bus
        ctx.set(bus.araddr, addr)
        ctx.set(bus.arlen, count - 1)
        ctx.set(bus.arid, ident)
        await wait_ready(ctx, bus.arvalid, bus.arready, self.rng, self.pause)
        beats = []
        while len(beats) < count:
            beats.append(await self._response(ctx, bus.rvalid, bus.rready,
                                              [bus.rdata, bus.rresp, bus.rlast, bus.rid]))
        return beats

    async def lite_write(self, ctx, addr, word, strobe=0xF):
        lite = self.ram.lite
        ctx.set(lite.awaddr, addr)
        ctx.set(lite.wdata, word)
        ctx.set(lite.wstrb, strobe)
        ctx.set(lite.awvalid, 1)
        await wait_ready(ctx, lite.wvalid, lite.wready, self.rng, 0)
        ctx.set(lite.awvalid, 0)
        return (await self._response(ctx, lite.bvalid, lite.bready, [lite.bresp]))[0]

    async def lite_read(self, ctx, addr):
        lite = self.ram.lite
        ctx.set(lite.araddr, addr)
        await wait_ready(ctx, lite.arvalid, lite.arready, self.rng, self.pause)
        return await self._response(ctx, lite.rvalid, lite.rready, [lite.rdata, lite.rresp])

    async def _response(self, ctx, valid, ready, fields):
        while True:
            accept = self.rng.random() > self.pause
            ctx.set(ready, accept)
            _, _, valid_now, *values = await ctx.tick().sample(valid, *fields)
            if valid_now and accept:
                ctx.set(ready, 0)
                return values


def simulate(ram, *benches):
    sim = Simulator(ram)
    sim.add_clock(1e-8)
    for bench in benches:
        sim.add_testbench(bench)
    sim.run()


class SpramModelRam(HostRam):
    """:class:`HostRam` whose SB_SPRAM256KA blocks behave as yosys's simulation model
    (``cells_sim.v``) says: the output register loads on a selected read, holds while the
    block is not selected, and is undefined after a write (here: the old word inverted)."""

    def _spram(self, m, name, *, address, data_in, mask, write, select):
        m.submodules[name] = storage = Memory(shape=16, depth=16 * 1024, init=[])
        wp = storage.write_port(granularity=4)
        rp = storage.read_port(domain="comb")
        out = Signal(16)
        m.d.comb += [rp.addr.eq(address), wp.addr.eq(address), wp.data.eq(data_in),
                     wp.en.eq(Mux(select & write, mask, 0))]
        with m.If(select):
            m.d.sync += out.eq(Mux(write, ~rp.data, rp.data))
        return out


def check_against_byte_model(ram, rng, burst_area, lite_area):
    """Random bursts (written, then read back) in ``burst_area`` while the lite port writes
    and reads words in ``lite_area`` (byte offsets, 2 KiB each); then both areas through
    both ports, against a byte model."""
    masters = Masters(ram, rng)
    beat_bytes = ram.data_width // 8
    model = bytearray(ram.size)
    span = 2048
    bursts_done = []

    async def burst_bench(ctx):
        for _ in range(12):
            beats = int(rng.integers(1, 17))
            line = burst_area // beat_bytes + int(rng.integers(0, span // beat_bytes - beats + 1))
            data = [int.from_bytes(rng.bytes(beat_bytes), "little") for _ in range(beats)]
            strobes = [int(rng.integers(0, 1 << beat_bytes)) for _ in range(beats)]
            resp, ident = await masters.burst_write(ctx, ram.base + line * beat_bytes, data,
                                                    strobes)
            assert (resp, ident) == (RESP_OKAY, 3)
            for i, (word, strobe) in enumerate(zip(data, strobes, strict=True)):
                for b in range(beat_bytes):
                    if strobe >> b & 1:
                        model[(line + i) * beat_bytes + b] = word >> (8 * b) & 0xFF
            got = await masters.burst_read(ctx, ram.base + line * beat_bytes, beats)
            expected = [int.from_bytes(model[(line + i) * beat_bytes:(line + i + 1) *
                                             beat_bytes], "little") for i in range(beats)]
            assert [g[0] for g in got] == expected
            assert [g[1:] for g in got] == [[RESP_OKAY, int(i == beats - 1), 5]
                                            for i in range(beats)]
        bursts_done.append(True)

    async def lite_bench(ctx):
        written = {}
        for _ in range(40):
            addr = lite_area + 4 * int(rng.integers(0, span // 4))
            if rng.random() < 0.6:
                word, strobe = int(rng.integers(0, 2**32)), int(rng.integers(0, 16))
                assert await masters.lite_write(ctx, ram.base + addr, word, strobe) == RESP_OKAY
                old = written.get(addr, 0)
                mask = sum(0xFF << (8 * b) for b in range(4) if strobe >> b & 1)
                written[addr] = (old & ~mask) | (word & mask)
                model[addr:addr + 4] = written[addr].to_bytes(4, "little")
            else:
                data, resp = await masters.lite_read(ctx, ram.base + addr)
                assert (data, resp) == (written.get(addr, 0), RESP_OKAY)
        while not bursts_done:
            await ctx.tick()
        # Both areas, through both ports.
        for area in (burst_area, lite_area):
            for addr in range(area, area + span, 4):
                data, _ = await masters.lite_read(ctx, ram.base + addr)
                assert data == int.from_bytes(model[addr:addr + 4], "little"), hex(addr)
            got = await masters.burst_read(ctx, ram.base + area, 16)
            assert [g[0] for g in got] == [
                int.from_bytes(model[area + i * beat_bytes:area + (i + 1) * beat_bytes],
                               "little") for i in range(16)]

    simulate(ram, burst_bench, lite_bench)


@pytest.mark.parametrize("data_width", [32, 128])
def test_bursts_and_lite_words_agree_with_a_byte_model(rng, data_width):
    check_against_byte_model(HostRam(size=4096, data_width=data_width, base=BASE), rng,
                             burst_area=0, lite_area=2048)


def test_spram_banks_hold_read_data_while_the_reader_waits(rng):
    """The board's RAM: two banks of SB_SPRAM256KA (as yosys simulates them), bursts in
    one, lite words in the other, with random ``rready``: read data comes from the
    storage's output, which must stay the addressed bank's until it is taken."""
    ram = SpramModelRam(size=128 * 1024, data_width=32, base=0x20000, primitive="spram")
    check_against_byte_model(ram, rng, burst_area=0xF800, lite_area=0x1_8000)


def test_accesses_outside_the_ram_answer_decerr_and_change_nothing(rng):
    ram = HostRam(size=1024, data_width=64, base=BASE)
    masters = Masters(ram, rng)

    async def bench(ctx):
        # A burst running past the end: the last two beats are outside.
        resp, _ = await masters.burst_write(ctx, BASE + 1024 - 16, [1, 2, 3, 4], [0xFF] * 4)
        assert resp == RESP_DECERR
        got = await masters.burst_read(ctx, BASE + 1024 - 16, 4)
        assert [g[1] for g in got] == [RESP_OKAY, RESP_OKAY, RESP_DECERR, RESP_DECERR]
        assert [g[0] for g in got[:2]] == [1, 2]
        assert await masters.lite_write(ctx, BASE - 4, 0x1234) == RESP_DECERR
        assert (await masters.lite_read(ctx, BASE + 1024))[1] == RESP_DECERR
        # Below base maps to nothing either: the RAM's first word is untouched.
        assert await masters.lite_read(ctx, BASE) == [0, RESP_OKAY]

    simulate(ram, bench)


@pytest.mark.parametrize("kwargs,match", [
    ({"size": 1000, "data_width": 32}, "size"),
    ({"size": 1024, "data_width": 48}, "data_width"),
    ({"size": 1024, "data_width": 32, "base": 512}, "base"),
    ({"size": 1024, "data_width": 32, "primitive": "lutram"}, "primitive"),
    ({"size": 16384, "data_width": 32, "primitive": "spram"}, "SPRAM"),
    ({"size": 256 * 1024, "data_width": 32, "primitive": "spram"}, "SPRAM"),
])
def test_parameters_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HostRam(**kwargs)


def test_spram_build_elaborates_four_blocks():
    from amaranth.back import rtlil
    text = rtlil.convert(HostRam(size=128 * 1024, data_width=32, primitive="spram"))
    assert text.count("SB_SPRAM256KA") == 4


class DmaBehindRam(wiring.Component):
    """A DMA reader and writer (32-bit, ``outstanding`` bursts each) sharing a
    :class:`HostRam`, as ``LoomSystem`` connects them."""

    def __init__(self, outstanding):
        self.reader = DmaReader(data_width=32, max_outstanding=outstanding, timeout=256)
        self.writer = DmaWriter(data_width=32, max_outstanding=outstanding, timeout=256)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.reader, m.submodules.writer = self.reader, self.writer
        m.submodules.ram = ram = HostRam(size=16 * 1024, data_width=32)
        connect_members(m, self.reader.bus, ram.bus)
        connect_members(m, self.writer.bus, ram.bus)
        return m


def handshake_trace(outstanding, seed, commands):
    """Cycle by cycle, which AXI handshakes happen while the reader and writer each run
    ``commands`` (the same ones) with a data sink and source ready at random."""
    import numpy as np

    dut = DmaBehindRam(outstanding)
    reader, writer = dut.reader, dut.writer
    trace = []

    def commands_bench(engine):
        async def bench(ctx):
            for addr, pitch, rows, row_beats in commands:
                ctx.set(engine.cmd.payload, {"addr": addr, "pitch": pitch, "rows": rows,
                                             "row_beats": row_beats})
                ctx.set(engine.cmd.valid, 1)
                await ctx.tick().until(engine.cmd.ready)
                ctx.set(engine.cmd.valid, 0)
        return bench

    async def stream_bench(ctx):
        rng = np.random.default_rng(seed)
        word = 0
        for _ in range(3000):
            ctx.set(reader.data.ready, int(rng.random() < 0.7))
            ctx.set(writer.data.valid, int(rng.random() < 0.7))
            ctx.set(writer.data.payload, word)
            *_, r, w = await ctx.tick().sample(reader.data.ready & reader.data.valid,
                                               writer.data.ready & writer.data.valid)
            word += w
            rb, wb = reader.bus, writer.bus
            # an address and length count only in their handshake's cycle
            ar, aw = ctx.get(rb.arvalid & rb.arready), ctx.get(wb.awvalid & wb.awready)
            trace.append((ar, ar and ctx.get(rb.araddr), ar and ctx.get(rb.arlen), r,
                          aw, aw and ctx.get(wb.awaddr), aw and ctx.get(wb.awlen), w,
                          ctx.get(wb.bvalid)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(commands_bench(reader), background=True)
    sim.add_testbench(commands_bench(writer), background=True)
    sim.add_testbench(stream_bench)
    sim.run()
    return trace


def test_dma_engines_behind_it_gain_nothing_from_a_second_outstanding_burst(rng):
    """It takes the next address only after the last beat or the response of the burst
    before, so the board's DMA engines keep one burst in flight (``dma_outstanding=1``) at
    no cost: every handshake in the same cycle as with four."""
    seed = int(rng.integers(1 << 32))
    # rows of whole bursts, bursts split at a 4 KiB boundary, single beats
    commands = [(0x0FF0, 0x100, 3, 10), (0x2000, 4, 1, 300), (0x1000, 8, 6, 1),
                (0x3FF8, 0x40, 2, 12)]
    one, four = (handshake_trace(n, seed, commands) for n in (1, 4))
    assert sum(t[0] for t in four) >= 8 and sum(t[4] for t in four) >= 8
    assert one == four
