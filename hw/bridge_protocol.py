"""The host bridge's framed serial protocol: the one table the gateware, the serial driver
and ``docs/fpga.md`` share.

A request is ``SYNC_REQUEST, cmd, tag, count, addr[4], payload[4 * count if the command
writes], crc[2]``; the reply is ``SYNC_REPLY, status, tag, count, data[4 * count],
crc[2]``. Multi-byte fields are little-endian. The CRC is CRC-16/CCITT-FALSE (polynomial
0x1021, initial value 0xFFFF, no reflection, no final XOR; Python's
``binascii.crc_hqx(data, 0xFFFF)``) over every byte after the sync byte, sent low byte
first. ``python -m hw.bridge_protocol`` prints the tables of ``docs/fpga.md``.
"""
import binascii
from dataclasses import dataclass

__all__ = ["SYNC_REQUEST", "SYNC_REPLY", "CRC_INIT", "CRC_POLY", "HEADER_BYTES",
           "Command", "COMMANDS", "command", "STATUS", "INFO_MAGIC", "PROTOCOL_VERSION",
           "crc16", "encode_request", "encode_reply", "markdown"]

SYNC_REQUEST = 0xA5
SYNC_REPLY = 0x5A
CRC_POLY = 0x1021
CRC_INIT = 0xFFFF
#: sync, cmd, tag, count, addr[4]
HEADER_BYTES = 8
#: The INFO command's first word: ASCII "LBRG" (Loom bridge), little-endian.
INFO_MAGIC = 0x4752424C
PROTOCOL_VERSION = 1


@dataclass(frozen=True)
class Command:
    """One request kind: its code, whether it carries write data, and what it does."""
    name: str
    code: int
    writes: bool
    doc: str


COMMANDS = (
    Command("INFO", 0x00, False,
            "read `count` (1..5) words of the bridge's description from word `addr` / 4: "
            "magic 0x4752424c ('LBRG'), protocol version, memory size in bytes, clock in Hz, "
            "largest `count`"),
    Command("CSR_READ", 0x01, False,
            "read `count` consecutive 32-bit registers from byte offset `addr` (AXI4-Lite)"),
    Command("CSR_WRITE", 0x02, True,
            "write `count` consecutive 32-bit registers from byte offset `addr`"),
    Command("MEM_READ", 0x03, False,
            "read `count` 32-bit words of device memory from byte address `addr`"),
    Command("MEM_WRITE", 0x04, True,
            "write `count` 32-bit words of device memory from byte address `addr`"),
)

#: Reply status byte: code -> (name, meaning).
STATUS = {
    0: ("OK", "done; a read reply carries `count` data words"),
    1: ("BAD_CRC", "the request's CRC did not match: nothing was done"),
    2: ("BAD_COMMAND", "unknown command, `count` of 0 or above the bridge's limit, or an "
                       "address that is not word-aligned: nothing was done"),
    3: ("BUS_ERROR", "a bus access answered SLVERR/DECERR (unmapped register, write to a "
                     "read-only register, address outside memory); words before the failing "
                     "one were done"),
    4: ("TRUNCATED", "the request stopped mid-frame (no byte for the inter-byte timeout): "
                     "nothing was done"),
}


def command(name):
    """The :class:`Command` called ``name``."""
    for cmd in COMMANDS:
        if cmd.name == name:
            return cmd
    raise KeyError(f"no bridge command {name!r}; known: {[c.name for c in COMMANDS]}")


def status_code(name):
    """The numeric status called ``name``."""
    for code, (known, _) in STATUS.items():
        if known == name:
            return code
    raise KeyError(f"no bridge status {name!r}")


def crc16(data, crc=CRC_INIT):
    """CRC-16/CCITT-FALSE of ``data`` (bytes), continuing from ``crc``."""
    return binascii.crc_hqx(bytes(data), crc)


def _words(words):
    return b"".join(int(w).to_bytes(4, "little") for w in words)


def encode_request(cmd, addr, count, tag=0, words=()):
    """A request frame (bytes). ``cmd`` is a :class:`Command` or its name; ``words`` the
    write data (``count`` of them for a writing command)."""
    cmd = command(cmd) if isinstance(cmd, str) else cmd
    body = bytes([cmd.code, tag & 0xFF, count & 0xFF]) + (addr & 0xFFFFFFFF).to_bytes(4, "little")
    body += _words(words)
    return bytes([SYNC_REQUEST]) + body + crc16(body).to_bytes(2, "little")


def encode_reply(status, tag=0, words=()):
    """A reply frame (bytes), as the bridge sends it."""
    words = list(words)
    body = bytes([status, tag & 0xFF, len(words)]) + _words(words)
    return bytes([SYNC_REPLY]) + body + crc16(body).to_bytes(2, "little")


def markdown():
    """The command and status tables of ``docs/fpga.md``."""
    lines = ["| code | command | write data | what it does |", "|---|---|---|---|"]
    lines += [f"| `0x{c.code:02x}` | `{c.name}` | {'yes' if c.writes else 'no'} | {c.doc} |"
              for c in COMMANDS]
    lines += ["", "| status | name | meaning |", "|---|---|---|"]
    lines += [f"| {code} | `{name}` | {doc} |" for code, (name, doc) in STATUS.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
