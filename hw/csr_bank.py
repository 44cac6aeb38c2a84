"""AXI4-Lite subordinate holding the registers of :mod:`hw.csr_map`."""
from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .axi import RESP_OKAY, RESP_SLVERR, AxiLiteSignature
from .csr_map import REGISTERS

__all__ = ["CsrBank"]


class CsrBank(wiring.Component):
    """The register file behind the host's AXI4-Lite port (32-bit data).

    Every register of ``registers`` becomes a port named after it in lower case:
    ``ro`` registers are inputs the device drives; ``rw`` registers are outputs holding what
    the host wrote (reset value 0, byte strobes honoured); ``wo`` registers are outputs whose
    bits pulse for one cycle when the host writes 1 to them.

    Bus behaviour: a write is taken when both its address and data are valid (AXI allows a
    subordinate to wait for both), then answered on B; a read's address is registered when
    it is taken and the word chosen from that register in the next cycle (its value then),
    answered on R two cycles after the address is taken (the choice among ~40 registers
    stays off the address's source: the bridge's address counter on the boards). One
    transaction per channel is outstanding at a time. Unmapped offsets and writes to
    ``ro`` registers answer ``SLVERR`` and change nothing. Reading the
    low word of a 64-bit ``ro`` register latches its high word, which the next read of the
    high word returns, so a 64-bit counter reads consistently in two accesses.

    Parameters
    ----------
    registers : sequence of :class:`~hw.csr_map.Register`
        The register table (default: :data:`hw.csr_map.REGISTERS`).
    addr_width : int
        Address bits decoded (default 12: a 4 KiB register window).
    kept_bits : mapping of str to int
        ``rw`` registers (by name) that keep only their low ``n`` bits, plus, per byte
        holding higher bits, whether any of those was written as 1 (default: none). Their
        port, and a read, shows the low bits with bit ``n`` set when any higher bit is:
        whether the value is ``>= 2**n`` and, if not, the value. For registers whose user
        only asks that (a DMA address compared against ``2**addr_width``): a 64-bit address
        register of a 17-bit device is 17 flip-flops and 6 flags instead of 64 flip-flops.
    """

    def __init__(self, registers=REGISTERS, *, addr_width=12, kept_bits=None):
        registers = tuple(registers)
        top = max(reg.offset + 4 * reg.words for reg in registers)
        if not isinstance(addr_width, int) or top > 1 << addr_width:
            raise ValueError(f"addr_width must be an integer covering offset {top - 4:#x}, "
                             f"not {addr_width!r}")
        kept_bits = dict(kept_bits or {})
        by_name = {reg.name: reg for reg in registers}
        for name, bits in kept_bits.items():
            reg = by_name.get(name)
            if reg is None or reg.access != "rw":
                raise ValueError(f"kept_bits names rw registers, not {name!r}")
            if not isinstance(bits, int) or isinstance(bits, bool) or not 0 < bits < reg.width:
                raise ValueError(f"kept_bits of {name} must be an integer from 1 to "
                                 f"{reg.width - 1}, not {bits!r}")
        self.kept_bits = kept_bits
        self.registers = registers
        members = {"bus": In(AxiLiteSignature(addr_width=addr_width))}
        for reg in registers:
            members[reg.name.lower()] = (In if reg.access == "ro" else Out)(reg.width)
        super().__init__(members)

    def port(self, reg):
        return getattr(self, reg.name.lower())

    def elaborate(self, platform):
        m = Module()
        self._write_channel(m)
        self._read_channel(m)
        return m

    def _write_channel(self, m):
        bus = self.bus
        bvalid = Signal()
        bresp = Signal(2)
        take = Signal()
        m.d.comb += [
            take.eq(bus.awvalid & bus.wvalid & ~bvalid),
            bus.awready.eq(take), bus.wready.eq(take),
            bus.bvalid.eq(bvalid), bus.bresp.eq(bresp),
        ]
        for reg in self.registers:
            if reg.access == "wo":
                m.d.sync += self.port(reg).eq(0)        # pulses last one cycle
        # registers that keep their low bits and a flag per byte holding higher ones
        targets = {reg.name: self._kept_storage(m, reg) for reg in self.registers
                   if reg.name in self.kept_bits}
        with m.If(bvalid & bus.bready):
            m.d.sync += bvalid.eq(0)
        with m.If(take):
            m.d.sync += [bvalid.eq(1), bresp.eq(RESP_SLVERR)]
            with m.Switch(bus.awaddr[2:]):
                for reg in self.registers:
                    if reg.access == "ro":
                        continue
                    for word in range(reg.words):
                        with m.Case(reg.offset // 4 + word):
                            m.d.sync += bresp.eq(RESP_OKAY)
                            for byte in range(4):
                                lane = slice(8 * byte, 8 * byte + 8)
                                with m.If(bus.wstrb[byte]):
                                    if reg.name in targets:
                                        targets[reg.name](m, 4 * word + byte, bus.wdata[lane])
                                    else:
                                        self._write_byte(m, reg, 4 * word + byte,
                                                         bus.wdata[lane])

    def _write_byte(self, m, reg, byte, value):
        """Byte ``byte`` of ``reg`` from ``value``: only the bits of its fields are stored
        (reserved bits cost no flip-flops, read as 0 and ignore writes)."""
        port = self.port(reg)
        for bit in range(8):
            if reg.stored_mask >> (8 * byte + bit) & 1:
                m.d.sync += port[8 * byte + bit].eq(value[bit])

    def _kept_storage(self, m, reg):
        """The low bits and per-byte flags of a ``kept_bits`` register, shown on its port.
        Returns ``write(m, byte index, byte value)``, the statements of one byte's write."""
        keep = self.kept_bits[reg.name]
        low = Signal(keep, name=f"{reg.name.lower()}_kept")
        high_bytes = range(keep // 8, reg.width // 8)
        flags = Signal(len(high_bytes), name=f"{reg.name.lower()}_above")
        m.d.comb += self.port(reg).eq(Cat(low, flags.any()))

        def write(m, byte, value):
            bits = range(8 * byte, 8 * byte + 8)
            kept = [n for n in bits if n < keep]
            if kept:
                m.d.sync += low[kept[0]:kept[-1] + 1].eq(value[:len(kept)])
            if byte in high_bytes:
                m.d.sync += flags[byte - high_bytes.start].eq(value[len(kept):].any())
        return write

    def _read_channel(self, m):
        bus = self.bus
        rvalid = Signal()
        rresp = Signal(2)
        rdata = Signal(32)
        take = Signal()
        pending = Signal()              # an address taken, its word chosen this cycle
        addr = Signal.like(bus.araddr[2:], name="read_addr")
        m.d.comb += [
            take.eq(bus.arvalid & ~rvalid & ~pending),
            bus.arready.eq(take),
            bus.rvalid.eq(rvalid), bus.rresp.eq(rresp), bus.rdata.eq(rdata),
        ]
        m.d.sync += pending.eq(take)
        with m.If(take):
            m.d.sync += addr.eq(bus.araddr[2:])
        with m.If(rvalid & bus.rready):
            m.d.sync += rvalid.eq(0)
        # The word is chosen combinationally and registered once (case-by-case registered
        # assignments cost ~2x the LUTs on the iCE40).
        selected, mapped = Signal(32), Signal()
        snapshots = []
        with m.Switch(addr):
            for reg in self.registers:
                port = self.port(reg)
                snapshot = None
                if reg.access == "ro" and reg.words == 2:
                    snapshot = Signal(32, name=f"{reg.name.lower()}_high")
                    snapshots.append((reg, snapshot, port))
                for word in range(reg.words):
                    with m.Case(reg.offset // 4 + word):
                        m.d.comb += mapped.eq(1)
                        if reg.access == "wo":
                            continue                    # reads as 0
                        if snapshot is not None and word == 1:
                            m.d.comb += selected.eq(snapshot)
                        else:
                            m.d.comb += selected.eq(port[32 * word:32 * word + 32])
        with m.If(pending):
            m.d.sync += [rvalid.eq(1), rresp.eq(Mux(mapped, RESP_OKAY, RESP_SLVERR)),
                         rdata.eq(selected)]
            for reg, snapshot, port in snapshots:
                with m.If(addr == reg.offset // 4):
                    m.d.sync += snapshot.eq(port[32:])
