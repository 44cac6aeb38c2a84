"""GEMMs -> a descriptor program and the host-memory image it runs on.

The compiler turns a list of :class:`~sw.gemm.GemmSpec` into one program for the device
described by a :class:`~sw.config.HardwareConfig`:

**Tiling.** ``M`` and ``N`` are padded with zeros to multiples of the array's rows and
columns; every ``rows x cols`` output tile is one *tile job*. ``K`` is split into
``ceil(K / depth)`` chunks of at most ``depth`` (equal sizes but the last): chunk ``c``
covers ``k = c * k_chunk ... min(K, (c + 1) * k_chunk) - 1``. The first chunk of a tile
overwrites its result slot, later ones accumulate into it (int8: wrapping int32 adds;
fp16: fp32 adds of the chunk sums in chunk order, see ``tb/golden.py``).

**Host layout.** The array consumes column ``k`` of an A tile and row ``k`` of a B tile per
beat, so A is placed as ``A^T`` (``K x Mp``, row-major) and B as it is (``K x Np``); lanes
are 1 byte (int8) or 2 (fp16, and int8 in builds with fp16, widened). Results are written
row-major with a bus-aligned pitch. Requantisation parameters are a ``3 x Np`` int32 table:
bias, multiplier, ``shift | zero_point << 8``.

**Loop order and reuse.** With ``K`` in one chunk, one operand stays loaded while the other
streams past: A row-blocks are reused across a row of output tiles when there are at least
as many column tiles as row tiles, else B column-blocks across a column of tiles (whichever
saves more DMA). With ``K`` split, both operands' chunks are loaded for every step.

**Overlap (double buffering) through the ISA's tokens,** for ``S`` slots (``S = 2``): step
``t`` (one COMPUTE) loads into operand slot ``t mod S``; its first LOAD waits for a token
from COMPUTE (``t >= S``: the COMPUTE of step ``t - S`` has finished with that slot) and its
last LOAD signals COMPUTE. Tile job ``u`` accumulates in result slot ``u mod S``; its first
COMPUTE waits for a token from STORE when ``u >= S`` (STORE ``u - S`` has drained the slot),
its last COMPUTE signals STORE. Parameters of tile ``u`` go to parameter slot
``u mod 2S``: its LOAD runs after COMPUTE ``t - S``, hence after STORE ``u - 2S`` has copied
them out. Every wait depends only on earlier descriptors, so in-order dispatch with bounded
queues cannot deadlock.
"""
from dataclasses import dataclass, field

import numpy as np

from hw.isa import DESCRIPTOR_BYTES, Opcode, Target, encode

from .errors import UnsupportedError

__all__ = ["Program", "Output", "compile_gemms", "k_chunks"]


def _ceil(a, b):
    return -(-a // b)


def _align(value, to):
    return _ceil(value, to) * to


def k_chunks(k, depth):
    """``(chunk length, number of chunks)`` of a reduction of length ``k``."""
    count = _ceil(k, depth)
    return _ceil(k, count), count


@dataclass
class Output:
    """Where one GEMM's result lands: ``m`` rows at ``addr + r * pitch``, ``n`` elements
    of ``dtype`` each (the padding beyond is ignored)."""
    addr: int
    pitch: int
    m: int
    n: int
    dtype: str          # numpy dtype of the stored elements
    kind: str           # int32, int8, float32, float16

    def read(self, read_memory):
        raw = read_memory(self.addr, self.pitch * self.m)
        rows = np.frombuffer(raw, dtype=np.uint8).reshape(self.m, self.pitch)
        width = np.dtype(self.dtype).itemsize * self.n
        return np.ascontiguousarray(rows[:, :width]).view(self.dtype).reshape(self.m, self.n)


@dataclass
class Program:
    """A compiled job: descriptors, the data to place, where results appear."""
    descriptors: list
    buffers: list                       # (addr, bytes) to write before starting
    outputs: list                       # one Output per GEMM
    desc_addr: int = 0
    allocations: list = field(default_factory=list)
    macs: int = 0                       # useful MACs (unpadded)
    tiles: int = 0                      # tile jobs (output tiles)

    @property
    def image(self):
        """Every (addr, bytes) the job writes before it starts, descriptors included."""
        return [*self.buffers, (self.desc_addr, b"".join(self.descriptors))]


class _Emitter:
    """Emits tile jobs with the token discipline of the module doc; picks operand slots.

    A LOAD goes to the least recently used slot of its buffer: the steps ``t - S + 1 ..
    t - 1`` read at most ``S - 1`` slots of a buffer, so that slot was last read by step
    ``t - S`` or earlier, whose COMPUTE the step's first LOAD waits for.
    """

    def __init__(self, config):
        self.config = config
        self.slots = config.slots
        self.step = 0          # COMPUTE count (steps)
        self.tile = 0          # tile jobs
        self.descriptors = []
        self.last_use = {Target.A: [-1] * self.slots, Target.B: [-1] * self.slots}
        self.loaded = {}       # buffer -> slot of its latest LOAD

    def loads(self, loads):
        """Emit one step's LOADs (dicts of LOAD fields without ``slot`` for A/B)."""
        for n, fields in enumerate(loads):
            flags = {}
            if n == 0 and self.step >= self.slots:
                flags["wait_next"] = 1
            if n == len(loads) - 1:
                flags["signal_next"] = 1
            target = fields["target"]
            if target in self.last_use:
                uses = self.last_use[target]
                slot = min(range(self.slots), key=uses.__getitem__)
                uses[slot] = self.step        # reserved from now on
                self.loaded[target] = slot
                fields = {**fields, "slot": slot}
            self.descriptors.append(encode(Opcode.LOAD, **fields, **flags))

    def compute(self, *, k, fp16, first, last):
        a_slot, b_slot = self.loaded[Target.A], self.loaded[Target.B]
        self.last_use[Target.A][a_slot] = self.last_use[Target.B][b_slot] = self.step
        self.descriptors.append(encode(
            Opcode.COMPUTE, a_slot=a_slot, b_slot=b_slot, acc_slot=self.tile % self.slots,
            k=k, fp16=int(fp16), accumulate=int(not first), wait_prev=1, signal_prev=1,
            wait_next=int(first and self.tile >= self.slots), signal_next=int(last)))
        self.step += 1

    def store(self, **fields):
        self.descriptors.append(encode(Opcode.STORE, slot=self.tile % self.slots,
                                       wait_prev=1, signal_prev=1, **fields))
        self.tile += 1


def _host_lanes(spec, config):
    if spec.dtype == "fp16":
        return "<u2"
    return "<i2" if config.lane_bytes == 2 else "i1"


def _check(spec, config):
    if spec.dtype not in config.datapaths:
        raise UnsupportedError(f"this device has the {'+'.join(config.datapaths)} datapath"
                               f"{'s' if len(config.datapaths) > 1 else ''}, not {spec.dtype}: "
                               f"use a build with {spec.dtype}")
    for what, lanes in (("A", config.rows), ("B", config.cols)):
        if lanes * config.lane_bytes % config.beat_bytes:
            raise UnsupportedError(f"{what} words of {lanes * config.lane_bytes} bytes are "
                                   f"narrower than the {config.beat_bytes}-byte bus")


def compile_gemms(specs, config, allocator):
    """Compile ``specs`` (run in order, one program) for ``config``, placing every buffer
    with ``allocator``. Returns a :class:`Program`; raises before anything is placed when a
    GEMM cannot run on this hardware or the data does not fit the window."""
    for spec in specs:
        _check(spec, config)
    emit = _Emitter(config)
    program = Program([], [], [])
    beat = config.beat_bytes
    rows, cols, lane = config.rows, config.cols, config.lane_bytes

    def place(array, what):
        data = np.ascontiguousarray(array).tobytes()
        at = allocator.alloc(len(data), what)
        program.allocations.append(at)
        program.buffers.append((at, data))
        return at

    try:
        for g, spec in enumerate(specs):
            m, k, n = spec.m, spec.k, spec.n
            mp, np_ = _align(m, rows), _align(n, cols)
            host = _host_lanes(spec, config)
            at = np.zeros((k, mp), dtype=host)
            at[:, :m] = spec.a.T
            bt = np.zeros((k, np_), dtype=host)
            bt[:, :n] = spec.b
            a_addr = place(at, f"A of GEMM {g} ({k}x{mp})")
            b_addr = place(bt, f"B of GEMM {g} ({k}x{np_})")
            a_pitch, b_pitch = mp * lane, np_ * lane
            p_addr = None
            if spec.out == "int8":
                zeros = np.zeros(np_, dtype=np.int64)
                table = np.zeros((3, np_), dtype=np.int64)
                table[0, :n] = spec.bias if spec.bias is not None else zeros[:n]
                table[1, :n] = spec.multiplier
                table[2, :n] = (spec.shift & 0x1F) | ((spec.zero_point & 0xFF) << 8)
                p_addr = place((table & 0xFFFFFFFF).astype("<u4"), f"parameters of GEMM {g}")
            c_pitch = _align(np_ * spec.out_bytes, beat)
            c_addr = allocator.alloc(c_pitch * mp, f"C of GEMM {g} ({mp}x{np_})")
            program.allocations.append(c_addr)
            out_dtype = {"int32": "<i4", "float32": "<f4", "int8": "i1",
                         "float16": "<f2"}[spec.out]
            program.outputs.append(Output(c_addr, c_pitch, m, n, out_dtype, spec.out))
            program.macs += spec.macs
            _emit_gemm(emit, spec, config, mp, np_, a_addr, a_pitch, b_addr, b_pitch, p_addr,
                       c_addr, c_pitch)
        emit.descriptors.append(encode(Opcode.END))
        program.descriptors = emit.descriptors
        program.tiles = emit.tile
        program.desc_addr = allocator.alloc(len(emit.descriptors) * DESCRIPTOR_BYTES,
                                            f"{len(emit.descriptors)} descriptors")
        program.allocations.append(program.desc_addr)
    except Exception:
        for at in program.allocations:
            allocator.free(at)
        raise
    return program


def _emit_gemm(emit, spec, config, mp, np_, a_addr, a_pitch, b_addr, b_pitch, p_addr,
               c_addr, c_pitch):
    rows, cols, lane = config.rows, config.cols, config.lane_bytes
    k = spec.k
    k_chunk, chunks = k_chunks(k, config.depth)
    tiles_i, tiles_j = mp // rows, np_ // cols
    fp16 = spec.dtype == "fp16"
    reuse_a = tiles_j >= tiles_i          # which operand stays loaded (K in one chunk)
    if reuse_a:
        order = [(i, j) for i in range(tiles_i) for j in range(tiles_j)]
    else:
        order = [(i, j) for j in range(tiles_j) for i in range(tiles_i)]

    def load_a(i, c):
        k0 = c * k_chunk
        return dict(target=Target.A, count=min(k_chunk, k - k0), pitch=a_pitch,
                    addr=a_addr + k0 * a_pitch + i * rows * lane)

    def load_b(j, c):
        k0 = c * k_chunk
        return dict(target=Target.B, count=min(k_chunk, k - k0), pitch=b_pitch,
                    addr=b_addr + k0 * b_pitch + j * cols * lane)

    previous_outer = None
    for i, j in order:
        outer = i if reuse_a else j
        new_outer = outer != previous_outer
        previous_outer = outer
        for c in range(chunks):
            loads = []
            if chunks > 1:
                loads += [load_a(i, c), load_b(j, c)]
            elif reuse_a:
                loads += [load_a(i, 0)] if new_outer else []
                loads.append(load_b(j, 0))
            else:
                loads += [load_b(j, 0)] if new_outer else []
                loads.append(load_a(i, 0))
            if p_addr is not None and c == 0:
                loads.append(dict(target=Target.PARAMS, slot=emit.tile % config.param_slots,
                                  count=3, pitch=np_ * 4, addr=p_addr + j * cols * 4))
            emit.loads(loads)
            emit.compute(k=min(k_chunk, k - c * k_chunk), fp16=fp16, first=c == 0,
                         last=c == chunks - 1)
        emit.store(mode=spec.store_mode, relu=int(spec.relu), bias=int(spec.bias is not None),
                   param_slot=emit.tile % config.param_slots,
                   addr=c_addr + i * rows * c_pitch + j * cols * spec.out_bytes, pitch=c_pitch)
