"""The descriptor table: encode/decode round trips, checks, and the generated docs."""
import pytest

from hw.isa import DESCRIPTOR_BYTES, FIELDS, Opcode, Target, decode, encode, markdown
from sim.toolchain import REPO_ROOT


def test_round_trip_of_every_field(rng):
    for opcode, fields in FIELDS.items():
        for _ in range(50):
            values = {f.name: int(rng.integers(0, 1 << min(f.width, 62))) for f in fields}
            values.update(wait_prev=1, signal_next=int(rng.integers(0, 2)))
            raw = encode(opcode, **values)
            assert len(raw) == DESCRIPTOR_BYTES
            got_opcode, got = decode(raw)
            assert got_opcode == opcode
            assert {k: got[k] for k in values} == values
            assert all(v == 0 for k, v in got.items() if k not in values)


def test_field_positions_are_the_documented_ones():
    raw = encode(Opcode.LOAD, target=Target.B, slot=1, count=0x1234, pitch=0x40,
                 addr=0x1_0000_2000, signal_next=1)
    words = [int.from_bytes(raw[4 * n:4 * n + 4], "little") for n in range(8)]
    assert words == [0x01 | 1 << 11 | 1 << 12 | 1 << 16, 0x1234, 0x40, 0, 0x2000, 1, 0, 0]


@pytest.mark.parametrize("call, message", [
    (lambda: encode(Opcode.COMPUTE, k=1 << 16), "does not fit"),
    (lambda: encode(Opcode.END, addr=0), "has no field"),
    (lambda: decode(bytes([0x77]) + bytes(31)), "0x77"),
    (lambda: decode(encode(Opcode.END)[:4] + b"\x01" + bytes(27)), "reserved"),
])
def test_bad_descriptors_are_rejected(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_isa_docs_are_generated_from_the_table():
    assert (REPO_ROOT / "docs" / "isa.md").read_text() == markdown(), (
        "docs/isa.md is stale: run '.venv/bin/python -m hw.isa > docs/isa.md'")
