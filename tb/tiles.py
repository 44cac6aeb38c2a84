"""Test tiles for the systolic array: operand patterns, beats, and the expected drain order."""
from dataclasses import dataclass

import numpy as np

from .golden import int8_gemm

__all__ = ["PATTERNS", "Tile", "make_tile", "tile_beats", "drained_rows"]


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


#: Named operand generators: ``name -> f(rng, shape) -> int array``.
PATTERNS = {
    "random": _random,
    "all_min": lambda rng, shape: np.full(shape, -128),
    "all_max": lambda rng, shape: np.full(shape, 127),
    "alternating": _alternating,
    "zeros": lambda rng, shape: np.zeros(shape, dtype=np.int64),
    "one_hot": _one_hot,
}


@dataclass
class Tile:
    """One array tile: ``a`` is rows x K, ``b`` is K x cols, ``c`` the golden int32 result."""
    a: np.ndarray
    b: np.ndarray
    pattern: str

    @property
    def k(self):
        return self.a.shape[1]

    @property
    def c(self):
        return int8_gemm(self.a, self.b)


def make_tile(rng, rows, cols, k, pattern="random"):
    """A tile whose A and B come from ``PATTERNS[pattern]`` (B random for ``one_hot``)."""
    make = PATTERNS[pattern]
    a = make(rng, (rows, k)).astype(np.int8)
    b = (_random(rng, (k, cols)) if pattern == "one_hot" else make(rng, (k, cols))).astype(np.int8)
    return Tile(a, b, pattern)


def tile_beats(tile):
    """The operand beats of a tile in stream order: ``{"a": A[:, k], "b": B[k, :], "last"}``."""
    for k in range(tile.k):
        yield {"a": [int(x) for x in tile.a[:, k]], "b": [int(x) for x in tile.b[k, :]],
               "last": int(k == tile.k - 1)}


def drained_rows(c):
    """Expected result beats of one tile: rows bottom first, ``last`` on row 0."""
    rows = c.shape[0]
    return [{"data": [int(x) for x in c[row]], "row": row, "last": int(row == 0)}
            for row in reversed(range(rows))]
