"""``serial`` backend: a Loom board over its UART host bridge (``docs/fpga.md``).

Every register access and every memory transfer is one or more request frames
(``hw/bridge_protocol.py``): CRC-16 checked both ways, tagged, answered by a status reply.
The board describes itself with the INFO command (memory size, clock), so nothing but the
port and baud rate has to be given.

Retries: a request the bridge reports as not done (``BAD_CRC``, ``TRUNCATED``) is sent
again after the line goes quiet; so is a read whose reply was lost or corrupted. A write
whose reply was lost is not repeated (a repeated ``CONTROL.start`` would start a second
job): it raises :class:`~sw.errors.TransportError`.
"""
import time

from hw.bridge_protocol import (
    INFO_MAGIC,
    PROTOCOL_VERSION,
    STATUS,
    SYNC_REPLY,
    command,
    crc16,
    encode_request,
)

from ..errors import TransportError
from ..transport import Transport

__all__ = ["SerialTransport"]

_NOT_DONE = ("BAD_CRC", "TRUNCATED")


class SerialTransport(Transport):
    """A Loom board behind the UART host bridge.

    Parameters
    ----------
    port : str
        Serial device (the iCEBreaker's and the ULX3S's FTDI UART is usually the second
        interface, ``/dev/ttyUSB1``). Ignored when ``port_object`` is given.
    baud : int
        The bitstream's baud rate (``fpga/bitstream.py``'s board table; 115200).
    port_object : object
        Anything with ``read(n)``, ``write(bytes)`` and a ``timeout`` attribute (a
        ``serial.Serial``, or a simulated line in tests); ``reset_input_buffer()`` is used
        when present.
    timeout : float
        Seconds to wait for a reply byte.
    retries : int
        How many times a request the bridge did not execute is sent again.
    quiet_time : float
        Seconds of silence that make the bridge abandon a partial frame (its byte timeout,
        50 ms in the board builds) plus margin: waited before a retry.
    """

    name = "serial"

    def __init__(self, port="/dev/ttyUSB1", baud=115_200, *, port_object=None, timeout=1.0,
                 retries=3, quiet_time=0.1):
        self._owned = port_object is None
        if port_object is None:
            try:
                import serial
            except ImportError as exc:    # pragma: no cover - pyserial is a dependency
                raise TransportError("pyserial is not installed: pip install pyserial") \
                    from exc
            try:
                port_object = serial.Serial(port, baud, timeout=timeout)
            except (OSError, serial.SerialException) as exc:
                raise TransportError(f"cannot open serial port {port!r} at {baud} baud: "
                                     f"{exc}; is the board plugged in and the port right "
                                     f"(ls /dev/ttyUSB*)?") from exc
        self.port, self.port_name = port_object, port
        self.retries, self.quiet_time = retries, quiet_time
        self._tag = 0
        self._closed = False
        self.max_words = 5
        magic, version, size, clock, max_words = self._request("INFO", 0, 5)
        if magic != INFO_MAGIC:
            raise TransportError(f"the device on {port!r} answered INFO with magic "
                                 f"{magic:#010x}, not a Loom bridge ({INFO_MAGIC:#010x}): "
                                 f"wrong port or bitstream?")
        if version != PROTOCOL_VERSION:
            raise TransportError(f"bridge protocol version {version}, this driver speaks "
                                 f"{PROTOCOL_VERSION}: rebuild the bitstream or update sw/")
        self.memory_base, self.memory_size = 0, size
        self.clock_hz = clock or None
        self.max_words = max_words

    # -- Transport ---------------------------------------------------------------------------

    def read_word(self, offset):
        return self._request("CSR_READ", offset, 1)[0]

    def write_word(self, offset, value):
        self._request("CSR_WRITE", offset, 1, [value & 0xFFFFFFFF])

    def read_memory(self, addr, length):
        self._check_range(addr, length)
        start, end = addr & ~3, (addr + length + 3) & ~3
        data = bytearray()
        for chunk in range(start, end, 4 * self.max_words):
            count = min(self.max_words, (end - chunk) // 4)
            for word in self._request("MEM_READ", chunk, count):
                data += word.to_bytes(4, "little")
        return bytes(data[addr - start:addr - start + length])

    def write_memory(self, addr, data):
        data = bytes(data)
        self._check_range(addr, len(data))
        if not data:
            return
        start, end = addr & ~3, (addr + len(data) + 3) & ~3
        if start != addr or end != addr + len(data):     # keep the rest of edge words
            padded = bytearray(end - start)
            if start != addr:
                padded[:4] = self.read_memory(start, 4)
            if end != addr + len(data):
                padded[-4:] = self.read_memory(end - 4, 4)
            padded[addr - start:addr - start + len(data)] = data
            data = bytes(padded)
        words = [int.from_bytes(data[i:i + 4], "little") for i in range(0, len(data), 4)]
        for i in range(0, len(words), self.max_words):
            self._request("MEM_WRITE", start + 4 * i, len(words[i:i + self.max_words]),
                          words[i:i + self.max_words])

    def wait(self, cycles):
        time.sleep(cycles / self.clock_hz if self.clock_hz else 0.001)

    def close(self):
        if not self._closed:
            self._closed = True
            if self._owned:
                self.port.close()

    # -- the protocol ------------------------------------------------------------------------

    def _check_range(self, addr, length):
        if addr < self.memory_base or addr + length > self.memory_base + self.memory_size:
            raise TransportError(f"memory access [{addr:#x}, {addr + length:#x}) is outside "
                                 f"the board's {self.memory_size} bytes at "
                                 f"{self.memory_base:#x}")

    def _request(self, name, addr, count, words=()):
        """Send one request; return the reply's data words. Retries what may be retried."""
        cmd = command(name)
        for attempt in range(self.retries + 1):
            self._tag = (self._tag + 1) & 0xFF
            self.port.write(encode_request(cmd, addr, count, self._tag, words))
            try:
                status, data = self._reply(self._tag)
            except TransportError:
                if cmd.writes or attempt == self.retries:
                    raise
                self._resync()
                continue
            name_, meaning = STATUS.get(status, (f"status {status}", "unknown status"))
            if name_ == "OK":
                if len(data) != (0 if cmd.writes else count):
                    raise TransportError(f"{name} at {addr:#x}: {len(data)} words in the "
                                         f"reply, expected {count}")
                return data
            if name_ in _NOT_DONE and attempt < self.retries:
                self._resync()
                continue
            where = "register offset" if name.startswith("CSR") else "address"
            raise TransportError(f"{name} of {count} word(s) at {where} {addr:#x} failed: "
                                 f"{name_}: {meaning}")
        raise AssertionError("unreachable")

    def _read_exactly(self, n, what):
        data = bytearray()
        while len(data) < n:
            chunk = self.port.read(n - len(data))
            if not chunk:
                raise TransportError(f"timed out waiting for the {what} from the board on "
                                     f"{self.port_name!r} (got {len(data)} of {n} bytes): "
                                     f"is the bitstream loaded and the baud rate right?")
            data += chunk
        return bytes(data)

    def _reply(self, tag):
        """Read replies until the one tagged ``tag``; return (status, words)."""
        for _ in range(16):                  # stale replies of abandoned requests
            skipped = 0
            while self._read_exactly(1, "reply")[0] != SYNC_REPLY:
                skipped += 1
                if skipped > 4096:
                    raise TransportError("no reply sync byte in 4096 bytes: wrong baud rate?")
            head = self._read_exactly(3, "reply header")
            body = head + self._read_exactly(4 * head[2], "reply data")
            crc = int.from_bytes(self._read_exactly(2, "reply CRC"), "little")
            if crc16(body) != crc:
                raise TransportError("the reply's CRC did not match: noise on the line")
            if head[1] == tag:
                words = [int.from_bytes(body[3 + 4 * i:7 + 4 * i], "little")
                         for i in range(head[2])]
                return head[0], words
        raise TransportError("16 replies in a row had the wrong tag")

    def _resync(self):
        """Wait until the bridge has dropped any partial frame, then drop stale input."""
        time.sleep(self.quiet_time)
        if hasattr(self.port, "reset_input_buffer"):
            self.port.reset_input_buffer()
