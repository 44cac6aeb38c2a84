"""``golden`` backend: a functional model of the device that runs descriptor programs with
the NumPy golden models (``tb/golden.py``).

It has the device's registers and host memory and executes exactly what the hardware
executes: it fetches ``DESC_COUNT`` descriptors from ``DESC_ADDR``, checks each one with the
hardware's rules (same error codes), and runs LOAD / COMPUTE / STORE through three queues
of eight with the ISA's dependency tokens. It therefore proves a program (its data layout,
slot use and tokens) independently of the RTL; it is instant.

Scheduling is deliberately adversarial: whenever several commands may run, LOADs run
first, as early as their tokens allow, then COMPUTEs, then STOREs. A program that forgets a
token (a LOAD overwriting a slot still to be read, a STORE racing its COMPUTE) computes a
wrong result here instead of passing by luck. A program whose tokens can never arrive
leaves the device busy, as the hardware would be.

Cycle counters: ``PERF_MACS``, ``PERF_ARRAY_ACTIVE_CYCLES`` and the DMA byte counters are
exact; ``PERF_TOTAL_CYCLES`` and ``PERF_BUSY_CYCLES`` hold the cycle model's prediction
(``sw/cycle_model.py``), the stall counter 0.
"""
from collections import deque

import numpy as np

from hw.csr_map import ERROR_CODES, ID_MAGIC, REGISTERS, VERSION, pack, register
from hw.isa import DESCRIPTOR_BYTES, Opcode, Target, decode
from hw.store_unit import SERIAL_REQUANTIZERS
from tb import golden

from ..errors import TransportError
from ..transport import Transport

__all__ = ["GoldenTransport"]

ERROR = {name: code for code, (name, _) in ERROR_CODES.items()}
QUEUE_DEPTH = 8
PARAM_WORDS = 3
STORE_BYTES = {0: 4, 1: 1, 2: 2}


class GoldenTransport(Transport):
    """A functional Loom device in NumPy.

    Parameters mirror ``hw.accelerator.Accelerator``: ``rows``, ``cols``, ``datapaths``,
    ``data_width`` (bits), ``depth``, ``slots``, ``addr_width``, ``requantizer``,
    ``counter_width``, ``fp32_adder_stages`` (timing only: the cycle model's fp16 beats),
    ``span_multiplier`` (timing only: the descriptor check's steps), ``operand_registers``
    (timing only: 2 cycles per COMPUTE),
    ``array_clock_ratio`` (as the ``rtl`` backend's: timing only), ``lut_multipliers`` (no
    effect), ``product_stages`` (timing only: every COMPUTE's results ``product_stages - 1``
    cycles later),
    ``clear_after_last`` (timing only: every COMPUTE's results a cycle later),
    ``broadcast_operands`` (timing only: every COMPUTE's results ``rows + cols - 2`` cycles
    sooner);
    ``memory_size`` bytes of host memory at address 0.
    """

    name = "golden"

    def __init__(self, rows=8, cols=8, *, datapaths=("int8",), data_width=64, depth=1024,
                 slots=2, addr_width=32, memory_size=64 << 20, requantizer="parallel",
                 counter_width=64, fp32_adder_stages=1, array_clock_ratio=None,
                 lut_multipliers=0, product_stages=1, span_multiplier="dsp",
                 operand_registers=True, clear_after_last=False, broadcast_operands=False):
        from hw.accelerator import Accelerator
        twin = Accelerator(rows, cols, datapaths=datapaths, data_width=data_width, depth=depth,
                           slots=slots, addr_width=addr_width, requantizer=requantizer,
                           counter_width=counter_width,
                           fp32_adder_stages=fp32_adder_stages,
                           lut_multipliers=lut_multipliers, product_stages=product_stages,
                           array_clock=array_clock_ratio is not None,
                           span_multiplier=span_multiplier,
                           operand_registers=operand_registers,
                           clear_after_last=clear_after_last,
                           broadcast_operands=broadcast_operands)   # the same checks
        self.check_steps = twin._check_steps()
        self.direct_operands = not operand_registers
        self.clear_after_last = clear_after_last
        self.broadcast_operands = broadcast_operands
        self.fp32_adder_stages = fp32_adder_stages
        self.product_stages = product_stages
        self.array_clock_ratio = array_clock_ratio
        self.counter_width = counter_width
        self.rows, self.cols, self.datapaths = rows, cols, tuple(datapaths)
        self.beat = data_width // 8
        self.depth, self.slots, self.addr_width = depth, slots, addr_width
        self.requantizer = requantizer
        self.lane = 2 if "fp16" in self.datapaths else 1
        self.memory_base, self.memory_size = 0, memory_size
        self.memory = np.zeros(memory_size, dtype=np.uint8)
        self._regs = {}
        self._by_offset = {}
        for reg in REGISTERS:
            for word in range(reg.words):
                self._by_offset[reg.offset + 4 * word] = (reg, word)
        self._soft_reset()
        self._regs["ID"] = ID_MAGIC
        self._regs["VERSION"] = VERSION[0] << 16 | VERSION[1] << 8 | VERSION[2]
        self._regs["ARRAY_CONFIG"] = pack(
            "ARRAY_CONFIG", rows=rows, cols=cols, int8="int8" in self.datapaths,
            fp16="fp16" in self.datapaths, serial_requant=requantizer in SERIAL_REQUANTIZERS,
            shared_requant=requantizer == "shared", fp16_beat_cycles=fp32_adder_stages,
            array_clock=array_clock_ratio is not None, product_stages=product_stages,
            direct_operands=not operand_registers, clear_after_last=clear_after_last,
            broadcast_operands=broadcast_operands)
        self._regs["BUS_CONFIG"] = self.beat | addr_width << 8 | counter_width << 16 \
            | twin._check_steps() << 24
        self._regs["BUFFER_CONFIG"] = depth | (rows * slots) << 16
        from sw.cycle_model import golden_model  # lazy: the model imports hw.isa
        self.cycle_model = golden_model(self)   # PERF_TOTAL_CYCLES = its prediction

    # --- Transport -------------------------------------------------------------------------
    def read_word(self, offset):
        if offset not in self._by_offset:
            raise TransportError(f"register read at unmapped offset {offset:#x} (SLVERR)")
        reg, word = self._by_offset[offset]
        if reg.access == "wo":
            return 0
        return (self._regs.get(reg.name, 0) >> (32 * word)) & 0xFFFFFFFF

    def write_word(self, offset, value):
        if offset not in self._by_offset or self._by_offset[offset][0].access == "ro":
            raise TransportError(f"register write at {offset:#x}: unmapped or read-only "
                                 f"(SLVERR)")
        reg, word = self._by_offset[offset]
        if reg.name == "CONTROL":
            if value & 2:
                self._soft_reset()
            if value & 1:
                self._run()
            return
        old = self._regs.get(reg.name, 0)
        mask = 0xFFFFFFFF << (32 * word)
        self._regs[reg.name] = (old & ~mask) | ((value & 0xFFFFFFFF) << (32 * word))

    def read_memory(self, addr, length):
        self._check_memory(addr, length)
        return self.memory[addr:addr + length].tobytes()

    def write_memory(self, addr, data):
        self._check_memory(addr, len(data))
        self.memory[addr:addr + len(data)] = np.frombuffer(bytes(data), dtype=np.uint8)

    def wait(self, cycles):
        pass                                # a job runs to its end when it is started

    def _check_memory(self, addr, length):
        if addr < 0 or addr + length > self.memory_size:
            raise TransportError(f"host memory access [{addr:#x}, {addr + length:#x}) outside "
                                 f"the model's {self.memory_size} bytes")

    # --- the device --------------------------------------------------------------------------
    def _soft_reset(self):
        self._regs["STATUS"] = 0
        for reg in REGISTERS:
            if reg.name.startswith("PERF_"):
                self._regs[reg.name] = 0
        self._a = np.zeros((self.slots, self.depth, self.rows), dtype=np.int64)
        self._b = np.zeros((self.slots, self.depth, self.cols), dtype=np.int64)
        self._params = np.zeros((2 * self.slots, PARAM_WORDS, self.cols), dtype=np.uint32)
        self._acc = np.zeros((self.slots, self.rows, self.cols), dtype=np.uint32)

    def _count(self, name, amount):
        """Counters wrap at ``2**counter_width``, as the device's do."""
        self._regs[name] = (self._regs.get(name, 0) + amount) % (1 << self.counter_width)

    def _run(self):
        for reg in REGISTERS:
            if reg.name.startswith("PERF_"):
                self._regs[reg.name] = 0
        self._regs["STATUS"] = 1
        count = self._regs.get("DESC_COUNT", 0)
        at = self._regs.get("DESC_ADDR", 0)
        code = self._table_check(at, count)
        if code:
            self._regs["STATUS"] = 0b100 | code << 8
            return
        descriptors = [self.memory[at + DESCRIPTOR_BYTES * n:at + DESCRIPTOR_BYTES * (n + 1)]
                       .tobytes() for n in range(count)]
        self._count("PERF_DMA_READ_BYTES", DESCRIPTOR_BYTES * count)
        status, code = self._schedule(descriptors)
        self._regs["STATUS"] = status | code << 8
        if self.cycle_model is not None and status == 0b10:
            cycles = self.cycle_model(descriptors)
            self._regs["PERF_TOTAL_CYCLES"] = self._regs["PERF_BUSY_CYCLES"] = cycles

    def _table_check(self, at, count):
        """The descriptor table ``[at, at + 32 * count)``, checked before anything is fetched
        (nothing to check when ``count`` is 0): ``at`` 32-byte aligned, else ``MISALIGNED``;
        inside the DMA window and below ``2**addr_width``, else ``OUT_OF_WINDOW``."""
        if count == 0:
            return 0
        if at % DESCRIPTOR_BYTES:
            return ERROR["MISALIGNED"]
        end = at + DESCRIPTOR_BYTES * count
        base, limit = self._regs.get("WINDOW_BASE", 0), self._regs.get("WINDOW_LIMIT", 0)
        if at < base or end > limit or end > 1 << self.addr_width:
            return ERROR["OUT_OF_WINDOW"]
        return 0

    def _schedule(self, descriptors):
        """Dispatch in order into the unit queues and run them; ``(status bits, code)``."""
        queues = {"load": deque(), "compute": deque(), "store": deque()}
        tokens = {"l2c": 0, "c2l": 0, "c2s": 0, "s2c": 0}
        # unit -> (token to wait from prev, from next, to give prev, to give next)
        chain = {"load": (None, "c2l", None, "l2c"), "compute": ("l2c", "s2c", "c2l", "c2s"),
                 "store": ("c2s", None, "s2c", None)}
        unit_of = {Opcode.LOAD: "load", Opcode.COMPUTE: "compute", Opcode.STORE: "store"}
        pc, error = 0, 0
        while True:
            progress = False
            while pc < len(descriptors) and not error:          # dispatch
                try:
                    opcode, fields = decode(descriptors[pc])
                except ValueError:
                    word = int.from_bytes(descriptors[pc][:1], "little")
                    try:
                        Opcode(word)
                        opcode, fields = Opcode(word), None      # reserved bits: ignored
                    except ValueError:
                        error = ERROR["BAD_OPCODE"]
                        break
                if fields is None:
                    fields = self._fields_ignoring_reserved(descriptors[pc], opcode)
                code = self._check(opcode, fields)
                if code:
                    error = code
                    break
                if opcode in (Opcode.FENCE, Opcode.END):
                    if any(queues.values()):
                        break
                    pc += 1
                    progress = True
                    if opcode == Opcode.END:
                        return 0b10, 0
                    continue
                queue = queues[unit_of[opcode]]
                if len(queue) >= QUEUE_DEPTH:
                    break
                queue.append((opcode, fields))
                pc += 1
                progress = True
            for unit in ("load", "compute", "store"):              # execute
                wait_prev, wait_next, give_prev, give_next = chain[unit]
                queue = queues[unit]
                while queue:
                    opcode, f = queue[0]
                    need = [t for t, flag in ((wait_prev, "wait_prev"), (wait_next, "wait_next"))
                            if t and f[flag]]
                    if any(tokens[t] == 0 for t in need):
                        break
                    for t in need:
                        tokens[t] -= 1
                    queue.popleft()
                    getattr(self, f"_{unit}")(f)
                    for t, flag in ((give_prev, "signal_prev"), (give_next, "signal_next")):
                        if t and f[flag]:
                            tokens[t] += 1
                    progress = True
            if not progress:
                if error:
                    return 0b100, error
                if pc == len(descriptors):
                    return 0b10, 0        # ran out of descriptors without END: all issued
                return 0b1, 0             # tokens that never come: busy for ever (as the RTL)

    @staticmethod
    def _fields_ignoring_reserved(descriptor, opcode):
        from hw.isa import COMMON_FIELDS, FIELDS
        word = int.from_bytes(descriptor, "little")
        return {f.name: (word >> f.bit) & ((1 << f.width) - 1)
                for f in (*COMMON_FIELDS, *FIELDS[opcode]) if f.name != "opcode"}

    # --- checks (hw/sequencer.py: Sequencer._check) -----------------------------------------
    def _row_bytes_load(self, target):
        return {0: self.rows * self.lane, 1: self.cols * self.lane}.get(target, 4 * self.cols)

    def _footprint(self, addr, pitch, rows, row_bytes, load):
        """Bytes the DMA touches from ``addr`` (docs/isa.md: row layouts), or None when the
        pitch is not allowed."""
        beat = self.beat
        if row_bytes >= beat:
            if pitch % beat or (rows > 1 and pitch < row_bytes):
                return None
            return (rows - 1) * pitch + row_bytes
        if pitch == row_bytes:                                  # packed rows
            return -(-rows * row_bytes // beat) * beat
        if load and pitch % beat == 0 and (rows == 1 or pitch >= beat):   # strided
            return (rows - 1) * pitch + beat
        return None

    def _region(self, addr, pitch, rows, row_bytes, bad_size, load):
        if rows == 0 or bad_size:
            return ERROR["BAD_SIZE"]
        span = self._footprint(addr, pitch, rows, row_bytes, load)
        if addr % self.beat or span is None:
            return ERROR["MISALIGNED"]
        base, limit = self._regs.get("WINDOW_BASE", 0), self._regs.get("WINDOW_LIMIT", 0)
        if addr < base or addr + span > limit or addr + span > 1 << self.addr_width:
            return ERROR["OUT_OF_WINDOW"]
        return 0

    def _check(self, opcode, f):
        if opcode == Opcode.LOAD:
            target = f["target"]
            params = target == Target.PARAMS.value
            bad = (f["count"] > (PARAM_WORDS if params else self.depth) or target > 2 or
                   f["slot"] >= (2 * self.slots if params else self.slots))
            return self._region(f["addr"], f["pitch"], f["count"],
                                self._row_bytes_load(target), bad, load=True)
        if opcode == Opcode.COMPUTE:
            fp16 = f["fp16"]
            bad = (f["k"] == 0 or f["k"] > self.depth or
                   max(f["a_slot"], f["b_slot"], f["acc_slot"]) >= self.slots or
                   (fp16 and "fp16" not in self.datapaths) or
                   (not fp16 and "int8" not in self.datapaths))
            return ERROR["BAD_SIZE"] if bad else 0
        if opcode == Opcode.STORE:
            mode = f["mode"]
            bad = (mode == 3 or (mode == 2 and "fp16" not in self.datapaths) or
                   f["slot"] >= self.slots or f["param_slot"] >= 2 * self.slots)
            return self._region(f["addr"], f["pitch"], self.rows,
                                self.cols * STORE_BYTES.get(mode, 4), bad, load=False)
        return 0

    # --- units ---------------------------------------------------------------------------------
    def _beats(self, pitch, count, row_bytes):
        """Bus beats a transfer of ``count`` rows moves."""
        if row_bytes >= self.beat:
            return count * -(-row_bytes // self.beat)
        if pitch == row_bytes:
            return -(-count * row_bytes // self.beat)     # packed
        return count                                      # strided: a beat per row

    def _rows(self, addr, pitch, count, row_bytes):
        index = addr + pitch * np.arange(count)[:, None] + np.arange(row_bytes)[None, :]
        self._count("PERF_DMA_READ_BYTES", self._beats(pitch, count, row_bytes) * self.beat)
        return self.memory[index]

    def _load(self, f):
        target, count = f["target"], f["count"]
        raw = self._rows(f["addr"], f["pitch"], count, self._row_bytes_load(target))
        if target == Target.PARAMS.value:
            self._params[f["slot"], :count] = raw.view("<u4")
            return
        lanes = raw.view("<u2" if self.lane == 2 else "u1").astype(np.int64)
        (self._a if target == Target.A.value else self._b)[f["slot"], :count] = lanes

    def _compute(self, f):
        k, fp16 = f["k"], f["fp16"]
        a = self._a[f["a_slot"], :k].T            # rows x k lanes (raw bits)
        b = self._b[f["b_slot"], :k]              # k x cols
        if fp16:
            result = golden.fp16_gemm(a.astype(np.uint16), b.astype(np.uint16))
        else:
            bits = 16 if self.lane == 2 else 8
            a8 = ((a + (1 << (bits - 1))) % (1 << bits) - (1 << (bits - 1)))
            b8 = ((b + (1 << (bits - 1))) % (1 << bits) - (1 << (bits - 1)))
            result = golden.int8_gemm(a8.astype(np.int8), b8.astype(np.int8)).view(np.uint32)
        slot = f["acc_slot"]
        if f["accumulate"]:
            if fp16:
                result = golden.fp32_add(self._acc[slot], result)
            else:
                result = golden.wrap_int32(self._acc[slot].view(np.int32).astype(np.int64) +
                                           result.view(np.int32)).view(np.uint32)
        self._acc[slot] = result
        self._count("PERF_MACS", self.rows * self.cols * k)
        self._count("PERF_ARRAY_ACTIVE_CYCLES", k)

    def _store(self, f):
        acc = self._acc[f["slot"]]
        mode = f["mode"]
        if mode == 0:
            data = acc.astype("<u4").view(np.uint8).reshape(self.rows, -1)
        elif mode == 1:
            bias, multiplier, packed = self._params[f["param_slot"]].astype(np.int64)
            zero_point = ((packed >> 8) & 0xFF)
            zero_point = np.where(zero_point >= 128, zero_point - 256, zero_point)
            out = golden.requantize(acc.view(np.int32), multiplier.astype(np.uint32)
                                    .view(np.int32), packed & 0x1F, zero_point,
                                    bias=(bias.astype(np.uint32).view(np.int32)
                                          if f["bias"] else 0), relu=bool(f["relu"]))
            data = out.view(np.uint8)
        else:
            data = golden.fp32_to_fp16(acc).astype("<u2").view(np.uint8).reshape(self.rows, -1)
        index = f["addr"] + f["pitch"] * np.arange(self.rows)[:, None] + \
            np.arange(data.shape[1])[None, :]
        self.memory[index] = data
        self._count("PERF_DMA_WRITE_BYTES",
                    self._beats(f["pitch"], self.rows, data.shape[1]) * self.beat)


def register_value(transport, name):
    """Convenience for tests: a whole (possibly 64-bit) register of a transport."""
    reg = register(name)
    return sum(transport.read_word(reg.offset + 4 * w) << (32 * w) for w in range(reg.words))
