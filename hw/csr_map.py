"""The accelerator's control/status registers: the single table docs and drivers derive from.

``python -m hw.csr_map`` prints ``docs/registers.md``; ``tb/test_csr_bank.py`` checks that the
committed file matches this table, so the two never drift apart.

Access kinds
------------
``ro``  read-only, driven by the device (a read has no side effect, except that reading the
        low word of a 64-bit register snapshots its high word, so ``LO`` then ``HI`` reads a
        consistent 64-bit value).
``rw``  read/write, holds what the host wrote (byte strobes honoured); the device reads it.
``wo``  write-only command bits: writing 1 pulses the bit for one clock cycle; reads as 0.

Writes to ``ro`` registers and any access to an unmapped offset get an AXI ``SLVERR``
response and change nothing.
"""
from dataclasses import dataclass

__all__ = ["Field", "Register", "REGISTERS", "ERROR_CODES", "ID_MAGIC", "VERSION",
           "register", "pack", "markdown"]

ID_MAGIC = 0x4C4F4F4D   # "LOOM"
VERSION = (0, 6, 0)     # major, minor, patch of the register interface (0.3.0:
#                         BUS_CONFIG.counter_bits; int8-only builds answer STORE mode 2,
#                         fp16 output, with BAD_SIZE; 0.4.0: ARRAY_CONFIG.shared_requant;
#                         0.5.0: ARRAY_CONFIG.fp16_beat_cycles, .array_clock; 0.6.0:
#                         DESC_ADDR, DESC_COUNT, WINDOW_* keep only the bits the checks use,
#                         BUS_CONFIG.check_steps, ARRAY_CONFIG.product_stages)


@dataclass(frozen=True)
class Field:
    """``width`` bits from bit ``lsb`` of a register."""
    name: str
    lsb: int
    width: int
    doc: str

    @property
    def mask(self):
        return ((1 << self.width) - 1) << self.lsb


@dataclass(frozen=True)
class Register:
    """One register at byte ``offset``; 64-bit registers take two words (``offset`` holds the
    low half, ``offset + 4`` the high half)."""
    name: str
    offset: int
    access: str
    doc: str
    fields: tuple = ()
    width: int = 32

    def __post_init__(self):
        if self.access not in ("ro", "rw", "wo"):
            raise ValueError(f"{self.name}: access must be ro, rw or wo, not {self.access!r}")
        if self.width not in (32, 64) or self.offset % 4:
            raise ValueError(f"{self.name}: width 32/64 at a word-aligned offset")
        for field in self.fields:
            if field.lsb + field.width > self.width:
                raise ValueError(f"{self.name}.{field.name} does not fit {self.width} bits")

    @property
    def words(self):
        return self.width // 32

    @property
    def stored_mask(self):
        """The bits a ``rw`` register keeps: its fields', or all of them if it declares none
        (since 0.6.0 the bits outside the fields read as 0 and ignore writes)."""
        if not self.fields:
            return (1 << self.width) - 1
        mask = 0
        for field in self.fields:
            mask |= field.mask
        return mask


def _counter(name, offset, doc):
    return Register(name, offset, "ro", doc + " 64-bit; cleared by start and soft reset.",
                    width=64)


#: Error codes reported in ``STATUS.error_code`` (0 = no error).
ERROR_CODES = {
    0: ("NONE", "no error"),
    1: ("BAD_OPCODE", "a descriptor had an unknown opcode"),
    2: ("BAD_SIZE", "a descriptor had a zero or too large size"),
    3: ("MISALIGNED", "an address or pitch was not aligned as the ISA requires"),
    4: ("OUT_OF_WINDOW", "a transfer would touch memory outside the DMA window"),
    5: ("AXI_READ_ERROR", "SLVERR or DECERR on the AXI read data channel"),
    6: ("AXI_WRITE_ERROR", "SLVERR or DECERR on the AXI write response channel"),
    7: ("TIMEOUT", "a watchdog expired waiting on the bus or a unit"),
}

#: How the address registers hold what is written: the checks only ask whether an address is
#: 2**addr_bits or more, and if not, what it is.
_KEPT = (" Keeps its bits below addr_bits and whether any higher bit is set, read as 1 at "
         "bit addr_bits (since 0.6.0).")

REGISTERS = (
    Register("ID", 0x000, "ro", f"Identifies a Loom accelerator: reads {ID_MAGIC:#010x} "
             "(ASCII 'LOOM').", (Field("magic", 0, 32, "the magic number"),)),
    Register("VERSION", 0x004, "ro", "Version of this register interface.",
             (Field("patch", 0, 8, "patch"), Field("minor", 8, 8, "minor"),
              Field("major", 16, 8, "major"))),
    Register("ARRAY_CONFIG", 0x008, "ro", "The systolic array's shape and datapaths.",
             (Field("rows", 0, 8, "array rows"), Field("cols", 8, 8, "array columns"),
              Field("int8", 16, 1, "int8 datapath present"),
              Field("fp16", 17, 1, "fp16 datapath present"),
              Field("serial_requant", 18, 1, "the int8 requantiser is bit-serial: an INT8 "
                    "STORE takes 66 cycles per result row (no DSP multipliers)"),
              Field("shared_requant", 19, 1, "with serial_requant: one bit-serial "
                    "requantiser serves the columns in turn, an INT8 STORE takes "
                    "cols * 65 cycles per result row (since 0.4.0)"),
              Field("fp16_beat_cycles", 20, 2, "cycles per fp16 operand beat: 1, or 3 "
                    "when the binary32 adders are three register stages (a higher clock; "
                    "same results); 0 (before 0.5.0) means 1"),
              Field("array_clock", 22, 1, "the array runs on a clock of its own (commonly "
                    "faster); PERF_* cycle counts are system clock cycles (since 0.5.0)"),
              Field("product_stages", 23, 2, "registers of each PE's int8 product: 1, or 2 "
                    "or 3 (pipelined for the clock; every tile's results one or two array "
                    "cycles later, same results); 0 (before 0.6.0) means 1"),
              Field("direct_operands", 25, 1, "the operand buffers feed the array without "
                    "their output registers and register slice: a COMPUTE takes 2 cycles "
                    "fewer (since 0.6.0)"),
              Field("clear_after_last", 26, 1, "each PE's int8 result is taken from its "
                    "accumulator the cycle after the tile's last beat, which clears it: "
                    "every tile's results one array cycle later (since 0.6.0)"),
              Field("broadcast_operands", 27, 1, "each operand beat reaches all PEs of its "
                    "row and column at once instead of flowing through the array (small "
                    "arrays): every tile's results rows + cols - 2 array cycles sooner "
                    "(since 0.6.0)"))),
    Register("BUS_CONFIG", 0x00C, "ro", "The AXI4 memory port.",
             (Field("data_bytes", 0, 8, "data bus width in bytes (4, 8, 16 or 32)"),
              Field("addr_bits", 8, 8, "address width in bits"),
              Field("counter_bits", 16, 8, "width of the PERF_* counters, which wrap at "
                    "2**counter_bits (32 to 64; 0 on devices before 0.3.0 means 64)"),
              Field("check_steps", 24, 8, "cycles the descriptor check's serial span "
                    "multiply takes (0: one cycle, not serial); on a 4-byte bus a descriptor "
                    "is dispatched at most every 11 + check_steps - 1 cycles (since 0.6.0)"))),
    Register("BUFFER_CONFIG", 0x010, "ro", "On-chip buffer sizes.",
             (Field("operand_depth", 0, 16, "beats (K) one operand buffer holds"),
              Field("acc_depth", 16, 16, "result rows the accumulator buffer holds, all slots "
                    "(rows x slots: the driver derives the slot count)"))),
    Register("CONTROL", 0x020, "wo", "Commands.",
             (Field("start", 0, 1, "fetch and run DESC_COUNT descriptors from DESC_ADDR"),
              Field("soft_reset", 1, 1, "abort any job and return to idle; clears STATUS"))),
    Register("IRQ_ENABLE", 0x024, "rw", "Raise the interrupt line when STATUS.done or "
             "STATUS.error is set.",
             (Field("done", 0, 1, "interrupt on done"),
              Field("error", 1, 1, "interrupt on error"))),
    Register("STATUS", 0x028, "ro", "Job state; done and error stay set until the next start "
             "or soft reset.",
             (Field("busy", 0, 1, "a job is running"), Field("done", 1, 1, "the job finished"),
              Field("error", 2, 1, "the job stopped on an error"),
              Field("error_code", 8, 8, "why (see the error code table)"))),
    Register("DESC_ADDR", 0x030, "rw", "Host address of the first descriptor (32-byte aligned). "
             "The table (DESC_COUNT x 32 bytes) must lie inside the DMA window and below "
             "2**addr_bits: else a start stops with MISALIGNED or OUT_OF_WINDOW before "
             "anything is fetched (since 0.4.0)." + _KEPT, width=64),
    Register("DESC_COUNT", 0x038, "rw", "Number of descriptors to run. Keeps its bits below "
             "addr_bits - 4 (a longer table reaches past 2**addr_bits) and whether any higher "
             "bit is set, read as 1 at bit addr_bits - 4 (since 0.6.0).",
             (Field("count", 0, 32, "descriptors"),)),
    Register("WINDOW_BASE", 0x040, "rw", "Lowest host address the DMA may touch." + _KEPT,
             width=64),
    Register("WINDOW_LIMIT", 0x048, "rw", "One past the highest host address the DMA may touch."
             + _KEPT, width=64),
    _counter("PERF_TOTAL_CYCLES", 0x100, "Clock cycles since the last start."),
    _counter("PERF_BUSY_CYCLES", 0x108, "Cycles with STATUS.busy set."),
    _counter("PERF_ARRAY_ACTIVE_CYCLES", 0x110, "Cycles in which the array accepted an "
             "operand beat."),
    _counter("PERF_MACS", 0x118, "Multiply-accumulates issued (rows x cols per beat)."),
    _counter("PERF_DMA_READ_BYTES", 0x120, "Bytes read over AXI (descriptors included)."),
    _counter("PERF_DMA_WRITE_BYTES", 0x128, "Bytes written over AXI."),
    _counter("PERF_DMA_STALL_CYCLES", 0x130, "Cycles the array waited for the DMA."),
)


def register(name):
    """The :class:`Register` called ``name``."""
    for reg in REGISTERS:
        if reg.name == name:
            return reg
    raise KeyError(f"no register {name!r}; have {[r.name for r in REGISTERS]}")


def pack(name, **values):
    """The word of read-only register ``name`` whose fields hold ``values`` (Python ints or
    bools), so the device and the golden backend build it from the one table."""
    fields = {field.name: field for field in register(name).fields}
    word = 0
    for key, value in values.items():
        field = fields[key]
        if not 0 <= int(value) < 1 << field.width:
            raise ValueError(f"{name}.{key} is {field.width} bits; {value!r} does not fit")
        word |= int(value) << field.lsb
    return word


def _check_table():
    used = {}
    for reg in REGISTERS:
        for word in range(reg.words):
            offset = reg.offset + 4 * word
            if offset in used:
                raise ValueError(f"{reg.name} overlaps {used[offset]} at {offset:#x}")
            used[offset] = reg.name


_check_table()


def markdown():
    """The register map as Markdown (the text of ``docs/registers.md``)."""
    lines = ["# Loom registers (AXI4-Lite)", "",
             "Generated by `python -m hw.csr_map` from `hw/csr_map.py`; do not edit by hand.",
             "", "Access: `ro` read-only (device-driven), `rw` read/write, `wo` write-1 "
             "command pulses (read as 0). A `rw` register with fields keeps only their bits: "
             "the others read as 0 and ignore writes (since 0.6.0). Writes to `ro` registers "
             "and accesses to unmapped offsets return `SLVERR`. A 64-bit register's low "
             "word is at its offset and its high word 4 bytes above; reading the low word "
             "of a `ro` 64-bit register snapshots the high word.", "",
             "| offset | register | access | bits | description |",
             "|---|---|---|---|---|"]
    for reg in REGISTERS:
        lines.append(f"| `{reg.offset:#05x}` | `{reg.name}` | {reg.access} | {reg.width} "
                     f"| {reg.doc} |")
        for field in reg.fields:
            bits = (f"{field.lsb}" if field.width == 1
                    else f"{field.lsb + field.width - 1}:{field.lsb}")
            lines.append(f"| | `.{field.name}` | | `[{bits}]` | {field.doc} |")
    lines += ["", "## Error codes (`STATUS.error_code`)", "", "| code | name | meaning |",
              "|---|---|---|"]
    lines += [f"| {code} | `{name}` | {doc} |" for code, (name, doc) in ERROR_CODES.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
