"""Bit-exact NumPy golden models of what Loom's hardware computes. This module is the spec.

int8 GEMM (the systolic array's int8 datapath)
----------------------------------------------
* Operands are signed 8-bit two's-complement integers, ``-128 ... 127``.
* Each product ``A[i, k] * B[k, j]`` is exact (it fits in 16 bits: ``-16256 ... 16384``).
* Processing element ``(i, j)`` accumulates the products in the order ``k = 0, 1, ..., K-1``
  in a 32-bit two's-complement register, starting from the first product (not from a stale
  value), and every addition wraps modulo ``2**32`` (no saturation, no overflow flag).
* Because addition modulo ``2**32`` is associative and commutative, the result equals the
  exact integer sum reduced to the signed 32-bit range:
  ``C[i, j] = wrap32(sum_k A[i, k] * B[k, j])`` with ``wrap32(x) = ((x + 2**31) mod 2**32)
  - 2**31``. The model computes the exact sum in int64 (which cannot overflow for
  ``K < 2**48``) and wraps once; ``tb/test_golden.py`` checks this against a step-by-step
  wrapped accumulation in the hardware's order.
"""
import numpy as np

__all__ = ["INT8_MIN", "INT8_MAX", "wrap_int32", "check_int8", "int8_gemm"]

INT8_MIN, INT8_MAX = -128, 127
_MAX_K = 1 << 48  # |sum| <= K * 2**14 must stay below 2**62 for exact int64 accumulation


def wrap_int32(values):
    """Reduce integers to signed 32-bit two's complement (modulo ``2**32``) as ``np.int32``."""
    values = np.asarray(values, dtype=np.int64)
    return ((values + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


def check_int8(name, array):
    """Return ``array`` as an ``np.int8`` array; raise if it holds anything an int8 cannot.

    Accepts any integer dtype whose values lie in ``-128 ... 127``; floats, booleans and
    out-of-range values raise :class:`TypeError`/:class:`ValueError` naming ``name``.
    """
    array = np.asarray(array)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must hold integers for the int8 datapath, not {array.dtype}")
    if array.size and (array.min() < INT8_MIN or array.max() > INT8_MAX):
        raise ValueError(f"{name} holds values outside the int8 range {INT8_MIN}..{INT8_MAX} "
                         f"(min {array.min()}, max {array.max()}); quantise it first")
    return array.astype(np.int8)


def int8_gemm(a, b):
    """``C = A @ B`` exactly as the int8 array computes it (see the module docstring).

    Parameters
    ----------
    a : array_like, shape (M, K), int8 values
    b : array_like, shape (K, N), int8 values

    Returns
    -------
    np.ndarray, shape (M, N), dtype int32
        The wrapped 32-bit accumulations.
    """
    a = check_int8("a", a)
    b = check_int8("b", b)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"a and b must be 2-D matrices, not shapes {a.shape} and {b.shape}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"inner dimensions differ: a is {a.shape}, b is {b.shape}")
    if a.shape[1] < 1:
        raise ValueError("K must be at least 1: the array has no empty-sum result")
    if a.shape[1] >= _MAX_K:
        raise ValueError(f"K = {a.shape[1]} is too large for the exact int64 model")
    return wrap_int32(a.astype(np.int64) @ b.astype(np.int64))
