"""What a Loom device is made of, as its configuration registers report it."""
from dataclasses import dataclass

from hw.csr_map import ID_MAGIC, VERSION, register

from .errors import TransportError, UnsupportedError

__all__ = ["HardwareConfig", "read_config"]


def _field(value, reg_name, field_name):
    for field in register(reg_name).fields:
        if field.name == field_name:
            return (value >> field.lsb) & ((1 << field.width) - 1)
    raise KeyError(field_name)


@dataclass(frozen=True)
class HardwareConfig:
    """A device's array, datapaths, bus and buffers (``docs/registers.md``).

    ``beat_bytes``: AXI data width in bytes; ``depth``: words (the largest K of one COMPUTE)
    per operand slot; ``slots``: operand and result slots (double buffering = 2), with
    ``2 * slots`` requantisation parameter slots; ``lane_bytes``: bytes per operand lane in
    host memory (2 when the build has the fp16 datapath, whose int8 operands are stored
    widened to 16 bits; else 1); ``serial_requant``: INT8 stores go through bit-serial
    requantisers (same results, 66 cycles a row); ``shared_requant``: one of them serves
    every column in turn (``cols * 65`` cycles a row); ``counter_bits``: the ``PERF_*``
    counters wrap at ``2**counter_bits``; ``fp16_beat_cycles``: cycles per fp16 operand beat
    (3 in builds whose binary32 adders are pipelined for the clock, else 1);
    ``array_clock``: the array has a clock of its own (its frequency is the board's, not
    a register's: the cycle model takes it as ``Timing.array_ratio``); ``check_steps``:
    cycles of the descriptor check's serial span multiply (0: not serial); ``product_stages``:
    registers of each PE's int8 product (2: every COMPUTE's results a cycle later);
    ``direct_operands``: no operand output registers (a COMPUTE 2 cycles shorter);
    ``clear_after_last``: the PEs' results leave a cycle after the tile's last beat (a
    COMPUTE a cycle longer); ``broadcast_operands``: operands reach every PE at once (a
    COMPUTE ``rows + cols - 2`` cycles shorter).
    """
    rows: int
    cols: int
    int8: bool
    fp16: bool
    beat_bytes: int
    addr_bits: int
    depth: int
    slots: int
    version: tuple = VERSION
    serial_requant: bool = False
    counter_bits: int = 64
    shared_requant: bool = False
    fp16_beat_cycles: int = 1
    array_clock: bool = False
    check_steps: int = 0
    product_stages: int = 1
    direct_operands: bool = False
    clear_after_last: bool = False
    broadcast_operands: bool = False

    @property
    def datapaths(self):
        return tuple(name for name in ("int8", "fp16") if getattr(self, name))

    @property
    def lane_bytes(self):
        return 2 if self.fp16 else 1

    @property
    def param_slots(self):
        return 2 * self.slots

    def describe(self):
        return (f"{self.rows}x{self.cols} array ({'+'.join(self.datapaths)}), "
                f"{8 * self.beat_bytes}-bit bus, depth {self.depth}, {self.slots} slots")


def read_config(read_word):
    """The :class:`HardwareConfig` of the device whose registers ``read_word(offset)`` reads.

    Raises :class:`TransportError` when the device does not identify as Loom and
    :class:`UnsupportedError` when its register interface has a different major version.
    """
    def reg(name):
        return read_word(register(name).offset)

    magic = reg("ID")
    if magic != ID_MAGIC:
        raise TransportError(f"the device's ID register reads {magic:#010x}, not Loom's "
                             f"{ID_MAGIC:#010x}: wrong port, wrong bitstream or no device")
    version = reg("VERSION")
    version = (version >> 16 & 0xFF, version >> 8 & 0xFF, version & 0xFF)
    if version[0] != VERSION[0]:
        raise UnsupportedError(f"the device's register interface is version "
                               f"{'.'.join(map(str, version))}; this driver speaks "
                               f"{VERSION[0]}.x: update the driver or the bitstream")
    array, bus, buffers = reg("ARRAY_CONFIG"), reg("BUS_CONFIG"), reg("BUFFER_CONFIG")
    rows = _field(array, "ARRAY_CONFIG", "rows")
    return HardwareConfig(
        rows=rows, cols=_field(array, "ARRAY_CONFIG", "cols"),
        int8=bool(_field(array, "ARRAY_CONFIG", "int8")),
        fp16=bool(_field(array, "ARRAY_CONFIG", "fp16")),
        beat_bytes=_field(bus, "BUS_CONFIG", "data_bytes"),
        addr_bits=_field(bus, "BUS_CONFIG", "addr_bits"),
        depth=_field(buffers, "BUFFER_CONFIG", "operand_depth"),
        slots=max(1, _field(buffers, "BUFFER_CONFIG", "acc_depth") // rows),
        version=version, serial_requant=bool(_field(array, "ARRAY_CONFIG", "serial_requant")),
        shared_requant=bool(_field(array, "ARRAY_CONFIG", "shared_requant")),
        fp16_beat_cycles=_field(array, "ARRAY_CONFIG", "fp16_beat_cycles") or 1,
        array_clock=bool(_field(array, "ARRAY_CONFIG", "array_clock")),
        product_stages=_field(array, "ARRAY_CONFIG", "product_stages") or 1,
        direct_operands=bool(_field(array, "ARRAY_CONFIG", "direct_operands")),
        clear_after_last=bool(_field(array, "ARRAY_CONFIG", "clear_after_last")),
        broadcast_operands=bool(_field(array, "ARRAY_CONFIG", "broadcast_operands")),
        counter_bits=_field(bus, "BUS_CONFIG", "counter_bits") or 64,
        check_steps=_field(bus, "BUS_CONFIG", "check_steps"))
