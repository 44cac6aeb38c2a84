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


def k_chunks(k, depth, quantum=1):
    """``(chunk length, number of chunks)`` of a reduction of length ``k``: as few chunks
    of at most ``depth`` as possible, equal but the last, each a multiple of ``quantum``
    (packed operands: a chunk must start on a bus beat)."""
    count = _ceil(k, depth)
    chunk = _align(_ceil(k, count), quantum)
    if chunk > depth:
        chunk = depth // quantum * quantum
    return chunk, _ceil(k, chunk)


@dataclass
class _Placed:
    """An operand in host memory: column blocks of ``lanes`` lanes, ``k`` rows each.

    Row-major (``block == 0``): row ``k`` of block ``t`` at ``addr + k * pitch + t * width``.
    Tiled (words narrower than a beat): block ``t`` is ``k`` packed rows at
    ``addr + t * block``, ``pitch`` = the row size."""
    addr: int
    pitch: int
    width: int
    block: int = 0

    def at(self, tile, k0):
        return self.addr + k0 * self.pitch + tile * (self.block or self.width)


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
    tile: tuple = None  # (rows, cols, tiles_i, tiles_j, block bytes) when stored tile by tile

    def read(self, read_memory):
        if self.tile is not None:
            rows, cols, ti, tj, block = self.tile
            raw = np.frombuffer(read_memory(self.addr, block * ti * tj), dtype=np.uint8)
            size = rows * cols * np.dtype(self.dtype).itemsize
            tiles = raw.reshape(ti * tj, block)[:, :size].copy().view(self.dtype)
            full = tiles.reshape(ti, tj, rows, cols).transpose(0, 2, 1, 3)
            return np.ascontiguousarray(full.reshape(ti * rows, tj * cols)[:self.m, :self.n])
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


def compile_gemms(specs, config, allocator):
    """Compile ``specs`` (run in order, one program) for ``config``, placing every buffer
    with ``allocator``. Returns a :class:`Program`; raises before anything is placed when a
    GEMM cannot run on this hardware or the data does not fit the window."""
    for spec in specs:
        _check(spec, config)
    emit = _Emitter(config)
    program = Program([], [], [])
    beat = config.beat_bytes
    rows, cols = config.rows, config.cols

    def place(array, what):
        data = np.ascontiguousarray(array).tobytes()
        at = allocator.alloc(len(data), what)
        program.allocations.append(at)
        program.buffers.append((at, data))
        return at

    def place_blocks(matrix, lanes, what):
        """``matrix`` (k x columns, host dtype) as row-major or, when a row of one block is
        narrower than a beat, block by block (each block padded to whole beats)."""
        k = matrix.shape[0]
        width = lanes * matrix.dtype.itemsize
        if width >= beat:
            return _Placed(place(matrix, what), matrix.shape[1] * matrix.dtype.itemsize, width)
        block = _align(k * width, beat)
        tiles = np.ascontiguousarray(matrix.reshape(k, -1, lanes).transpose(1, 0, 2))
        data = np.zeros((tiles.shape[0], block), dtype=np.uint8)
        data[:, :k * width] = tiles.view(np.uint8).reshape(tiles.shape[0], -1)
        return _Placed(place(data, what), width, width, block)

    try:
        for g, spec in enumerate(specs):
            m, k, n = spec.m, spec.k, spec.n
            mp, np_ = _align(m, rows), _align(n, cols)
            host = _host_lanes(spec, config)
            at = np.zeros((k, mp), dtype=host)
            at[:, :m] = spec.a.T
            bt = np.zeros((k, np_), dtype=host)
            bt[:, :n] = spec.b
            a = place_blocks(at, rows, f"A of GEMM {g} ({k}x{mp})")
            b = place_blocks(bt, cols, f"B of GEMM {g} ({k}x{np_})")
            p = None
            if spec.out == "int8":
                table = np.zeros((3, np_), dtype=np.int64)
                if spec.bias is not None:
                    table[0, :n] = spec.bias
                table[1, :n] = spec.multiplier
                table[2, :n] = (spec.shift & 0x1F) | ((spec.zero_point & 0xFF) << 8)
                p = place_blocks((table & 0xFFFFFFFF).astype("<u4"), cols,
                                 f"parameters of GEMM {g}")
            row_bytes = cols * spec.out_bytes
            out_dtype = {"int32": "<i4", "float32": "<f4", "int8": "i1",
                         "float16": "<f2"}[spec.out]
            ti, tj = mp // rows, np_ // cols
            if row_bytes >= beat:
                c_pitch = _align(np_ * spec.out_bytes, beat)
                c = _Placed(allocator.alloc(c_pitch * mp, f"C of GEMM {g} ({mp}x{np_})"),
                            c_pitch, row_bytes)
                output = Output(c.addr, c_pitch, m, n, out_dtype, spec.out)
            else:                  # packed rows: one block of whole beats per tile
                block = _align(rows * row_bytes, beat)
                c = _Placed(allocator.alloc(block * ti * tj, f"C of GEMM {g} ({mp}x{np_})"),
                            row_bytes, row_bytes, block)
                output = Output(c.addr, row_bytes, m, n, out_dtype, spec.out,
                                (rows, cols, ti, tj, block))
            program.allocations.append(c.addr)
            program.outputs.append(output)
            program.macs += spec.macs
            _emit_gemm(emit, spec, config, ti, tj, a, b, p, c)
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


def _emit_gemm(emit, spec, config, tiles_i, tiles_j, a, b, p, c):
    rows, beat = config.rows, config.beat_bytes
    k = spec.k
    quantum = max(beat // x.pitch if x.block else 1 for x in (a, b))
    k_chunk, chunks = k_chunks(k, config.depth, quantum)
    fp16 = spec.dtype == "fp16"
    reuse_a = tiles_j >= tiles_i          # which operand stays loaded (K in one chunk)
    if reuse_a:
        order = [(i, j) for i in range(tiles_i) for j in range(tiles_j)]
    else:
        order = [(i, j) for j in range(tiles_j) for i in range(tiles_i)]

    def load(target, x, tile, c):
        k0 = c * k_chunk
        return dict(target=target, count=min(k_chunk, k - k0), pitch=x.pitch,
                    addr=x.at(tile, k0))

    previous_outer = None
    for i, j in order:
        outer = i if reuse_a else j
        new_outer = outer != previous_outer
        previous_outer = outer
        for ch in range(chunks):
            loads = []
            if chunks > 1:
                loads += [load(Target.A, a, i, ch), load(Target.B, b, j, ch)]
            elif reuse_a:
                loads += [load(Target.A, a, i, 0)] if new_outer else []
                loads.append(load(Target.B, b, j, 0))
            else:
                loads += [load(Target.B, b, j, 0)] if new_outer else []
                loads.append(load(Target.A, a, i, 0))
            if p is not None and ch == 0:
                loads.append(dict(target=Target.PARAMS, slot=emit.tile % config.param_slots,
                                  count=3, pitch=p.pitch, addr=p.at(j, 0)))
            emit.loads(loads)
            emit.compute(k=min(k_chunk, k - ch * k_chunk), fp16=fp16, first=ch == 0,
                         last=ch == chunks - 1)
        if c.block:
            addr = c.addr + (i * tiles_j + j) * c.block
        else:
            addr = c.addr + i * rows * c.pitch + j * c.width
        emit.store(mode=spec.store_mode, relu=int(spec.relu), bias=int(spec.bias is not None),
                   param_slot=emit.tile % config.param_slots, addr=addr, pitch=c.pitch)
