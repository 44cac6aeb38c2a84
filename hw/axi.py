"""AMBA AXI4 and AXI4-Lite port signatures, with members named as the AXI specification
names them (``awaddr``, ``awvalid``, ...), so that flattened ports (``csr__awaddr``) match
cocotbext-axi's bus models (``AxiLiteBus.from_prefix(dut, "csr", bus_separator="__")``).

Signatures are written from the manager's (master's) side; a subordinate port is
``In(AxiLiteSignature(...))``.
"""
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AxiLiteSignature", "AxiSignature", "RESP_OKAY", "RESP_SLVERR", "RESP_DECERR",
           "BURST_INCR", "connect_members"]

RESP_OKAY, RESP_EXOKAY, RESP_SLVERR, RESP_DECERR = 0, 1, 2, 3
BURST_INCR = 1


def _check_width(name, value, allowed):
    if not isinstance(value, int) or isinstance(value, bool) or value not in allowed:
        if isinstance(allowed, range) and allowed.step == 1:
            raise ValueError(f"{name} must be an integer from {allowed.start} to "
                             f"{allowed.stop - 1}, not {value!r}")
        raise ValueError(f"{name} must be one of {sorted(allowed)}, not {value!r}")


class AxiLiteSignature(wiring.Signature):
    """AXI4-Lite: ``addr_width``-bit addresses, 32- or 64-bit data, byte strobes."""

    def __init__(self, *, addr_width, data_width=32):
        _check_width("addr_width", addr_width, range(1, 65))
        _check_width("data_width", data_width, {32, 64})
        self.addr_width = addr_width
        self.data_width = data_width
        super().__init__({
            "awaddr": Out(addr_width), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wvalid": Out(1),
            "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_width), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
            "rdata": In(data_width), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
        })

    def __eq__(self, other):
        return (isinstance(other, AxiLiteSignature) and other.addr_width == self.addr_width
                and other.data_width == self.data_width)

    def __repr__(self):
        return f"AxiLiteSignature(addr_width={self.addr_width}, data_width={self.data_width})"


def _write_members(addr_width, data_width, id_width):
    return {
        "awid": Out(id_width), "awaddr": Out(addr_width), "awlen": Out(8),
        "awsize": Out(3), "awburst": Out(2), "awlock": Out(1), "awcache": Out(4),
        "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
        "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wlast": Out(1),
        "wvalid": Out(1), "wready": In(1),
        "bid": In(id_width), "bresp": In(2), "bvalid": In(1), "bready": Out(1),
    }


def _read_members(addr_width, data_width, id_width):
    return {
        "arid": Out(id_width), "araddr": Out(addr_width), "arlen": Out(8),
        "arsize": Out(3), "arburst": Out(2), "arlock": Out(1), "arcache": Out(4),
        "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
        "rid": In(id_width), "rdata": In(data_width), "rresp": In(2), "rlast": In(1),
        "rvalid": In(1), "rready": Out(1),
    }


class AxiSignature(wiring.Signature):
    """AXI4 (full) with bursts: ``addr_width``-bit addresses, ``data_width`` of 32 to 1024
    bits, ``id_width``-bit IDs. ``len`` is 8 bits (up to 256 beats), ``size`` 3 bits.

    ``channels`` selects ``"read"`` (AR, R), ``"write"`` (AW, W, B) or ``"both"``: a DMA
    reader and writer each own one half of the accelerator's single AXI4 port.
    """

    def __init__(self, *, addr_width, data_width, id_width=4, channels="both"):
        _check_width("addr_width", addr_width, range(12, 65))
        _check_width("data_width", data_width, {32, 64, 128, 256, 512, 1024})
        _check_width("id_width", id_width, range(1, 17))
        if channels not in ("read", "write", "both"):
            raise ValueError(f"channels must be 'read', 'write' or 'both', not {channels!r}")
        self.addr_width = addr_width
        self.data_width = data_width
        self.id_width = id_width
        self.channels = channels
        members = {}
        if channels in ("write", "both"):
            members.update(_write_members(addr_width, data_width, id_width))
        if channels in ("read", "both"):
            members.update(_read_members(addr_width, data_width, id_width))
        super().__init__(members)

    def __eq__(self, other):
        return (isinstance(other, AxiSignature) and other.addr_width == self.addr_width
                and other.data_width == self.data_width and other.id_width == self.id_width
                and other.channels == self.channels)

    def __repr__(self):
        return (f"AxiSignature(addr_width={self.addr_width}, data_width={self.data_width}, "
                f"id_width={self.id_width}, channels={self.channels!r})")


def connect_members(m, manager, port):
    """Drive ``port``'s members of the same names from the manager-side interface ``manager``
    (its outputs onto ``port``, ``port``'s answers back): unlike ``wiring.connect``, ``port``
    may have more members (a read-only manager on a full AXI4 port) or wider ones (a narrower
    address is zero-extended)."""
    for name, member in manager.signature.members.items():
        ours, theirs = getattr(manager, name), getattr(port, name)
        m.d.comb += (theirs.eq(ours) if member.flow == Out else ours.eq(theirs))
