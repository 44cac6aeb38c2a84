"""UartRx / UartTx in Amaranth's simulator against a bit-level model of an 8N1 line."""
import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from hw.uart_rx import UartRx
from hw.uart_tx import UartTx


def line_levels(data, bit_cycles, stop_bits=1, bad_stop=False):
    """The pin level per clock cycle for 8N1 ``data``; ``bit_cycles`` may be fractional
    (a sender whose baud rate is off)."""
    bits = []
    for byte in data:
        bits += [0] + [(byte >> i) & 1 for i in range(8)] + [0 if bad_stop else 1] * stop_bits
    levels = []
    for i, bit in enumerate(bits):
        end = round((i + 1) * bit_cycles)
        levels += [bit] * (end - len(levels))
    return levels + [1] * int(2 * bit_cycles)


def receive(levels, divisor, ready=True):
    """Drive ``levels`` into a UartRx; return (bytes, framing errors, overruns)."""
    dut = UartRx(divisor)
    got, errors = [], {"framing": 0, "overrun": 0}

    async def bench(ctx):
        ctx.set(dut.data.ready, ready)
        for level in levels:
            ctx.set(dut.rx, level)
            if ctx.get(dut.data.valid) and ready:
                got.append(ctx.get(dut.data.payload))
            errors["framing"] += ctx.get(dut.framing_error)
            errors["overrun"] += ctx.get(dut.overrun)
            await ctx.tick()
        if not ready:
            while ctx.get(dut.data.valid):
                got.append(ctx.get(dut.data.payload))
                ctx.set(dut.data.ready, 1)
                await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got, errors["framing"], errors["overrun"]


@pytest.mark.parametrize("divisor,skew", [(4, 1.0), (7, 1.0), (7, 0.97), (7, 1.03),
                                           (16, 1.0), (16, 0.96), (16, 1.04)])
def test_rx_receives_bytes_at_baud_skew(rng, divisor, skew):
    data = [0x00, 0xFF, 0x55, 0xAA] + [int(x) for x in rng.integers(0, 256, 12)]
    got, framing, overrun = receive(line_levels(data, divisor * skew), divisor)
    assert got == data
    assert (framing, overrun) == (0, 0)


def test_rx_drops_a_byte_with_a_bad_stop_bit():
    levels = line_levels([0x12], 8) + line_levels([0x34], 8, bad_stop=True)
    levels += line_levels([0x56], 8)
    got, framing, _ = receive(levels, 8)
    assert got == [0x12, 0x56]
    assert framing == 1


def test_rx_ignores_glitches_shorter_than_half_a_bit():
    levels = [1] * 20 + [0, 0, 0] + [1] * 20 + line_levels([0xC3], 10)
    got, framing, _ = receive(levels, 10)
    assert got == [0xC3]
    assert framing == 0


def test_rx_keeps_the_first_byte_on_overrun():
    got, _, overrun = receive(line_levels([0x11, 0x22, 0x33], 6), 6, ready=False)
    assert got == [0x11]
    assert overrun == 2


@pytest.mark.parametrize("divisor", [4, 9])
def test_tx_matches_the_line_model_back_to_back(rng, divisor):
    data = [int(x) for x in rng.integers(0, 256, 10)]
    dut = UartTx(divisor)
    levels = []

    async def bench(ctx):
        pending = list(data)
        started = False
        for _ in range(10 * divisor * (len(data) + 2)):
            ctx.set(dut.data.valid, bool(pending))
            if pending:
                ctx.set(dut.data.payload, pending[0])
            accepted = pending and ctx.get(dut.data.ready)
            if started:
                levels.append(ctx.get(dut.tx))
            await ctx.tick()
            if accepted:
                pending.pop(0)
                started = True

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    expected = line_levels(data, divisor)
    assert levels[:10 * divisor * len(data)] == expected[:10 * divisor * len(data)]
    assert all(levels[10 * divisor * len(data):])


def test_tx_to_rx_loopback(rng):
    data = [int(x) for x in rng.integers(0, 256, 20)]
    m = Module()
    m.submodules.tx = tx = UartTx(5)
    m.submodules.rx = rx = UartRx(5)
    m.d.comb += rx.rx.eq(tx.tx)
    got = []

    async def bench(ctx):
        pending = list(data)
        ctx.set(rx.data.ready, 1)
        for _ in range(60 * len(data) + 100):
            ctx.set(tx.data.valid, bool(pending))
            if pending:
                ctx.set(tx.data.payload, pending[0])
            accepted = pending and ctx.get(tx.data.ready)
            if ctx.get(rx.data.valid):
                got.append(ctx.get(rx.data.payload))
            await ctx.tick()
            if accepted:
                pending.pop(0)

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == data


@pytest.mark.parametrize("bad", [3, 2.5, "8", True])
def test_divisor_is_checked(bad):
    with pytest.raises(ValueError, match="divisor"):
        UartRx(bad)
    with pytest.raises(ValueError, match="divisor"):
        UartTx(bad)
