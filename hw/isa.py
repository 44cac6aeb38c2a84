"""Loom's descriptor instruction set: the single table that hardware, driver and docs use.

``python -m hw.isa`` prints ``docs/isa.md``; ``tb/test_isa.py`` checks the committed file
against this table and round-trips :func:`encode` / :func:`decode`.

A descriptor is 32 bytes (eight little-endian 32-bit words) in host memory; the device
fetches ``DESC_COUNT`` of them from ``DESC_ADDR``. Word 0 holds the opcode and the four
dependency flags every instruction has; the other fields depend on the opcode. Bits not
named by a field are reserved and must be zero.

Execution model (see ``docs/accelerator.md``): descriptors are dispatched in order to three
units that run concurrently: LOAD -> COMPUTE -> STORE. Ordering between units is explicit,
as in TVM VTA: ``wait_prev`` / ``wait_next`` make the instruction wait for (and consume) a
token from the previous / next unit in that chain, ``signal_prev`` / ``signal_next`` give
one to it when the instruction finishes. ``FENCE`` waits for every unit to be idle; ``END``
finishes the job once everything before it has completed.

Rows, pitches and packing. Let ``B`` be the bus width in bytes (``BUS_CONFIG[7:0]``) and
``S`` the size of one host row in bytes: for LOAD A ``rows * lane``, LOAD B ``cols * lane``
(``lane`` is 1 in int8-only builds, 2 in builds with fp16), LOAD PARAMS ``4 * cols``; for
STORE ``cols * 4`` (mode 0), ``cols`` (mode 1) or ``cols * 2`` (mode 2). A build only exists
if every such ``S`` is a power-of-two multiple or fraction of ``B``. The rules (checked
before anything moves; the first failing one stops the job, in this order: ``BAD_SIZE``,
``MISALIGNED``, ``OUT_OF_WINDOW``):

* ``addr`` is a multiple of ``B``, always.
* ``S >= B``: row ``n`` is at ``addr + n * pitch``; ``pitch`` is a multiple of ``B`` and, with
  more than one row, at least ``S``. The footprint is ``[addr, addr + (n - 1) * pitch + S)``.
* ``S < B`` and ``pitch == S``: *packed* rows, back to back from ``addr``; the device moves
  them as one block of ``ceil(n * S / B)`` whole beats, ``B / S`` rows a beat, the first row
  in the lowest bytes. A LOAD may end in a partial beat: its bytes past the last row are read
  and ignored. A STORE always writes whole beats: a build with rows narrower than a beat
  requires ``rows * S`` to be a multiple of ``B`` (there are no byte strobes), so it writes
  exactly ``rows * S`` bytes. The footprint is the whole block of beats.
* ``S < B``, LOAD, ``pitch`` a multiple of ``B`` (and at least ``B`` with more than one row):
  *strided* rows, row ``n`` is the first ``S`` bytes of the beat at ``addr + n * pitch``,
  which is read whole; the footprint is ``[addr, addr + (n - 1) * pitch + B)``.
* Any other pitch is ``MISALIGNED``; so is a STORE of rows narrower than a beat with a pitch
  other than ``S`` (it would have to write part of a beat).
* The whole footprint lies in ``[WINDOW_BASE, WINDOW_LIMIT)``, else ``OUT_OF_WINDOW``.

Compilers for a bus wider than the words therefore lay operands out tile by tile (the ``K``
words of a tile back to back, each tile's block starting on a beat) and start any partial
load (a chunk of ``K``) on a beat: ``k0 * S`` a multiple of ``B``.
"""
from dataclasses import dataclass

from amaranth.lib import enum

__all__ = ["Opcode", "OPCODE_DOCS", "Target", "TARGET_DOCS", "DescField", "COMMON_FIELDS",
           "FIELDS", "DESCRIPTOR_BYTES", "encode", "decode", "markdown"]

DESCRIPTOR_BYTES = 32


class Opcode(enum.Enum, shape=8):
    """Instruction opcodes (word 0, bits 7:0); meanings in :data:`OPCODE_DOCS`."""
    LOAD = 0x01
    COMPUTE = 0x02
    STORE = 0x03
    FENCE = 0x04
    END = 0x0F


OPCODE_DOCS = {
    Opcode.LOAD: "Copies `count` host rows (row n at `addr + n * pitch`, one buffer word "
                 "each; packed rows back to back when they are narrower than a beat and "
                 "`pitch` is the row size) into words `0 .. count-1` of a buffer slot. "
                 "LOAD unit.",
    Opcode.COMPUTE: "Streams words `0 .. k-1` of an A slot and a B slot through the array as "
                    "one tile and writes (or adds) the result rows into a result slot. "
                    "COMPUTE unit.",
    Opcode.STORE: "Writes the rows of a result slot to host memory (row r at "
                  "`addr + r * pitch`; packed back to back when they are narrower than a "
                  "beat), converted as `mode` says. STORE unit.",
    Opcode.FENCE: "Waits until every unit is idle before dispatching further.",
    Opcode.END: "Last instruction: when everything before it has completed, STATUS.done is "
                "set (and the IRQ raised if enabled).",
}


class Target(enum.Enum, shape=2):
    """Buffers a LOAD can fill; meanings in :data:`TARGET_DOCS`."""
    A = 0
    B = 1
    PARAMS = 2


TARGET_DOCS = {
    Target.A: "operand A: word k = column k of the A tile (`rows` lanes), so A is read from "
              "host memory as A transposed (K x M, row-major)",
    Target.B: "operand B: word k = row k of the B tile (`cols` lanes), B row-major (K x N)",
    Target.PARAMS: "requantisation parameters, three words of `cols` int32 lanes: bias, "
                   "multiplier, `shift | zero_point << 8`",
}


@dataclass(frozen=True)
class DescField:
    """``width`` bits at bit ``lsb`` of 32-bit word ``word`` (64-bit fields span two)."""
    name: str
    word: int
    lsb: int
    width: int
    doc: str

    @property
    def bit(self):
        """Offset of the field's least significant bit in the 256-bit descriptor."""
        return 32 * self.word + self.lsb


COMMON_FIELDS = (
    DescField("opcode", 0, 0, 8, "an `Opcode`"),
    DescField("wait_prev", 0, 8, 1, "wait for a token from the previous unit"),
    DescField("wait_next", 0, 9, 1, "wait for a token from the next unit"),
    DescField("signal_prev", 0, 10, 1, "give a token to the previous unit when done"),
    DescField("signal_next", 0, 11, 1, "give a token to the next unit when done"),
)

FIELDS = {
    Opcode.LOAD: (
        DescField("target", 0, 12, 2, "a `Target`: A, B or PARAMS"),
        DescField("slot", 0, 16, 4, "buffer slot to fill"),
        DescField("count", 1, 0, 16, "host rows = buffer words to load (1 .. buffer depth)"),
        DescField("pitch", 2, 0, 32, "bytes from one host row to the next: a multiple of the "
                  "bus width, or the row size for packed rows narrower than a beat"),
        DescField("addr", 4, 0, 64, "host address of the first row (bus-aligned)"),
    ),
    Opcode.COMPUTE: (
        DescField("a_slot", 0, 16, 4, "A buffer slot"),
        DescField("b_slot", 0, 20, 4, "B buffer slot"),
        DescField("acc_slot", 0, 24, 4, "result slot written"),
        DescField("accumulate", 0, 28, 1, "add to the result slot instead of overwriting it "
                  "(K split over several COMPUTEs): int32, wrapping, for int8 tiles; one "
                  "binary32 addition per element, round to nearest even, for fp16 tiles "
                  "(`acc = fp32_add(acc, chunk sum)`, `tb/golden.py`)"),
        DescField("fp16", 0, 29, 1, "use the fp16 datapath (builds with both datapaths)"),
        DescField("k", 1, 0, 16, "reduction length K (1 .. buffer depth)"),
    ),
    Opcode.STORE: (
        DescField("slot", 0, 16, 4, "result slot to store"),
        DescField("mode", 0, 20, 2, "0 raw int32/fp32, 1 int8 requantised, 2 fp16 "
                  "(builds with the fp16 datapath: BAD_SIZE in int8-only builds)"),
        DescField("relu", 0, 22, 1, "int8 mode: clamp below at the zero point"),
        DescField("bias", 0, 23, 1, "int8 mode: add the parameter slot's bias"),
        DescField("param_slot", 0, 24, 4, "int8 mode: parameter slot"),
        DescField("pitch", 2, 0, 32, "bytes from one host row to the next: a multiple of the "
                  "bus width; exactly the row size when rows are narrower than a beat "
                  "(packed)"),
        DescField("addr", 4, 0, 64, "host address of result row 0 (bus-aligned)"),
    ),
    Opcode.FENCE: (),
    Opcode.END: (),
}


def _check_table():
    for opcode, fields in FIELDS.items():
        used = {}
        for field in (*COMMON_FIELDS, *fields):
            for bit in range(field.bit, field.bit + field.width):
                if bit in used or bit >= 8 * DESCRIPTOR_BYTES:
                    raise ValueError(f"{opcode.name}.{field.name} overlaps "
                                     f"{used.get(bit, 'the end')} at bit {bit}")
                used[bit] = field.name


_check_table()


def encode(opcode, **values):
    """The 32 bytes of one descriptor. Unknown or out-of-range fields raise ``ValueError``."""
    opcode = Opcode(opcode)
    fields = {f.name: f for f in (*COMMON_FIELDS, *FIELDS[opcode])}
    word = opcode.value
    for name, value in values.items():
        if name not in fields or name == "opcode":
            raise ValueError(f"{opcode.name} has no field {name!r}; it has "
                             f"{sorted(set(fields) - {'opcode'})}")
        value = int(value.value if isinstance(value, enum.Enum) else value)
        if not 0 <= value < 1 << fields[name].width:
            raise ValueError(f"{opcode.name}.{name} = {value} does not fit "
                             f"{fields[name].width} bits")
        word |= value << fields[name].bit
    return word.to_bytes(DESCRIPTOR_BYTES, "little")


def decode(descriptor):
    """``(Opcode, {field: value})`` of 32 descriptor bytes; raises on an unknown opcode or
    set reserved bits."""
    if len(bytes(descriptor)) != DESCRIPTOR_BYTES:
        raise ValueError(f"a descriptor is {DESCRIPTOR_BYTES} bytes, not {len(descriptor)}")
    word = int.from_bytes(bytes(descriptor), "little")
    try:
        opcode = Opcode(word & 0xFF)
    except ValueError:
        raise ValueError(f"unknown opcode {word & 0xFF:#04x}") from None
    values, known = {}, 0
    for field in (*COMMON_FIELDS, *FIELDS[opcode]):
        mask = ((1 << field.width) - 1) << field.bit
        known |= mask
        values[field.name] = (word & mask) >> field.bit
    if word & ~known:
        raise ValueError(f"{opcode.name} descriptor has reserved bits set: "
                         f"{word & ~known:#x}")
    del values["opcode"]
    return opcode, values


def _bits(field):
    if field.width == 1:
        return f"[{field.lsb}]"
    if field.width > 32:
        return f"[31:0] + word {field.word + 1}"
    return f"[{field.lsb + field.width - 1}:{field.lsb}]"


def markdown():
    """The instruction set as Markdown (the text of ``docs/isa.md``)."""
    lines = ["# Loom descriptor instruction set", "",
             "Generated by `python -m hw.isa` from `hw/isa.py`; do not edit by hand.", "",
             *__doc__.split("\n\n", 2)[2].strip().split("\n"), "",
             "## Fields of every descriptor", "",
             "| field | word | bits | meaning |", "|---|---|---|---|"]
    lines += [f"| `{f.name}` | {f.word} | `{_bits(f)}` | {f.doc} |" for f in COMMON_FIELDS]
    for opcode, fields in FIELDS.items():
        lines += ["", f"## `{opcode.name}` (opcode `{opcode.value:#04x}`)", "",
                  OPCODE_DOCS[opcode], ""]
        if not fields:
            lines.append("No further fields.")
            continue
        lines += ["| field | word | bits | meaning |", "|---|---|---|---|"]
        lines += [f"| `{f.name}` | {f.word} | `{_bits(f)}` | {f.doc} |" for f in fields]
    lines += ["", "## Targets of LOAD", "", "| value | target | words |", "|---|---|---|"]
    lines += [f"| {t.value} | `{t.name}` | {TARGET_DOCS[t]} |" for t in Target]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
