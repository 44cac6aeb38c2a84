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

fp16 GEMM (the fp16 datapath)
-----------------------------
* Operands are IEEE binary16 bit patterns (``np.uint16``, or ``np.float16`` arrays).
* Products are formed in binary32 and are **exact**: binary16 significands have 11 bits, so a
  product needs at most 22 of binary32's 24, and every product magnitude (``2**-48`` up to
  ``65504**2``) is a binary32 normal number or zero. ``fp16_mul`` is therefore
  ``float32(a) * float32(b)`` with no rounding at all.
* Processing element ``(i, j)`` accumulates in binary32 in the order ``k = 0, 1, ..., K-1``:
  ``acc = p_0``, then ``acc = fl32(acc + p_k)`` for each further ``k``, each addition rounded
  to nearest, ties to even, with subnormals kept (no flush to zero), exactly NumPy's float32
  addition. Starting from ``p_0`` rather than ``+0.0 + p_0`` matters for one case:
  a ``-0.0`` product stays ``-0.0``.
* Signed zeros and specials follow IEEE 754: ``x + (-x) = +0``, ``-0 + -0 = -0``,
  ``Inf - Inf`` and ``0 * Inf`` are NaN, NaN propagates, overflow rounds to Inf.
* NaN results are always the canonical quiet NaN: ``0x7FC00000`` in binary32, ``0x7E00`` in
  binary16 (the hardware does not propagate payloads; NumPy does, so the model replaces
  every NaN it produces with the canonical pattern).
* ``fp32_to_fp16`` rounds binary32 results to binary16 to nearest, ties to even (NumPy's
  ``astype(np.float16)``), overflowing to Inf and producing subnormals.

fp16 accumulation across K splits (``COMPUTE.accumulate`` on fp16 tiles)
-------------------------------------------------------------------------
A reduction longer than a buffer slot is split into chunks ``K = K_0 + K_1 + ...``, one
COMPUTE each into the same result slot, the first overwriting, the others accumulating:

* chunk ``c``'s sum ``S_c`` is exactly the fp16 GEMM above over its ``k`` range (ascending
  ``k``, starting from the chunk's first product, each addition RNE binary32);
* the result slot then holds ``acc = S_0`` and, for each further chunk in order,
  ``acc = fp32_add(acc, S_c)``: one binary32 addition per chunk, rounded to nearest, ties to
  even, with the adder's rules for signed zeros (``-0 + -0 = -0``, ``x + -x = +0``),
  ``Inf - Inf = NaN``, canonical NaN and overflow to Inf (``fp32_add``). The first chunk is
  not added to a zero: an all ``-0`` first chunk stays ``-0``.

So a split changes the rounding (chunk sums are rounded, then summed) but never the
order within a chunk; ``fp16_gemm(a, b, k_chunk=...)`` computes exactly this.

int32 -> int8 requantisation (post-processing on store)
-------------------------------------------------------
gemmlowp / TensorFlow Lite arithmetic, per output channel ``j`` (``requantize``):

1. ``x = wrap32(acc + bias[j])`` (bias optional; the add wraps like the accumulator);
2. ``x = SaturatingRoundingDoublingHighMul(x, multiplier[j])``: the high 32 bits of
   ``2 * x * multiplier`` rounded to nearest with ties away from zero, i.e.
   ``(x * m + (2**30 if x * m >= 0 else 1 - 2**30)) / 2**31`` with C's truncating division;
   the single overflow case ``x = m = -2**31`` saturates to ``2**31 - 1``;
3. ``x = RoundingDivideByPOT(x, shift[j])``: arithmetic shift right by ``shift`` (0..31)
   rounding to nearest, ties away from zero;
4. ``x = x + zero_point`` (the output zero point, -128..127);
5. clamp to ``[-128, 127]``, or with ReLU to ``[max(zero_point, -128), 127]`` (zero in the
   real domain is ``zero_point`` in the quantised one).

The real scale applied is ``multiplier * 2**-31 * 2**-shift``; multipliers are normally in
``[2**30, 2**31)`` (see TFLite's ``QuantizeMultiplier``).
"""
import numpy as np

__all__ = ["INT8_MIN", "INT8_MAX", "wrap_int32", "check_int8", "int8_gemm",
           "CANONICAL_NAN16", "CANONICAL_NAN32", "fp16_bits", "fp16_mul", "fp32_add",
           "fp32_to_fp16", "fp16_gemm", "INT32_MIN", "INT32_MAX",
           "saturating_rounding_doubling_high_mul", "rounding_divide_by_pot", "requantize"]

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

CANONICAL_NAN16 = 0x7E00
CANONICAL_NAN32 = 0x7FC00000

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


def fp16_bits(values):
    """binary16 bit patterns (``np.uint16``) of ``values``: float16 arrays are reinterpreted,
    unsigned 16-bit integer arrays are taken as patterns already; anything else raises."""
    values = np.asarray(values)
    if values.dtype == np.float16:
        return values.view(np.uint16)
    if values.dtype == np.uint16:
        return values
    raise TypeError(f"fp16 operands must be np.float16 values or np.uint16 bit patterns, "
                    f"not {values.dtype}")


def _canonical32(values):
    """binary32 bit patterns of float32 ``values``, with every NaN made canonical."""
    bits = np.asarray(values, dtype=np.float32).view(np.uint32).copy()
    bits[np.isnan(values)] = CANONICAL_NAN32
    return bits


def fp16_mul(a, b):
    """Exact binary32 product bits of binary16 ``a`` and ``b`` (elementwise, broadcasting)."""
    a32 = fp16_bits(a).view(np.float16).astype(np.float32)
    b32 = fp16_bits(b).view(np.float16).astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        return _canonical32(a32 * b32)


def fp32_add(a, b):
    """binary32 sum bits of binary32 bit patterns ``a`` and ``b`` (``np.uint32``), RNE."""
    a32 = np.asarray(a, dtype=np.uint32).view(np.float32)
    b32 = np.asarray(b, dtype=np.uint32).view(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        return _canonical32(a32 + b32)


def fp32_to_fp16(bits):
    """binary16 bits (``np.uint16``) nearest to binary32 bit patterns ``bits``, ties to even."""
    f32 = np.asarray(bits, dtype=np.uint32).view(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        out = f32.astype(np.float16).view(np.uint16).copy()
    out[np.isnan(f32)] = CANONICAL_NAN16
    return out


def fp16_gemm(a, b, k_chunk=None):
    """``C = A @ B`` exactly as the fp16 array computes it: binary32 result bits (``np.uint32``).

    ``a`` is (M, K) and ``b`` (K, N), binary16 (``np.float16`` or ``np.uint16`` patterns).
    The sum over ``k`` runs in ascending order in float32, as the module docstring states.

    ``k_chunk`` splits ``K`` as the hardware does when one output tile takes several
    COMPUTEs, the later ones accumulating (module docstring, "fp16 accumulation across K
    splits"): an int ``n`` makes chunks of ``n`` (the last one shorter if ``n`` does not
    divide ``K``), a sequence gives the chunk lengths (positive, summing to ``K``). Each
    chunk is summed as above; chunk sums are combined in order with :func:`fp32_add`.
    ``None`` (or one chunk of all of ``K``) is the plain unsplit GEMM.
    """
    a = fp16_bits(a)
    b = fp16_bits(b)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"a and b must be 2-D matrices, not shapes {a.shape} and {b.shape}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"inner dimensions differ: a is {a.shape}, b is {b.shape}")
    if a.shape[1] < 1:
        raise ValueError("K must be at least 1: the array has no empty-sum result")
    acc = None
    for k0, k1 in _k_chunks(a.shape[1], k_chunk):
        part = _fp16_gemm_in_order(a[:, k0:k1], b[k0:k1])
        acc = part if acc is None else fp32_add(acc, part)
    return acc


def _k_chunks(k, k_chunk):
    """``[(k0, k1), ...]`` ranges of ``k_chunk`` (see :func:`fp16_gemm`)."""
    if k_chunk is None:
        return [(0, k)]
    if isinstance(k_chunk, (int, np.integer)) and not isinstance(k_chunk, bool):
        if k_chunk < 1:
            raise ValueError(f"k_chunk must be at least 1, not {k_chunk}")
        return [(k0, min(k0 + int(k_chunk), k)) for k0 in range(0, k, int(k_chunk))]
    lengths = [int(n) for n in k_chunk]
    if any(n < 1 for n in lengths) or sum(lengths) != k:
        raise ValueError(f"k_chunk lengths {lengths} must be positive and sum to K = {k}")
    bounds = np.cumsum([0, *lengths]).tolist()
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _fp16_gemm_in_order(a, b):
    """One unsplit fp16 GEMM of bit patterns: float32 sums in ascending ``k`` from p_0."""
    a32 = a.view(np.float16).astype(np.float32)
    b32 = b.view(np.float16).astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        acc = np.outer(a32[:, 0], b32[0, :]).astype(np.float32)
        for k in range(1, a.shape[1]):
            acc = acc + np.outer(a32[:, k], b32[k, :]).astype(np.float32)
    return _canonical32(acc)


def saturating_rounding_doubling_high_mul(a, b):
    """gemmlowp's ``SaturatingRoundingDoublingHighMul`` on int32 arrays (see module doc)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b                                   # |ab| <= 2**62: exact in int64
    nudged = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = np.where(nudged >= 0, nudged >> 31, -((-nudged) >> 31))  # C division truncates
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, high).astype(np.int32)


def rounding_divide_by_pot(x, exponent):
    """gemmlowp's ``RoundingDivideByPOT``: ``x / 2**exponent`` rounded, ties away from 0."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    if np.any((exponent < 0) | (exponent > 31)):
        raise ValueError("shift must be within 0..31")
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return ((x >> exponent) + (remainder > threshold)).astype(np.int32)


def requantize(acc, multiplier, shift, zero_point, bias=0, relu=False):
    """int32 accumulators -> int8 outputs by the rules in the module docstring.

    Every argument broadcasts against ``acc`` (per-channel parameters are vectors along the
    last axis). Returns ``np.int8``.
    """
    x = wrap_int32(np.asarray(acc, dtype=np.int64) + np.asarray(bias, dtype=np.int64))
    x = saturating_rounding_doubling_high_mul(x, multiplier)
    x = rounding_divide_by_pot(x, shift).astype(np.int64) + np.asarray(zero_point, np.int64)
    low = np.where(relu, np.maximum(zero_point, -128), -128)
    return np.clip(x, low, 127).astype(np.int8)
