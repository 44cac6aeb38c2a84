"""SerialTransport against a Python model of the bridge (faults included) and against the
real HostBridge in Amaranth's simulator."""
import pytest

from hw.host_bridge import HostBridge
from sw.backends.serial import SerialTransport
from sw.errors import TransportError
from tb.bridge_model import ModelPort, SimulatedBridgePort
from tb.bridge_tb import LiteSubordinate


def transport(port):
    return SerialTransport(port_object=port, quiet_time=0)


def test_discovers_the_board_from_info():
    port = ModelPort(memory_size=8192, clock_hz=24_000_000, max_words=16)
    t = transport(port)
    assert (t.memory_base, t.memory_size, t.clock_hz, t.max_words) == (0, 8192, 24e6, 16)


def test_registers_and_unaligned_memory_round_trip(rng):
    port = ModelPort(memory_size=4096, max_words=8)
    port.memory[:] = rng.bytes(4096)
    t = transport(port)
    t.write_word(0x40, 0xDEADBEEF)
    assert port.registers[0x40] == 0xDEADBEEF
    assert t.read_word(0x40) == 0xDEADBEEF
    for _ in range(20):
        addr = int(rng.integers(0, 4000))
        length = int(rng.integers(0, 4096 - addr))
        data = rng.bytes(length)
        before = bytes(port.memory)
        t.write_memory(addr, data)
        expected = before[:addr] + data + before[addr + length:]
        assert bytes(port.memory) == expected
        assert t.read_memory(addr, length) == data
    assert max(count for _, _, count in port.requests) == 8


def test_retries_requests_the_bridge_did_not_execute():
    port = ModelPort()
    t = transport(port)
    port.corrupt_requests = 2
    t.write_word(0x24, 3)
    assert port.registers[0x24] == 3
    assert [r for r in port.requests if r[0] == "CSR_WRITE"] == [("CSR_WRITE", 0x24, 1)]


def test_retries_reads_with_lost_or_corrupted_replies():
    port = ModelPort()
    port.registers[0x28] = 0x700
    t = transport(port)
    port.drop_replies, port.corrupt_replies = 1, 1
    assert t.read_word(0x28) == 0x700


def test_a_write_whose_reply_was_lost_raises():
    port = ModelPort()
    t = transport(port)
    port.drop_replies = 1
    with pytest.raises(TransportError, match="timed out"):
        t.write_word(0x20, 1)


def test_errors_say_what_failed():
    port = ModelPort(memory_size=1024)
    port.bad_registers.add(0x44)
    t = transport(port)
    with pytest.raises(TransportError, match="BUS_ERROR"):
        t.read_word(0x44)
    with pytest.raises(TransportError, match="outside"):
        t.read_memory(1020, 8)
    port.corrupt_requests = 10
    with pytest.raises(TransportError, match="BAD_CRC"):
        t.read_word(0)


def test_refuses_a_port_that_is_not_a_bridge():
    class Silent:
        timeout = 0.01

        def write(self, data):
            return len(data)

        def read(self, n):
            return b""

    with pytest.raises(TransportError, match="timed out"):
        transport(Silent())


def test_talks_to_the_simulated_bridge(rng):
    csr, mem = LiteSubordinate(words={0x0: 0x4C4F4F4D}), LiteSubordinate()
    bridge = HostBridge(max_words=8, byte_timeout=200, mem_size=1024, clock_hz=12_000_000)
    t = transport(SimulatedBridgePort(bridge, csr, mem, rng))
    assert (t.memory_size, t.clock_hz, t.max_words) == (1024, 12e6, 8)
    assert t.read_word(0) == 0x4C4F4F4D
    t.write_memory(6, bytes(range(1, 31)))
    assert mem.words[8] == 0x06050403
    assert t.read_memory(6, 30) == bytes(range(1, 31))
