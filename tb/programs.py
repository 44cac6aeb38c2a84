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
"""
from dataclasses import dataclass

import numpy as np

from hw.isa import Opcode, Target, encode

__all__ = ["GemmJob", "gemm"]


@dataclass
class GemmJob:
    """Where a GEMM lives in host memory and what to expect there."""
    descriptors: list
    writes: dict          # host address -> bytes to place before running
    c_addr: int
    c_pitch: int
    c_shape: tuple
    c_dtype: str
    end: int              # first free host address after the data (descriptors may go here)


def _align(value, to):
    return (value + to - 1) // to * to


def gemm(a, b, *, rows, cols, beat, lane_bytes=1, base=0x10000, dtype="int8", mode=0,
         relu=False, bias=None, multiplier=None, shift=None, zero_point=None):
    """Descriptors and memory image for ``C = A @ B`` on a ``rows x cols`` array.

    ``a`` (M x K) and ``b`` (K x N) are int8 arrays or binary16 bit patterns (``np.uint16``)
    with ``M``, ``N`` multiples of ``rows``/``cols`` and ``K`` within the buffer depth.
    ``mode``: 0 raw int32/fp32, 1 int8 requantised (per-column ``multiplier``, ``shift``,
    ``zero_point``, optional ``bias``, ``relu``), 2 fp16. ``lane_bytes`` is the build's
    operand lane (2 in builds with fp16): int8 operands are then stored widened to 16 bits.
    """
    m_, k = a.shape
    n = b.shape[1]
    assert m_ % rows == 0 and n % cols == 0, "pad M and N to the array first"
    lane = lane_bytes
    if dtype == "int8" and lane == 2:
        a, b = a.astype("<i2"), b.astype("<i2")
    out_bytes = {0: 4, 1: 1, 2: 2}[mode]
    writes = {}
    cursor = base

    def place(array):
        nonlocal cursor
        at = cursor
        data = np.ascontiguousarray(array).tobytes()
        writes[at] = data
        cursor = _align(cursor + len(data), 4096)
        return at

    at_a = place(a.T)                               # K x M: word k of a tile is A[i0:, k]
    at_b = place(b)
    c_pitch = _align(n * out_bytes, beat)
    at_c = cursor
    cursor = _align(cursor + c_pitch * m_, 4096)
    params_at = None
    if mode == 1:
        zeros = np.zeros(n, dtype=np.int64)
        table = np.stack([bias if bias is not None else zeros, multiplier,
                          (shift & 0x1F) | ((zero_point & 0xFF) << 8)]).astype("<u4")
        params_at = place(table)                    # 3 rows of N int32

    program = []
    tiles = [(i, j) for i in range(m_ // rows) for j in range(n // cols)]
    for t, (i, j) in enumerate(tiles):
        slot = t % 2
        first_of_row = j == 0
        wait_free = int(t >= 2)
        if first_of_row:
            program.append(encode(Opcode.LOAD, target=Target.A, slot=i % 2, count=k,
                                  pitch=m_ * lane, addr=at_a + i * rows * lane,
                                  wait_next=wait_free))
        if mode == 1:
            program.append(encode(Opcode.LOAD, target=Target.PARAMS, slot=t % 4, count=3,
                                  pitch=n * 4, addr=params_at + j * cols * 4,
                                  wait_next=0 if first_of_row else wait_free))
            wait_free = 0 if not first_of_row else wait_free
        program.append(encode(Opcode.LOAD, target=Target.B, slot=slot, count=k,
                              pitch=n * lane, addr=at_b + j * cols * lane, signal_next=1,
                              wait_next=0 if (first_of_row or mode == 1) else wait_free))
        program.append(encode(Opcode.COMPUTE, a_slot=i % 2, b_slot=slot, acc_slot=slot, k=k,
                              fp16=int(dtype == "fp16"), wait_prev=1, signal_prev=1,
                              wait_next=int(t >= 2), signal_next=1))
        program.append(encode(Opcode.STORE, slot=slot, mode=mode, relu=int(relu),
                              bias=int(bias is not None), param_slot=t % 4,
                              addr=at_c + i * rows * c_pitch + j * cols * out_bytes,
                              pitch=c_pitch, wait_prev=1, signal_prev=1))
    program.append(encode(Opcode.END))
    c_dtype = {0: "<i4" if dtype == "int8" else "<u4", 1: "i1", 2: "<u2"}[mode]
    return GemmJob(program, writes, at_c, c_pitch, (m_, n), c_dtype, cursor)
