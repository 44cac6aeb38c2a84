"""Amaranth-simulator harness for the host bridge: AXI4-Lite subordinate models, a byte-stream
driver and a reply parser."""
from dataclasses import dataclass, field

from amaranth.sim import Simulator

from hw.axi import RESP_OKAY, RESP_SLVERR
from hw.bridge_protocol import SYNC_REPLY, crc16

__all__ = ["LiteSubordinate", "Reply", "parse_replies", "BridgeTB"]


@dataclass
class LiteSubordinate:
    """An AXI4-Lite subordinate over a dict of 32-bit words (byte address -> word).

    Addresses in ``errors`` answer SLVERR and change nothing; with ``stuck`` the
    subordinate never raises a ready. ``ready_rate`` is the chance a ready is high in a
    cycle, ``latency`` the cycles from a request to its response.
    """
    words: dict = field(default_factory=dict)
    errors: set = field(default_factory=set)
    stuck: bool = False
    ready_rate: float = 0.7
    latency: int = 1
    accesses: list = field(default_factory=list)

    async def run(self, ctx, bus, rng):
        read = write_addr = write_data = None
        read_wait = write_wait = 0
        while True:
            ar_ready = not self.stuck and read is None and rng.random() < self.ready_rate
            aw_ready = not self.stuck and write_addr is None and rng.random() < self.ready_rate
            w_ready = not self.stuck and write_data is None and rng.random() < self.ready_rate
            r_valid = read is not None and read_wait == 0
            b_valid = write_addr is not None and write_data is not None and write_wait == 0
            ctx.set(bus.arready, ar_ready)
            ctx.set(bus.awready, aw_ready)
            ctx.set(bus.wready, w_ready)
            ctx.set(bus.rvalid, r_valid)
            ctx.set(bus.bvalid, b_valid)
            if r_valid:
                ctx.set(bus.rdata, self.words.get(read, 0) if read not in self.errors else 0)
                ctx.set(bus.rresp, RESP_SLVERR if read in self.errors else RESP_OKAY)
            if b_valid:
                ctx.set(bus.bresp, RESP_SLVERR if write_addr in self.errors else RESP_OKAY)
            ar = ar_ready and ctx.get(bus.arvalid)
            aw = aw_ready and ctx.get(bus.awvalid)
            w = w_ready and ctx.get(bus.wvalid)
            r_done = r_valid and ctx.get(bus.rready)
            b_done = b_valid and ctx.get(bus.bready)
            araddr, awaddr = ctx.get(bus.araddr), ctx.get(bus.awaddr)
            wdata, wstrb = ctx.get(bus.wdata), ctx.get(bus.wstrb)
            await ctx.tick()
            read_wait = max(read_wait - 1, 0)
            if r_done:
                self.accesses.append(("read", read))
                read = None
            if b_done:
                self.accesses.append(("write", write_addr))
                if write_addr not in self.errors:
                    assert write_data[1] == 0xF, "the bridge writes whole words"
                    self.words[write_addr] = write_data[0]
                write_addr = write_data = None
            elif write_addr is not None and write_data is not None:
                write_wait = max(write_wait - 1, 0)
            if ar:
                read, read_wait = araddr, self.latency
            if aw:
                write_addr, write_wait = awaddr, self.latency
            if w:
                write_data = (wdata, wstrb)


@dataclass
class Reply:
    status: int
    tag: int
    words: list
    crc_ok: bool


def parse_replies(data):
    """Split the bridge's output bytes into :class:`Reply` frames (asserting their framing)."""
    replies, data = [], bytes(data)
    while data:
        assert data[0] == SYNC_REPLY, f"reply does not start with the sync byte: {data.hex()}"
        count = data[3]
        size = 4 + 4 * count + 2
        assert len(data) >= size, f"short reply: {data.hex()}"
        body = data[1:size - 2]
        crc_ok = crc16(body) == int.from_bytes(data[size - 2:size], "little")
        words = [int.from_bytes(body[3 + 4 * i:7 + 4 * i], "little") for i in range(count)]
        replies.append(Reply(data[1], data[2], words, crc_ok))
        data = data[size:]
    return replies


class BridgeTB:
    """Runs a :class:`~hw.host_bridge.HostBridge` with a CSR and a memory model.

    :meth:`run` sends the given byte chunks (each chunk followed by ``gap`` idle cycles)
    with random pauses, accepts reply bytes with random backpressure and returns them.
    """

    def __init__(self, bridge, rng, csr=None, mem=None):
        self.bridge, self.rng = bridge, rng
        self.csr = csr if csr is not None else LiteSubordinate()
        self.mem = mem if mem is not None else LiteSubordinate()
        self.status_seen = []

    def run(self, chunks, gap=0, tail=2000, pause_rate=0.2, ready_rate=0.6):
        bridge, rng = self.bridge, self.rng
        out = bytearray()

        async def driver(ctx):
            for chunk in chunks:
                for byte in chunk:
                    while rng.random() < pause_rate:
                        ctx.set(bridge.rx.valid, 0)
                        await ctx.tick()
                    ctx.set(bridge.rx.valid, 1)
                    ctx.set(bridge.rx.payload, byte)
                    while True:
                        ready = ctx.get(bridge.rx.ready)
                        await ctx.tick()
                        if ready:
                            break
                    ctx.set(bridge.rx.valid, 0)
                await ctx.tick().repeat(gap + 1)
            await ctx.tick().repeat(tail)

        async def receiver(ctx):
            while True:
                ready = rng.random() < ready_rate
                ctx.set(bridge.tx.ready, ready)
                if ready and ctx.get(bridge.tx.valid):
                    out.append(ctx.get(bridge.tx.payload))
                self.status_seen.append(ctx.get(bridge.status))
                await ctx.tick()

        async def csr(ctx):
            await self.csr.run(ctx, bridge.csr, rng)

        async def mem(ctx):
            await self.mem.run(ctx, bridge.mem, rng)

        sim = Simulator(bridge)
        sim.add_clock(1e-8)
        sim.add_testbench(driver)
        sim.add_testbench(receiver, background=True)
        sim.add_testbench(csr, background=True)
        sim.add_testbench(mem, background=True)
        sim.run()
        return bytes(out)
