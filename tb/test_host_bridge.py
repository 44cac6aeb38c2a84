"""HostBridge in Amaranth's simulator: every command, corrupted and truncated frames, bad
commands, bus errors and timeouts, and status polling, against AXI4-Lite models."""
import pytest

from hw.bridge_protocol import (
    INFO_MAGIC,
    PROTOCOL_VERSION,
    Command,
    command,
    encode_request,
    status_code,
)
from hw.host_bridge import HostBridge
from tb.bridge_tb import BridgeTB, LiteSubordinate, parse_replies

OK, BAD_CRC, BAD_COMMAND, BUS_ERROR, TRUNCATED = (
    status_code(n) for n in ("OK", "BAD_CRC", "BAD_COMMAND", "BUS_ERROR", "TRUNCATED"))
MAX_WORDS = 8
BYTE_TIMEOUT = 300


def make_bridge(**kwargs):
    args = dict(max_words=MAX_WORDS, byte_timeout=BYTE_TIMEOUT, bus_timeout=64,
                mem_size=0x10000, clock_hz=30_000_000)
    args.update(kwargs)
    return HostBridge(**args)


def random_words(rng, n):
    return [int(x) for x in rng.integers(0, 2**32, n, dtype="uint64")]


def test_writes_and_reads_registers_and_memory(rng):
    tb = BridgeTB(make_bridge(), rng)
    regs = random_words(rng, 3)
    mem = random_words(rng, MAX_WORDS)
    frames = [
        encode_request("CSR_WRITE", 0x40, 3, tag=1, words=regs),
        encode_request("MEM_WRITE", 0x8000, MAX_WORDS, tag=2, words=mem),
        encode_request("CSR_READ", 0x40, 3, tag=3),
        encode_request("MEM_READ", 0x8004, MAX_WORDS - 1, tag=4),
        encode_request("INFO", 0, 5, tag=5),
        encode_request("INFO", 8, 1, tag=6),
    ]
    replies = parse_replies(tb.run(frames))
    assert [(r.status, r.tag, r.crc_ok) for r in replies] == [
        (OK, tag, True) for tag in range(1, 7)]
    assert [r.words for r in replies[:2]] == [[], []]
    assert replies[2].words == regs
    assert replies[3].words == mem[1:]
    assert replies[4].words == [INFO_MAGIC, PROTOCOL_VERSION, 0x10000, 30_000_000, MAX_WORDS]
    assert replies[5].words == [0x10000]
    assert tb.csr.words == {0x40 + 4 * i: w for i, w in enumerate(regs)}
    assert tb.mem.words == {0x8000 + 4 * i: w for i, w in enumerate(mem)}


def test_ignores_noise_between_frames(rng):
    tb = BridgeTB(make_bridge(), rng)
    noise = bytes([0x00, 0xFF, 0x5A, 0x13])
    frames = [noise, encode_request("CSR_WRITE", 0x24, 1, tag=9, words=[0x3]), noise,
              encode_request("CSR_READ", 0x24, 1, tag=10)]
    replies = parse_replies(tb.run(frames))
    assert [(r.status, r.tag, r.words) for r in replies] == [(OK, 9, []), (OK, 10, [3])]


@pytest.mark.parametrize("trial", range(6))
def test_a_corrupted_frame_changes_nothing(rng, trial):
    """One flipped bit anywhere after the sync byte: an error reply, nothing written; after
    the line goes quiet a good frame works."""
    tb = BridgeTB(make_bridge(), rng)
    good = encode_request("MEM_WRITE", 0x100, 4, tag=7, words=random_words(rng, 4))
    bad = bytearray(good)
    bit = int(rng.integers(8, 8 * len(bad)))
    bad[bit // 8] ^= 1 << (bit % 8)
    check = encode_request("MEM_READ", 0x100, 1, tag=8)
    replies = parse_replies(tb.run([bytes(bad), check], gap=2 * BYTE_TIMEOUT))
    assert replies[0].status in (BAD_CRC, TRUNCATED), f"bit {bit}"
    assert replies[0].words == [] and replies[0].crc_ok
    assert tb.mem.words == {}
    assert tb.mem.accesses == [("read", 0x100)]
    assert (replies[-1].status, replies[-1].tag, replies[-1].words) == (OK, 8, [0])


def test_a_truncated_frame_times_out_and_changes_nothing(rng):
    tb = BridgeTB(make_bridge(), rng)
    frame = encode_request("CSR_WRITE", 0x24, 2, tag=3, words=[1, 2])
    after = encode_request("CSR_READ", 0x24, 1, tag=4)
    replies = parse_replies(tb.run([frame[:10], after], gap=2 * BYTE_TIMEOUT))
    assert [(r.status, r.tag) for r in replies] == [(TRUNCATED, 3), (OK, 4)]
    assert tb.csr.words == {}


@pytest.mark.parametrize("cmd,addr,count", [
    (Command("UNKNOWN", 0x07, False, ""), 0, 1),
    ("CSR_READ", 0, 0),          # no words
    ("MEM_READ", 0, MAX_WORDS + 1),
    ("MEM_WRITE", 0, MAX_WORDS + 1),
    ("MEM_WRITE", 0x102, 1),     # misaligned
    ("INFO", 12, 3),             # past the description
])
def test_bad_commands_are_refused(rng, cmd, addr, count):
    writes = command(cmd).writes if isinstance(cmd, str) else cmd.writes
    tb = BridgeTB(make_bridge(), rng)
    frame = encode_request(cmd, addr, count, tag=5,
                           words=random_words(rng, count) if writes else ())
    replies = parse_replies(tb.run([frame]))
    assert [(r.status, r.tag, r.words) for r in replies] == [(BAD_COMMAND, 5, [])]
    assert tb.mem.accesses == [] and tb.csr.accesses == []


def test_bus_errors_stop_the_request(rng):
    csr = LiteSubordinate(errors={0x48})
    tb = BridgeTB(make_bridge(), rng, csr=csr)
    frames = [
        encode_request("CSR_WRITE", 0x40, 4, tag=1, words=[11, 12, 13, 14]),
        encode_request("CSR_READ", 0x48, 1, tag=2),
        encode_request("CSR_READ", 0xFFC, 2, tag=3),     # runs past the 4 KiB CSR space
        encode_request("CSR_READ", 0x40, 2, tag=4),
    ]
    replies = parse_replies(tb.run(frames))
    assert [(r.status, r.tag, r.words) for r in replies] == [
        (BUS_ERROR, 1, []), (BUS_ERROR, 2, []), (BUS_ERROR, 3, []), (OK, 4, [11, 12])]
    assert csr.words == {0x40: 11, 0x44: 12}       # the words before the failing one


def test_a_stuck_bus_times_out(rng):
    tb = BridgeTB(make_bridge(), rng, mem=LiteSubordinate(stuck=True))
    frames = [encode_request("MEM_READ", 0, 1, tag=1), encode_request("CSR_READ", 0, 1, tag=2)]
    replies = parse_replies(tb.run(frames))
    assert [(r.status, r.tag) for r in replies] == [(BUS_ERROR, 1), (OK, 2)]


def test_polls_the_status_register_while_idle(rng):
    csr = LiteSubordinate(words={0x28: 0x0000_0701})
    tb = BridgeTB(make_bridge(status_offset=0x28, poll_interval=32), rng, csr=csr)
    replies = parse_replies(tb.run([encode_request("CSR_READ", 0x28, 1, tag=1)], tail=300))
    assert replies[0].words == [0x701]
    assert tb.status_seen[-1] == 0x701
    assert csr.accesses.count(("read", 0x28)) >= 3     # polls besides the request


@pytest.mark.parametrize("kwargs,match", [
    ({"max_words": 0}, "max_words"), ({"max_words": 256}, "max_words"),
    ({"byte_timeout": 4}, "byte_timeout"), ({"status_offset": 0x29}, "status_offset"),
    ({"bus_timeout": 1.5}, "bus_timeout"),
])
def test_parameters_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HostBridge(**kwargs)


def test_docs_carry_the_protocol_tables():
    from pathlib import Path

    from hw.bridge_protocol import markdown
    doc = (Path(__file__).resolve().parent.parent / "docs" / "fpga.md").read_text()
    assert markdown() in doc, "docs/fpga.md is stale: paste `python -m hw.bridge_protocol`"
