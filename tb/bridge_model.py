"""Serial-port-like objects for the serial backend's tests: a Python model of the host bridge
with fault injection, and ports that run the real HostBridge (or a whole design at its UART
pins) in Amaranth's simulator. All share the pyserial surface of :class:`BytePort`.

(``sim/board_sim.py`` has the same surface for the board design in Verilator.)"""
from amaranth.sim import Simulator

from hw.bridge_protocol import (
    HEADER_BYTES,
    INFO_MAGIC,
    PROTOCOL_VERSION,
    SYNC_REQUEST,
    command,
    crc16,
    encode_reply,
    status_code,
)

__all__ = ["BytePort", "ModelPort", "SimulatedPort", "SimulatedBridgePort", "UartPinPort"]

_BY_CODE = {}
for _name in ("INFO", "CSR_READ", "CSR_WRITE", "MEM_READ", "MEM_WRITE"):
    _BY_CODE[command(_name).code] = command(_name)


class BytePort:
    """The pyserial surface the serial backend uses: ``write(data)``, ``read(n)`` (at most
    ``n`` bytes, fewer after a timeout), ``timeout``, ``reset_input_buffer()``, ``close()``.

    Bytes the device sent wait in ``_out``; ``read`` first calls :meth:`_fill` to let the
    device produce up to ``n`` of them.
    """

    def __init__(self):
        self.timeout = 1.0
        self._out = bytearray()

    def write(self, data):
        raise NotImplementedError

    def _fill(self, n):
        """Let the device answer until ``_out`` holds ``n`` bytes or it times out."""

    def read(self, n):
        self._fill(n)
        data, self._out = bytes(self._out[:n]), self._out[n:]
        return data

    def reset_input_buffer(self):
        self._out.clear()

    def close(self):
        pass


class SimulatedPort(BytePort):
    """A :class:`BytePort` in front of ``design`` in Amaranth's simulator (``sim``, 100 MHz;
    more testbenches can be added to it). ``write`` queues bytes in ``_in`` for the
    subclass's testbenches; ``read(n)`` runs the simulation in steps of ``step`` cycles until
    ``n`` bytes came out or ``timeout_cycles`` passed (a serial timeout);
    ``reset_input_buffer`` first lets ``quiet_cycles`` pass."""

    step = 100
    quiet_cycles = 0

    def __init__(self, design, timeout_cycles):
        super().__init__()
        self.timeout_cycles = timeout_cycles
        self._in = bytearray()
        self.sim = Simulator(design)
        self.sim.add_clock(1e-8)
        self._cycles = 0

    def run(self, cycles):
        """Let ``cycles`` clock cycles pass."""
        self._cycles += cycles
        self.sim.run_until(self._cycles * 1e-8)

    def write(self, data):
        self._in += data
        return len(data)

    def _fill(self, n):
        cycles = 0
        while len(self._out) < n and cycles < self.timeout_cycles:
            self.run(self.step)
            cycles += self.step

    def reset_input_buffer(self):
        if self.quiet_cycles:
            self.run(self.quiet_cycles)
        super().reset_input_buffer()


class ModelPort(BytePort):
    """What a serial port to a board would do, with the bridge modelled in Python.

    ``registers`` (offset -> word; offsets in ``bad_registers`` answer a bus error) and
    ``memory`` (bytearray at address 0) stand for the device. Faults for the next requests
    or replies: ``corrupt_requests`` / ``corrupt_replies`` flip a bit in that many frames,
    ``drop_replies`` loses that many replies entirely.
    """

    def __init__(self, memory_size=4096, clock_hz=24_000_000, max_words=16, timeout=0.01):
        super().__init__()
        self.registers, self.bad_registers = {}, set()
        self.memory = bytearray(memory_size)
        self.clock_hz, self.max_words, self.timeout = clock_hz, max_words, timeout
        self.corrupt_requests = self.corrupt_replies = self.drop_replies = 0
        self.requests = []            # (command name, addr, count) executed

    # the pyserial surface
    def write(self, data):
        frame = bytearray(data)
        if self.corrupt_requests:
            self.corrupt_requests -= 1
            frame[len(frame) // 2] ^= 0x10
        reply = self._execute(bytes(frame))
        if self.drop_replies:
            self.drop_replies -= 1
            return len(data)
        if self.corrupt_replies:
            self.corrupt_replies -= 1
            reply = bytearray(reply)
            reply[-3] ^= 0x01
        self._out += reply
        return len(data)

    # the bridge
    def _execute(self, frame):
        assert frame[0] == SYNC_REQUEST
        code, tag, count = frame[1], frame[2], frame[3]
        addr = int.from_bytes(frame[4:8], "little")
        cmd = _BY_CODE.get(code)
        payload_bytes = 4 * count if cmd is not None and cmd.writes else 0
        if len(frame) < HEADER_BYTES + payload_bytes + 2:
            return encode_reply(status_code("TRUNCATED"), tag)
        body = frame[1:HEADER_BYTES + payload_bytes]
        crc = int.from_bytes(frame[HEADER_BYTES + payload_bytes:][:2], "little")
        if crc16(body) != crc:
            return encode_reply(status_code("BAD_CRC"), tag)
        info = [INFO_MAGIC, PROTOCOL_VERSION, len(self.memory), self.clock_hz, self.max_words]
        if (cmd is None or count == 0 or count > self.max_words or addr % 4
                or (cmd.name == "INFO" and addr // 4 + count > len(info))):
            return encode_reply(status_code("BAD_COMMAND"), tag)
        self.requests.append((cmd.name, addr, count))
        words = [int.from_bytes(frame[8 + 4 * i:12 + 4 * i], "little") for i in range(count)]
        out = []
        for i in range(count):
            a = addr + 4 * i
            if cmd.name == "INFO":
                out.append(info[a // 4])
            elif cmd.name.startswith("CSR"):
                if a in self.bad_registers or a > 0xFFC:
                    return encode_reply(status_code("BUS_ERROR"), tag)
                if cmd.writes:
                    self.registers[a] = words[i]
                else:
                    out.append(self.registers.get(a, 0))
            else:
                if a + 4 > len(self.memory):
                    return encode_reply(status_code("BUS_ERROR"), tag)
                if cmd.writes:
                    self.memory[a:a + 4] = words[i].to_bytes(4, "little")
                else:
                    out.append(int.from_bytes(self.memory[a:a + 4], "little"))
        return encode_reply(status_code("OK"), tag, out)


class SimulatedBridgePort(SimulatedPort):
    """A serial-port-like object in front of a :class:`~hw.host_bridge.HostBridge` running in
    Amaranth's simulator, its CSR and memory ports on
    :class:`~tb.bridge_tb.LiteSubordinate` models (``csr``, ``mem``).

    ``write`` queues bytes for the bridge's byte stream; ``read(n)`` runs the simulation until
    ``n`` reply bytes came out or ``timeout_cycles`` passed (a serial timeout).
    """

    quiet_cycles = 1000

    def __init__(self, bridge, csr, mem, rng, timeout_cycles=4000):
        super().__init__(bridge, timeout_cycles)
        self.bridge, self.csr, self.mem = bridge, csr, mem
        self.sim.add_testbench(self._feeder, background=True)
        self.sim.add_testbench(self._drain, background=True)

        async def csr_model(ctx):
            await csr.run(ctx, bridge.csr, rng)

        async def mem_model(ctx):
            await mem.run(ctx, bridge.mem, rng)

        self.sim.add_testbench(csr_model, background=True)
        self.sim.add_testbench(mem_model, background=True)

    async def _feeder(self, ctx):
        while True:
            if self._in:
                ctx.set(self.bridge.rx.valid, 1)
                ctx.set(self.bridge.rx.payload, self._in[0])
                ready = ctx.get(self.bridge.rx.ready)
                await ctx.tick()
                if ready:
                    del self._in[0]
            else:
                ctx.set(self.bridge.rx.valid, 0)
                await ctx.tick()

    async def _drain(self, ctx):
        ctx.set(self.bridge.tx.ready, 1)
        while True:
            if ctx.get(self.bridge.tx.valid):
                self._out.append(ctx.get(self.bridge.tx.payload))
            await ctx.tick()


class UartPinPort(SimulatedPort):
    """A serial-port-like object driving a design's UART pins in Amaranth's simulator:
    ``write`` bytes go out 8N1 on ``rx`` at ``divisor`` cycles per bit, and bytes the design
    sends on ``tx`` are decoded for ``read(n)``, which gives up after ``timeout_cycles``.
    ``dut`` has ``rx`` and ``tx`` ports; its other testbenches can be added to ``sim``."""

    step = 200

    def __init__(self, dut, divisor, timeout_cycles=20_000):
        super().__init__(dut, timeout_cycles)
        self.dut, self.divisor = dut, divisor
        self.sim.add_testbench(self._send, background=True)
        self.sim.add_testbench(self._receive, background=True)

    async def _send(self, ctx):
        ctx.set(self.dut.rx, 1)
        while True:
            if not self._in:
                await ctx.tick()
                continue
            byte = self._in.pop(0)
            for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                ctx.set(self.dut.rx, bit)
                await ctx.tick().repeat(self.divisor)

    async def _receive(self, ctx):
        while True:
            while ctx.get(self.dut.tx):
                await ctx.tick()
            await ctx.tick().repeat(self.divisor + self.divisor // 2)
            byte = 0
            for i in range(8):
                byte |= ctx.get(self.dut.tx) << i
                await ctx.tick().repeat(self.divisor)
            assert ctx.get(self.dut.tx) == 1, "stop bit"
            self._out.append(byte)
