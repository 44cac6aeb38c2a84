"""Test tiles for the systolic array: operand patterns, beats, and the expected drain order."""
from dataclasses import dataclass

import numpy as np

from .golden import fp16_gemm, int8_gemm

__all__ = ["PATTERNS", "FP16_PATTERNS", "Tile", "make_tile", "tile_beats", "drained_rows"]


def _random(rng, shape):
    return rng.integers(-128, 128, size=shape)


def _alternating(rng, shape):
    # -128, 127, -128, ... along every row and column (a checkerboard of the extremes).
    i, j = np.indices(shape)
    return np.where((i + j) % 2 == 0, -128, 127)


def _one_hot(rng, shape):
    # Exactly one 1 per row: A @ B then selects single rows of B (or columns of A).
    out = np.zeros(shape, dtype=np.int64)
    out[np.arange(shape[0]), rng.integers(0, shape[1], size=shape[0])] = 1
    return out


#: int8 operand generators: ``name -> f(rng, shape) -> int array``.
PATTERNS = {
    "random": _random,
    "all_min": lambda rng, shape: np.full(shape, -128),
    "all_max": lambda rng, shape: np.full(shape, 127),
    "alternating": _alternating,
    "zeros": lambda rng, shape: np.zeros(shape, dtype=np.int64),
    "one_hot": _one_hot,
}

_FP16_SPECIALS = np.array([0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x83FF, 0x0400, 0x7BFF,
                           0xFBFF, 0x7C00, 0xFC00, 0x7E00, 0x3C00, 0xBC00], dtype=np.uint16)


def _fp16_random(rng, shape):
    # Normal values over a wide range of binades, so sums round at every step.
    scale = np.exp2(rng.integers(-12, 9, size=shape))
    return (rng.standard_normal(shape) * scale).astype(np.float16).view(np.uint16)


def _fp16_specials(rng, shape):
    # Random values with about one entry in eight replaced by a special value.
    values = _fp16_random(rng, shape)
    mask = rng.random(shape) < 0.125
    values[mask] = rng.choice(_FP16_SPECIALS, size=int(mask.sum()))
    return values


def _fp16_extremes(rng, shape):
    # +-65504 and +-subnormals: products from 2**-48 to 2**32, sums that overflow to Inf.
    return rng.choice(np.array([0x7BFF, 0xFBFF, 0x0001, 0x83FF, 0x7BFE], dtype=np.uint16),
                      size=shape)


def _fp16_cancelling(rng, shape):
    # Every value followed by its negation along k: exact cancellations and signed zeros.
    values = _fp16_random(rng, shape)
    flat = values.reshape(-1)
    flat[1::2] = flat[0:-1:2] ^ 0x8000
    return values


#: fp16 operand generators: ``name -> f(rng, shape) -> np.uint16 bit patterns``.
FP16_PATTERNS = {
    "random": _fp16_random,
    "specials": _fp16_specials,
    "extremes": _fp16_extremes,
    "cancelling": _fp16_cancelling,
    "zeros": lambda rng, shape: rng.choice(np.array([0, 0x8000], dtype=np.uint16), size=shape),
}


@dataclass
class Tile:
    """One array tile: ``a`` is rows x K, ``b`` is K x cols (int8 values, or binary16 bit
    patterns when ``dtype == "fp16"``)."""
    a: np.ndarray
    b: np.ndarray
    pattern: str
    dtype: str = "int8"

    @property
    def k(self):
        return self.a.shape[1]

    @property
    def c(self):
        """The golden result as signed 32-bit integers (binary32 bit patterns for fp16)."""
        if self.dtype == "fp16":
            return fp16_gemm(self.a, self.b).view(np.int32)
        return int8_gemm(self.a, self.b)


def make_tile(rng, rows, cols, k, pattern="random", dtype="int8"):
    """A tile whose A and B come from ``PATTERNS`` / ``FP16_PATTERNS`` (B random for one_hot)."""
    if dtype == "fp16":
        make = FP16_PATTERNS[pattern]
        b_pattern = "random" if pattern == "cancelling" else pattern  # A's pairs cancel
        b = FP16_PATTERNS[b_pattern](rng, (k, cols))
        if pattern == "cancelling":
            b[1::2] = b[0:-1:2]
        return Tile(make(rng, (rows, k)), b, pattern, "fp16")
    make = PATTERNS[pattern]
    a = make(rng, (rows, k)).astype(np.int8)
    b = (_random(rng, (k, cols)) if pattern == "one_hot" else make(rng, (k, cols))).astype(np.int8)
    return Tile(a, b, pattern)


def tile_beats(tile, datapaths=("int8",)):
    """The operand beats of a tile in stream order: ``{"a": A[:, k], "b": B[k, :], "last"}``,
    with lane values as the build's operand layout wants them (dual builds carry int8 values
    in the low byte of 16-bit lanes and mark fp16 tiles with ``fp16``)."""
    dual = len(datapaths) > 1
    lane_mask = 0xFF if dual and tile.dtype == "int8" else None
    for k in range(tile.k):
        a, b = tile.a[:, k].tolist(), tile.b[k, :].tolist()
        if lane_mask is not None:
            a = [x & lane_mask for x in a]
            b = [x & lane_mask for x in b]
        beat = {"a": a, "b": b, "last": int(k == tile.k - 1)}
        if dual:
            beat["fp16"] = int(tile.dtype == "fp16")
        yield beat


def drained_rows(c):
    """Expected result beats of one tile: rows bottom first, ``last`` on row 0."""
    rows = c.shape[0]
    return [{"data": [int(x) for x in c[row]], "row": row, "last": int(row == 0)}
            for row in reversed(range(rows))]
