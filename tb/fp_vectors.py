"""Stimulus for the floating-point units: special classes, boundaries, structured cases.

Every generator returns bit patterns (``np.uint16`` for binary16, ``np.uint32`` for
binary32) and takes a NumPy ``Generator`` so runs repeat from the printed seed.
"""
import numpy as np

__all__ = ["FP16_SPECIALS", "FP32_SPECIALS", "fp16_exponent_boundaries", "cross",
           "adder_random_pairs", "adder_structured_pairs", "converter_subset"]

_SIGN16, _SIGN32 = 0x8000, 0x80000000


def _both_signs(values, sign):
    values = np.asarray(values, dtype=np.uint64)
    return np.unique(np.concatenate([values, values | sign]))


#: binary16 specials: zeros, subnormal min/max, normal min/max, 1.0 and neighbours, Inf, NaNs.
FP16_SPECIALS = _both_signs([0x0000, 0x0001, 0x0002, 0x03FF, 0x0400, 0x0401, 0x07FF, 0x3BFF,
                             0x3C00, 0x3C01, 0x7BFE, 0x7BFF, 0x7C00, 0x7C01, 0x7E00, 0x7FFF],
                            _SIGN16).astype(np.uint16)

#: binary32 specials: the same classes plus values around 2**-24 used by the accumulator.
FP32_SPECIALS = _both_signs([
    0x00000000, 0x00000001, 0x00000002, 0x003FFFFF, 0x00400000, 0x007FFFFF,   # zero, subnormal
    0x00800000, 0x00800001, 0x00FFFFFF, 0x01000000,                           # smallest normals
    0x33800000, 0x33800001, 0x33FFFFFF, 0x34000000,                           # 2**-24, 2**-23
    0x3F7FFFFF, 0x3F800000, 0x3F800001, 0x3FFFFFFF, 0x40000000,               # around 1 and 2
    0x4B7FFFFF, 0x4B800000, 0x7F000000, 0x7F7FFFFE, 0x7F7FFFFF,               # 2**24, largest
    0x7F800000, 0x7F800001, 0x7FC00000, 0x7FFFFFFF,                           # Inf, NaNs
], _SIGN32).astype(np.uint32)


def fp16_exponent_boundaries():
    """For every binary16 exponent, the smallest and largest fraction, both signs (128)."""
    exponents = np.arange(32, dtype=np.uint32) << 10
    values = np.concatenate([exponents, exponents | 0x3FF])
    return _both_signs(values, _SIGN16).astype(np.uint16)


def cross(xs, ys):
    """Every ordered pair ``(x, y)``: two equal-length arrays."""
    return np.repeat(xs, len(ys)), np.tile(ys, len(xs))


def adder_random_pairs(rng, count):
    """``count`` binary32 pairs: a third uniform bit patterns, a third with exponents within
    +-30 of each other (cancellation and rounding), a third fp16 products plus an fp32
    accumulator (what the array's adder sees)."""
    third = count // 3
    a = rng.integers(0, 2**32, size=count, dtype=np.uint64)
    b = rng.integers(0, 2**32, size=count, dtype=np.uint64)
    near = slice(third, 2 * third)
    exponent = (a[near] >> 23) & 0xFF
    shifted = np.clip(exponent.astype(np.int64) + rng.integers(-30, 31, size=third), 0, 254)
    b[near] = (b[near] & 0x807FFFFF) | (shifted.astype(np.uint64) << 23)
    from tb.golden import fp16_mul
    tail = slice(2 * third, count)
    n = count - 2 * third
    a[tail] = fp16_mul(rng.integers(0, 2**16, size=n, dtype=np.uint16),
                       rng.integers(0, 2**16, size=n, dtype=np.uint16))
    return a.astype(np.uint32), b.astype(np.uint32)


def adder_structured_pairs(rng, count):
    """Pairs aimed at the adder's corner cases, ``count`` of each kind:

    exact cancellation ``x + -x``; ties (``b`` is exactly half an ulp of ``a``, so the result
    rounds to even) and near-ties (one ulp of ``b`` either side); carries into the next binade
    (``a``'s fraction all ones); subnormal + subnormal; subnormal +- smallest normals.
    """
    kinds = []
    x = rng.integers(0, 2**32, size=count, dtype=np.uint64)
    kinds.append((x, x ^ _SIGN32))                                         # exact cancellation
    exponent = rng.integers(25, 254, size=count, dtype=np.uint64)
    a = (exponent << 23) | rng.integers(0, 2**23, size=count, dtype=np.uint64)
    a |= rng.integers(0, 2, size=count, dtype=np.uint64) << 31
    half_ulp = (exponent - 24) << 23                                       # 2**(e-24)
    sign = rng.integers(0, 2, size=count, dtype=np.uint64) << 31
    kinds += [(a, half_ulp | sign), (a, (half_ulp + 1) | sign), (a, (half_ulp - 1) | sign)]
    ones = (exponent << 23) | 0x7FFFFF                                     # carry out
    kinds.append((ones, (exponent - rng.integers(1, 26, size=count, dtype=np.uint64)) << 23))
    sub_a = rng.integers(0, 2**23, size=count, dtype=np.uint64) | sign
    sub_b = rng.integers(0, 2**23, size=count, dtype=np.uint64)
    sub_b |= rng.integers(0, 2, size=count, dtype=np.uint64) << 31
    kinds.append((sub_a, sub_b))
    kinds.append((sub_a, (0x00800000 + rng.integers(0, 4, size=count, dtype=np.uint64))
                  | (rng.integers(0, 2, size=count, dtype=np.uint64) << 31)))
    a = np.concatenate([k[0] for k in kinds]).astype(np.uint32)
    b = np.concatenate([k[1] for k in kinds]).astype(np.uint32)
    return a, b


def converter_subset():
    """The justified exhaustive subset of binary32 -> binary16 inputs (6,291,456 patterns).

    Every sign x every exponent (256) x every value of the 11 high fraction bits x six
    patterns of the 12 low ones (0, 1, 0x7FF, 0x800, 0x801, 0xFFF). Why this covers the
    rounding: for every result, normal or subnormal, the kept bits and the guard bit lie in
    the hidden bit and the 11 high fraction bits, which are enumerated exhaustively; the low
    12 bits only feed the sticky bit (or, for normal results, are the guard and sticky bits
    themselves), and the six patterns give sticky 0 and 1 for every guard value, exact ties
    (0x800) and their neighbours (0x7FF, 0x801).
    """
    low = np.array([0, 1, 0x7FF, 0x800, 0x801, 0xFFF], dtype=np.uint64)
    high = np.arange(2048, dtype=np.uint64) << 12
    fractions = (high[:, None] | low[None, :]).ravel()
    exponents = np.arange(256, dtype=np.uint64) << 23
    values = (exponents[:, None] | fractions[None, :]).ravel()
    return np.concatenate([values, values | _SIGN32]).astype(np.uint32)
