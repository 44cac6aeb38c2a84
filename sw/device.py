"""The driver: a Loom device opened on a backend, speaking in matrices.

>>> from sw import open_device
>>> with open_device("golden", rows=8, cols=8) as dev:
...     c = dev.matmul(a, b)                    # int8 x int8 -> int32, tiled on the array

The device's configuration registers say what the hardware is (array, datapaths, bus,
buffers); the compiler (``sw/compiler.py``) adapts to it. A job is: check the arguments,
compile, place data and descriptors in host memory, point the DMA window at the backend's
memory, start, poll ``STATUS``, read the results and the perf counters, free the memory.
A device error becomes a :class:`~sw.errors.DeviceError`; the device is soft-reset so the
next job starts clean.
"""
import time
from dataclasses import dataclass

from hw.csr_map import ERROR_CODES, register

from .allocator import Allocator
from .compiler import compile_gemms
from .config import read_config
from .errors import DeviceError, LoomError
from .gemm import gemm_spec

__all__ = ["Device", "RunStats"]

_COUNTERS = ("PERF_TOTAL_CYCLES", "PERF_BUSY_CYCLES", "PERF_ARRAY_ACTIVE_CYCLES", "PERF_MACS",
             "PERF_DMA_READ_BYTES", "PERF_DMA_WRITE_BYTES", "PERF_DMA_STALL_CYCLES")

_HINTS = {
    "BAD_OPCODE": "the program is corrupt; recompile it",
    "BAD_SIZE": "a descriptor exceeds this hardware's buffers; recompile for its config",
    "MISALIGNED": "buffers must be aligned to the bus width",
    "OUT_OF_WINDOW": "the data lies outside the DMA window; allocate it with the driver",
    "AXI_READ_ERROR": "host memory refused a read; check the memory map",
    "AXI_WRITE_ERROR": "host memory refused a write; check the memory map",
    "TIMEOUT": "the bus stopped answering; check the memory and its clock",
}


@dataclass
class RunStats:
    """Perf counters of one job (cycles of the device clock) and the useful work done."""
    cycles: int
    busy_cycles: int
    array_active_cycles: int
    macs_issued: int
    dma_read_bytes: int
    dma_write_bytes: int
    dma_stall_cycles: int
    macs: int                # useful MACs (without padding)
    peak_macs_per_cycle: int
    descriptors: int
    wall_s: float

    @property
    def utilisation(self):
        """Useful MACs per peak MAC slot over the whole job."""
        return self.macs / (self.peak_macs_per_cycle * self.cycles) if self.cycles else 0.0

    @property
    def issued_utilisation(self):
        """MACs the array issued (padding included) per peak MAC slot: the counters' view."""
        return self.macs_issued / (self.peak_macs_per_cycle * self.cycles) if self.cycles \
            else 0.0


class Device:
    """A Loom device on a :class:`~sw.transport.Transport`.

    ``poll_cycles``: cycles between STATUS polls; ``progress``: show a progress bar (tqdm) of
    device cycles while a job runs (default: only on slow, simulated backends).
    """

    def __init__(self, transport, *, poll_cycles=512, progress=None):
        self.transport = transport
        self.config = read_config(transport.read_word)
        self.poll_cycles = poll_cycles
        self.progress = transport.name == "rtl" if progress is None else progress
        self.allocator = Allocator(transport.memory_base, transport.memory_size,
                                   align=max(64, self.config.beat_bytes))
        self.last_stats = None
        self.write_reg("CONTROL", 2)                    # soft reset: a clean start
        self.write_reg("WINDOW_BASE", transport.memory_base)
        self.write_reg("WINDOW_LIMIT", transport.memory_base + transport.memory_size)

    # --- registers -------------------------------------------------------------------------
    def read_reg(self, name):
        """A register by name (64-bit registers read low word first, as the hardware wants)."""
        reg = register(name)
        return sum(self.transport.read_word(reg.offset + 4 * w) << (32 * w)
                   for w in range(reg.words))

    def write_reg(self, name, value):
        reg = register(name)
        for w in range(reg.words):
            self.transport.write_word(reg.offset + 4 * w, (value >> (32 * w)) & 0xFFFFFFFF)

    # --- jobs --------------------------------------------------------------------------------
    def run(self, program, *, timeout_cycles=None, expected_cycles=None):
        """Run a compiled :class:`~sw.compiler.Program`; return its :class:`RunStats`.

        Raises :class:`DeviceError` when the device reports an error (it is then soft-reset)
        and :class:`LoomError` when it is still busy after ``timeout_cycles``.
        """
        started = time.perf_counter()
        for addr, data in program.image:
            self.transport.write_memory(addr, data)
        self.write_reg("DESC_ADDR", program.desc_addr)
        self.write_reg("DESC_COUNT", len(program.descriptors))
        self.write_reg("CONTROL", 1)
        rows, cols = self.config.rows, self.config.cols
        if timeout_cycles is None:
            volume = sum(len(d) for _, d in program.buffers) // self.config.beat_bytes
            timeout_cycles = 20 * (program.macs // (rows * cols) + volume) + 200_000
        bar = None
        if self.progress:
            from tqdm import tqdm
            bar = tqdm(total=expected_cycles or timeout_cycles, unit="cyc", unit_scale=True,
                       desc=f"{self.transport.name} job", leave=False, mininterval=1.0,
                       disable=None)           # None: no bar when output is not a terminal
        waited = 0
        try:
            status = self.read_reg("STATUS")
            while status & 1:
                if waited >= timeout_cycles:
                    self.write_reg("CONTROL", 2)
                    raise LoomError(f"the device is still busy after {waited} cycles "
                                    f"(limit {timeout_cycles}); it was soft-reset. A program "
                                    f"whose dependency tokens never arrive hangs like this")
                self.transport.wait(self.poll_cycles)
                waited += self.poll_cycles
                if bar is not None:
                    bar.update(min(self.poll_cycles, bar.total - bar.n))
                status = self.read_reg("STATUS")
        finally:
            if bar is not None:
                bar.close()
        if status & 4:
            code = (status >> 8) & 0xFF
            name, meaning = ERROR_CODES.get(code, ("UNKNOWN", "an unknown error code"))
            self.write_reg("CONTROL", 2)
            raise DeviceError(code, name, meaning, _HINTS.get(name, ""))
        counters = [self.read_reg(name) for name in _COUNTERS]
        stats = RunStats(*counters, macs=program.macs, peak_macs_per_cycle=rows * cols,
                         descriptors=len(program.descriptors),
                         wall_s=time.perf_counter() - started)
        self.last_stats = stats
        return stats

    def gemms(self, calls, **run_options):
        """Run several GEMMs as one job. ``calls``: list of dicts of :meth:`matmul` arguments
        (``a``, ``b`` and keywords). Returns the list of results."""
        specs = [gemm_spec(**call) for call in calls]
        program = compile_gemms(specs, self.config, self.allocator)
        try:
            self.run(program, **run_options)
            return [out.read(self.transport.read_memory) for out in program.outputs]
        finally:
            for at in program.allocations:
                self.allocator.free(at)

    def matmul(self, a, b, **options):
        """``A @ B`` on the device.

        int8 inputs (integer arrays in [-128, 127]) give int32 results, or int8 with
        ``out="int8", multiplier=, shift=, zero_point=, bias=, relu=`` (per output column);
        float16 inputs give float32, or float16 with ``out="float16"``. Any shapes
        ``(M, K) @ (K, N)``; results are bit-exact with ``tb/golden.py``.
        """
        return self.gemms([dict(a=a, b=b, **options)])[0]

    def close(self):
        self.transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
