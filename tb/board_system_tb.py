"""cocotb module run inside the simulator by :class:`sim.board_sim.BoardSimPort`: the board
design (``fpga/board_top.py``'s ``LoomSystem``) in Verilator, its UART pins bit-banged.

:class:`UartPins` owns the clock and the reset, sends the bytes the host wrote 8N1 on the
``rx`` pin (``LOOM_BOARD_DIVISOR`` clock cycles per bit) and decodes the ``tx`` pin back into
bytes. Its time steps are one bit, not one cycle: the sender and the receiver each wake
once per bit. :func:`serve` connects back to the host process over the socket named by
``LOOM_BOARD_ADDRESS`` and serves its requests one at a time (``sim/request_loop.py``, as
the ``rtl`` backend's server does); simulated time passes only inside requests:

``("write", data)``
    queue bytes for the ``rx`` pin (sent back to back, as a UART does); no time passes.
``("read", n, timeout_cycles)``
    run until the queued bytes are sent, then until ``n`` bytes came out of ``tx`` or
    ``timeout_cycles`` passed without them; reply with the bytes (at most ``n``).
``("flush", cycles)``
    run until the queued bytes are sent, then ``cycles`` more; drop every received byte.
``("run", cycles)``, ``("leds",)``, ``("cycles",)``, ``("close",)``
    run the clock; read the ``leds`` port; the cycles simulated so far; stop.
"""
import os
from collections import deque

import cocotb
from cocotb.triggers import Event, FallingEdge, First, Timer
from cocotb.utils import get_sim_time

from sim.clock_reset import clock_and_reset
from sim.request_loop import serve_requests

PERIOD_NS = 10


class UartPins:
    """Clock, reset and the two UART pins of ``dut`` at ``divisor`` cycles per bit."""

    def __init__(self, dut, divisor):
        self.dut, self.divisor = dut, divisor
        self.bit_ns = divisor * PERIOD_NS
        self.pending = deque()          # bytes the host wrote, not yet on the rx pin
        self.received = bytearray()     # bytes decoded from the tx pin, not yet read
        self.wrote = Event()            # set when `pending` gets bytes
        self.idle = Event()             # set while nothing is being sent
        self.arrived = Event()          # set when a byte is decoded
        self.framing_errors = 0
        self.idle.set()

    async def start(self):
        dut = self.dut
        dut.rx.value = 1
        # the array on a clock of its own (a second PLL output) in builds with one
        await clock_and_reset(dut, PERIOD_NS, os.environ.get("LOOM_BOARD_ARRAY_PERIOD_PS"))
        cocotb.start_soon(self._send())
        cocotb.start_soon(self._receive())

    def now(self):
        return get_sim_time("ns")

    def cycles(self):
        return int(self.now() // PERIOD_NS)

    def write(self, data):
        self.pending.extend(data)
        if data:
            self.idle.clear()
            self.wrote.set()

    async def _send(self):
        rx = self.dut.rx
        while True:
            if not self.pending:
                self.idle.set()
                self.wrote.clear()
                await self.wrote.wait()
                # Bits change on falling clock edges, half a cycle from any sampling edge;
                # every later wait is a whole number of cycles, so they stay there.
                await FallingEdge(self.dut.clk)
            byte = self.pending.popleft()
            for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                rx.value = bit
                await Timer(self.bit_ns, "ns")

    async def _receive(self):
        tx = self.dut.tx
        while True:
            await FallingEdge(tx)
            # The middle of the start bit, plus half a cycle: clear of every register update.
            await Timer(self.bit_ns // 2 + PERIOD_NS // 2, "ns")
            if tx.value != 0:
                continue                    # a glitch, not a start bit
            byte = 0
            for i in range(8):
                await Timer(self.bit_ns, "ns")
                byte |= int(tx.value) << i
            await Timer(self.bit_ns, "ns")
            if tx.value != 1:
                self.framing_errors += 1
                continue
            self.received.append(byte)
            self.arrived.set()

    async def drain(self):
        """Run until every queued byte has left on the ``rx`` pin."""
        if not self.idle.is_set():
            await self.idle.wait()

    async def read(self, n, timeout_cycles):
        await self.drain()
        deadline = self.now() + timeout_cycles * PERIOD_NS
        while len(self.received) < n and self.now() < deadline:
            self.arrived.clear()
            await First(self.arrived.wait(), Timer(deadline - self.now(), "ns"))
        data = bytes(self.received[:n])
        del self.received[:n]
        return data


@cocotb.test()
async def serve(dut):
    pins = UartPins(dut, int(os.environ["LOOM_BOARD_DIVISOR"]))
    await pins.start()

    async def flush(cycles):
        await run(cycles)
        pins.received.clear()

    async def run(cycles):
        await pins.drain()
        await Timer(cycles * PERIOD_NS, "ns")

    await serve_requests("LOOM_BOARD", {
        "write": pins.write,
        "read": pins.read,
        "flush": flush,
        "run": run,
        "leds": lambda: dut.leds.value.to_unsigned(),
        "cycles": lambda: (pins.cycles(), pins.framing_errors),
    })
