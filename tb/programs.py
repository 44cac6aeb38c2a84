"""A small descriptor-program builder for tests and benchmarks (the real compiler is sw/'s).

``gemm(...)`` lays out a GEMM ``C = A @ B`` in host memory and returns the descriptors
that compute it tile by tile with double buffering: A row-blocks stay loaded while the B
tiles of that row stream past (A reuse), and LOAD, COMPUTE and STORE overlap through the
ISA's dependency tokens:

* every COMPUTE gives LOAD one token ("an operand slot is free") and STORE one token
  ("a result slot is full"); every STORE gives COMPUTE one ("a result slot is free");
* tile ``t``'s first LOAD waits for a free slot from tile ``t - 2``, its B LOAD signals
  COMPUTE; requantisation parameters rotate through four slots (see ``StoreUnit``);
  COMPUTE ``t`` waits for its operands and, from ``t = 2``, for a free result slot;
  STORE ``t`` waits for COMPUTE ``t``.

Options for buses wider than a buffer word and for long reductions:

* ``tiled=True`` lays A^T, B (and C) out tile by tile: the ``K`` words of each A row-block
  and each B column-block lie back to back (each block padded to whole beats), as do the
  rows of each C tile and each column-block's three parameter rows. Every LOAD and STORE
  then has ``pitch`` equal to its row size, which is what packed rows need (a 16 x 16 int8
  array on a 256-bit bus, ``docs/isa.md``).
* ``k_chunk=n`` splits ``K`` into chunks of ``n`` (the last may be shorter): each output
  tile is then computed by one COMPUTE per chunk into the same result slot, the first
  overwriting and the others accumulating (int8: wrapping int32 sums; fp16: one RNE fp32
  addition per chunk, ``tb.golden.fp16_gemm(..., k_chunk=n)``). Every chunk is one step of
  LOAD A chunk, LOAD B chunk, COMPUTE on alternating operand slots (step ``u`` waits for the
  COMPUTE of step ``u - 2``; no A reuse); a tile's first COMPUTE waits for a free result
  slot and only its last signals STORE.
"""
from dataclasses import dataclass

import numpy as np

from hw.isa import Opcode, Target, encode

__all__ = ["GemmJob", "gemm", "misplaced_tables"]


@dataclass
class GemmJob:
    """Where a GEMM lives in host memory and what to expect there."""
    descriptors: list
    writes: dict          # host address -> bytes to place before running
    c_addr: int
    c_pitch: int          # bytes from one row of C (of a C tile when tiled) to the next
    c_shape: tuple
    c_dtype: str
    end: int              # first free host address after the data (descriptors may go here)
    c_tile: tuple | None = None   # (rows, cols) when C is laid out tile by tile

    @property
    def c_bytes(self):
        """Bytes from ``c_addr`` that C spans (padding included)."""
        m_, n = self.c_shape
        if self.c_tile is None:
            return self.c_pitch * m_
        return m_ * n * np.dtype(self.c_dtype).itemsize

    def read_c(self, read):
        """C as an (M, N) array, from ``read(addr, length) -> bytes`` of host memory."""
        m_, n = self.c_shape
        dtype = np.dtype(self.c_dtype)
        raw = bytes(read(self.c_addr, self.c_bytes))
        if self.c_tile is None:
            return np.stack([np.frombuffer(raw[r * self.c_pitch:r * self.c_pitch
                                               + n * dtype.itemsize], dtype=dtype)
                             for r in range(m_)])
        rows, cols = self.c_tile
        tiles = np.frombuffer(raw, dtype=dtype).reshape(m_ // rows, n // cols, rows, cols)
        return tiles.transpose(0, 2, 1, 3).reshape(m_, n)


def _align(value, to):
    return (value + to - 1) // to * to


def gemm(a, b, *, rows, cols, beat, lane_bytes=1, base=0x10000, dtype="int8", mode=0,
         relu=False, bias=None, multiplier=None, shift=None, zero_point=None, tiled=False,
         k_chunk=None):
    """Descriptors and memory image for ``C = A @ B`` on a ``rows x cols`` array.

    ``a`` (M x K) and ``b`` (K x N) are int8 arrays or binary16 bit patterns (``np.uint16``)
    with ``M``, ``N`` multiples of ``rows``/``cols`` and ``K`` within the buffer depth.
    ``mode``: 0 raw int32/fp32, 1 int8 requantised (per-column ``multiplier``, ``shift``,
    ``zero_point``, optional ``bias``, ``relu``), 2 fp16. ``lane_bytes`` is the build's
    operand lane (2 in builds with fp16): int8 operands are then stored widened to 16 bits.
    ``tiled`` and ``k_chunk``: see the module docstring (defaults: row-major operands and C,
    one COMPUTE per output tile with A reuse).
    """
    m_, k = a.shape
    n = b.shape[1]
    assert m_ % rows == 0 and n % cols == 0, "pad M and N to the array first"
    lane = lane_bytes
    if dtype == "int8" and lane == 2:
        a, b = a.astype("<i2"), b.astype("<i2")
    out_bytes = {0: 4, 1: 1, 2: 2}[mode]
    layout = _Layout(a, b, rows=rows, cols=cols, beat=beat, lane=lane, base=base,
                     out_bytes=out_bytes, tiled=tiled)
    if mode == 1:
        layout.place_params(_params_table(n, bias, multiplier, shift, zero_point))
    store = {"mode": mode, "relu": int(relu), "bias": int(bias is not None)}
    fp16 = int(dtype == "fp16")
    if k_chunk is None:
        program = _reuse_a_schedule(layout, k, fp16, store)
    else:
        if k_chunk < 1:
            raise ValueError(f"k_chunk must be at least 1, not {k_chunk}")
        program = _k_chunk_schedule(layout, k, k_chunk, fp16, store)
    program.append(encode(Opcode.END))
    c_dtype = {0: "<i4" if dtype == "int8" else "<u4", 1: "i1", 2: "<u2"}[mode]
    return GemmJob(program, layout.writes, layout.at_c, layout.c_pitch, (m_, n), c_dtype,
                   layout.cursor, (rows, cols) if tiled else None)


def _params_table(n, bias, multiplier, shift, zero_point):
    zeros = np.zeros(n, dtype=np.int64)
    return np.stack([bias if bias is not None else zeros, multiplier,
                     (shift & 0x1F) | ((zero_point & 0xFF) << 8)]).astype("<u4")


class _Layout:
    """Where A^T, B, C and the parameters lie in host memory: each placed at a 4 KiB
    boundary in that order, row-major or (``tiled``) block by block."""

    def __init__(self, a, b, *, rows, cols, beat, lane, base, out_bytes, tiled):
        m_, k = a.shape
        n = b.shape[1]
        self.rows, self.cols, self.k, self.lane, self.tiled = rows, cols, k, lane, tiled
        self.blocks_m = m_ // rows
        self.beat = beat
        self.blocks_n = n // cols
        self.writes, self.cursor = {}, base
        if tiled:   # block i of A^T is K x rows, block j of B is K x cols, each contiguous
            self.a_pitch, self.b_pitch = rows * lane, cols * lane
            self.a_stride = _align(k * self.a_pitch, beat)      # blocks start on a beat
            self.b_stride = _align(k * self.b_pitch, beat)
            self.at_a = self._place_blocks([a[i * rows:(i + 1) * rows].T
                                            for i in range(self.blocks_m)], self.a_stride)
            self.at_b = self._place_blocks([b[:, j * cols:(j + 1) * cols]
                                            for j in range(self.blocks_n)], self.b_stride)
            self.c_pitch = cols * out_bytes
            c_bytes = m_ * n * out_bytes
        else:       # K x M: word k of a tile is A[i0:, k]
            self.at_a, self.at_b = self._place(a.T), self._place(b)
            self.a_pitch, self.b_pitch = m_ * lane, n * lane
            self.c_pitch = _align(n * out_bytes, beat)
            c_bytes = self.c_pitch * m_
        self.out_bytes = out_bytes
        self.at_c = self.cursor
        self.cursor = _align(self.cursor + c_bytes, 4096)

    def _place(self, array):
        at = self.cursor
        data = np.ascontiguousarray(array).tobytes()
        self.writes[at] = data
        self.cursor = _align(self.cursor + len(data), 4096)
        return at

    def _place_blocks(self, blocks, stride):
        """Blocks back to back, each padded to ``stride`` bytes."""
        data = b"".join(np.ascontiguousarray(block).tobytes().ljust(stride, b"\0")
                        for block in blocks)
        at = self.cursor
        self.writes[at] = data
        self.cursor = _align(self.cursor + len(data), 4096)
        return at

    def place_params(self, table):
        """3 rows of N int32 (bias, multiplier, shift | zero_point << 8)."""
        if self.tiled:      # per column block: its three parameter rows back to back
            cols = self.cols
            self.params_pitch = cols * 4
            self.params_stride = _align(3 * self.params_pitch, self.beat)
            self.at_params = self._place_blocks([table[:, j * cols:(j + 1) * cols]
                                                 for j in range(self.blocks_n)],
                                                self.params_stride)
        else:
            self.at_params = self._place(table)
            self.params_pitch = table.shape[1] * 4

    def load_a(self, i, k0, count, slot, **flags):
        addr = (self.at_a + i * self.a_stride + k0 * self.a_pitch if self.tiled else
                self.at_a + k0 * self.a_pitch + i * self.rows * self.lane)
        return encode(Opcode.LOAD, target=Target.A, slot=slot, count=count,
                      pitch=self.a_pitch, addr=self._aligned(addr), **flags)

    def load_b(self, j, k0, count, slot, **flags):
        addr = (self.at_b + j * self.b_stride + k0 * self.b_pitch if self.tiled else
                self.at_b + k0 * self.b_pitch + j * self.cols * self.lane)
        return encode(Opcode.LOAD, target=Target.B, slot=slot, count=count,
                      pitch=self.b_pitch, addr=self._aligned(addr), **flags)

    def _aligned(self, addr):
        if addr % self.beat:
            raise ValueError(f"a K chunk would start at {addr:#x}, not on a {self.beat}-byte "
                             f"beat: choose k_chunk so that k_chunk words are whole beats")
        return addr

    def load_params(self, j, slot, **flags):
        addr = self.at_params + j * (self.params_stride if self.tiled else self.cols * 4)
        return encode(Opcode.LOAD, target=Target.PARAMS, slot=slot, count=3,
                      pitch=self.params_pitch, addr=addr, **flags)

    def store(self, i, j, slot, param_slot, store, **flags):
        addr = (self.at_c + (i * self.blocks_n + j) * self.rows * self.c_pitch if self.tiled
                else self.at_c + i * self.rows * self.c_pitch + j * self.cols * self.out_bytes)
        return encode(Opcode.STORE, slot=slot, param_slot=param_slot, addr=addr,
                      pitch=self.c_pitch, **store, **flags)

    def tiles(self):
        """Output tiles (row block, column block), a row of tiles after the other."""
        return [(i, j) for i in range(self.blocks_m) for j in range(self.blocks_n)]


def _reuse_a_schedule(layout, k, fp16, store):
    """One COMPUTE per tile; A row-blocks stay loaded across a row of tiles."""
    program = []
    for t, (i, j) in enumerate(layout.tiles()):
        slot = t % 2
        first_of_row = j == 0
        wait_free = int(t >= 2)
        if first_of_row:
            program.append(layout.load_a(i, 0, k, i % 2, wait_next=wait_free))
        if store["mode"] == 1:
            program.append(layout.load_params(j, t % 4,
                                              wait_next=0 if first_of_row else wait_free))
            wait_free = 0 if not first_of_row else wait_free
        program.append(layout.load_b(j, 0, k, slot, signal_next=1,
                                     wait_next=0 if (first_of_row or store["mode"] == 1)
                                     else wait_free))
        program.append(encode(Opcode.COMPUTE, a_slot=i % 2, b_slot=slot, acc_slot=slot, k=k,
                              fp16=fp16, wait_prev=1, signal_prev=1, wait_next=int(t >= 2),
                              signal_next=1))
        program.append(layout.store(i, j, slot, t % 4, store, wait_prev=1, signal_prev=1))
    return program


def _k_chunk_schedule(layout, k, k_chunk, fp16, store):
    """One COMPUTE per tile and K chunk, each chunk one step of LOAD A, LOAD B, COMPUTE."""
    program = []
    chunks = [(k0, min(k0 + k_chunk, k)) for k0 in range(0, k, k_chunk)]
    step = 0
    for t, (i, j) in enumerate(layout.tiles()):
        for c, (k0, k1) in enumerate(chunks):
            slot = step % 2
            program.append(layout.load_a(i, k0, k1 - k0, slot, wait_next=int(step >= 2)))
            if store["mode"] == 1 and c == 0:
                # the A LOAD above waited for COMPUTE step - 2, which comes after tile
                # t - 2's first COMPUTE, which waited for STORE t - 4: slot t % 4 is free
                program.append(layout.load_params(j, t % 4))
            program.append(layout.load_b(j, k0, k1 - k0, slot, signal_next=1))
            program.append(encode(Opcode.COMPUTE, a_slot=slot, b_slot=slot, acc_slot=t % 2,
                                  k=k1 - k0, accumulate=int(c > 0), fp16=fp16, wait_prev=1,
                                  signal_prev=1, wait_next=int(c == 0 and t >= 2),
                                  signal_next=int(c == len(chunks) - 1)))
            step += 1
        program.append(layout.store(i, j, t % 2, t % 4, store, wait_prev=1, signal_prev=1))
    return program


def misplaced_tables(desc_addr, count, memory_end):
    """(DESC_ADDR, (WINDOW_BASE, WINDOW_LIMIT), expected error) for a table of ``count``
    descriptors that lies at ``desc_addr``: each one a device must refuse before it fetches
    anything (a 32-bit address space assumed)."""
    end = desc_addr + 32 * count
    return [(desc_addr + 16, (0, memory_end), "MISALIGNED"),
            (desc_addr, (desc_addr + 32, memory_end), "OUT_OF_WINDOW"),   # starts outside
            (desc_addr, (0, end - 32), "OUT_OF_WINDOW"),                  # ends outside
            (1 << 32, (0, 1 << 40), "OUT_OF_WINDOW")]                     # beyond 2**32
