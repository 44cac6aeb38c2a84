"""The golden model itself, checked against plain NumPy and an explicit wrapped accumulation."""
from fractions import Fraction

import numpy as np
import pytest

from tb.golden import (
    CANONICAL_NAN16,
    CANONICAL_NAN32,
    fp16_gemm,
    fp16_mul,
    fp32_add,
    fp32_to_fp16,
    int8_gemm,
    wrap_int32,
)


def sequential_wrapped_gemm(a, b):
    """The hardware's order literally: k = 0..K-1, wrap to int32 after every addition."""
    m, k = a.shape
    n = b.shape[1]
    c = np.zeros((m, n), dtype=object)
    for i in range(m):
        for j in range(n):
            acc = 0
            for kk in range(k):
                acc = int(a[i, kk]) * int(b[kk, j]) + acc
                acc = (acc + 2**31) % 2**32 - 2**31
            c[i, j] = acc
    return c.astype(np.int64)


def test_matches_int64_matmul_without_wrap(rng):
    for _ in range(20):
        m, k, n = rng.integers(1, 40, size=3)
        a = rng.integers(-128, 128, size=(m, k))
        b = rng.integers(-128, 128, size=(k, n))
        expected = np.matmul(a.astype(np.int64), b.astype(np.int64))
        assert np.abs(expected).max() < 2**31  # this regime must not wrap
        got = int8_gemm(a, b)
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got.astype(np.int64), expected)


def test_matches_sequential_accumulation_with_wrap():
    # K = 2**17 products of (-128)*(-128) = 2**14 sum to exactly 2**31: wraps to -2**31.
    k = 2**17 + 3
    a = np.full((1, k), -128)
    b = np.full((k, 2), -128)
    b[-3:, 1] = 127
    got = int8_gemm(a, b)
    exact = (k - 3) * 2**14 + np.array([3 * 2**14, 3 * -128 * 127])
    np.testing.assert_array_equal(got[0].astype(np.int64), (exact + 2**31) % 2**32 - 2**31)
    assert got[0, 0] == -(2**31) + 3 * 2**14


def test_matches_sequential_accumulation_random(rng):
    # Large magnitudes with a mixed-sign tail make intermediate sums wrap back and forth.
    a = rng.choice([-128, 127], size=(3, 300)).astype(np.int64)
    b = rng.choice([-128, 127], size=(300, 2)).astype(np.int64)
    np.testing.assert_array_equal(int8_gemm(a, b).astype(np.int64), sequential_wrapped_gemm(a, b))
    big = np.tile(a, (1, 200))[:, :60000]
    bigb = np.tile(b, (200, 1))[:60000]
    exact = big @ bigb
    np.testing.assert_array_equal(int8_gemm(big, bigb), wrap_int32(exact))


def test_wrap_int32_edges():
    values = np.array([2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**32, 0, -1])
    np.testing.assert_array_equal(
        wrap_int32(values), np.array([2**31 - 1, -(2**31), -(2**31), 2**31 - 1, 0, 0, -1]))


@pytest.mark.parametrize("bad, error, message", [
    (np.array([[1.5]]), TypeError, "integers"),
    (np.array([[True]]), TypeError, "integers"),
    (np.array([[128]]), ValueError, "int8 range"),
    (np.array([[-129]]), ValueError, "int8 range"),
])
def test_rejects_non_int8(bad, error, message):
    with pytest.raises(error, match=message):
        int8_gemm(bad, np.ones((1, 1), dtype=np.int8))


def test_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="inner dimensions"):
        int8_gemm(np.ones((2, 3), dtype=np.int8), np.ones((4, 2), dtype=np.int8))
    with pytest.raises(ValueError, match="2-D"):
        int8_gemm(np.ones(3, dtype=np.int8), np.ones((3, 2), dtype=np.int8))


# --- fp16 datapath: the golden model against exact arithmetic and float64 -----------------


def round_to_binary(value, fraction_bits, exponent_bits):
    """Exact rational -> nearest binary float (ties to even), as (sign, exponent, fraction).

    A reference written from the IEEE 754 definition with Python fractions, independent of
    NumPy: returns the bit pattern, Inf on overflow, subnormals below the normal range.
    """
    bias = (1 << (exponent_bits - 1)) - 1
    sign = 1 if value < 0 else 0
    magnitude = abs(Fraction(value))
    inf_bits = ((1 << exponent_bits) - 1) << fraction_bits
    if magnitude == 0:
        return sign << (exponent_bits + fraction_bits)
    exponent = magnitude.numerator.bit_length() - magnitude.denominator.bit_length()
    if Fraction(2) ** exponent > magnitude:
        exponent -= 1
    exponent = max(exponent, 1 - bias)                     # subnormal quantum below this
    quantum = Fraction(2) ** (exponent - fraction_bits)
    scaled = magnitude / quantum
    integer = scaled.numerator // scaled.denominator
    remainder = scaled - integer
    if remainder > Fraction(1, 2) or (remainder == Fraction(1, 2) and integer % 2 == 1):
        integer += 1
    if integer >= 1 << (fraction_bits + 1):                 # rounding carried to next binade
        integer >>= 1
        exponent += 1
    if integer < 1 << fraction_bits:                        # subnormal
        field = 0
    else:
        field = exponent + bias
    if field >= (1 << exponent_bits) - 1:
        return (sign << (exponent_bits + fraction_bits)) | inf_bits
    bits = (field << fraction_bits) | (integer & ((1 << fraction_bits) - 1))
    return (sign << (exponent_bits + fraction_bits)) | bits


def exact_value(bits, fraction_bits, exponent_bits):
    """Exact rational value of a finite binary float bit pattern."""
    bias = (1 << (exponent_bits - 1)) - 1
    fraction = bits & ((1 << fraction_bits) - 1)
    field = (bits >> fraction_bits) & ((1 << exponent_bits) - 1)
    sign = -1 if bits >> (exponent_bits + fraction_bits) else 1
    if field == 0:
        return sign * Fraction(fraction) * Fraction(2) ** (1 - bias - fraction_bits)
    return sign * Fraction(fraction + (1 << fraction_bits)) * Fraction(2) ** (
        field - bias - fraction_bits)


def test_fp16_products_are_exact_in_float32(rng):
    a = rng.integers(0, 2**16, size=200_000, dtype=np.uint16)
    b = rng.integers(0, 2**16, size=200_000, dtype=np.uint16)
    got = fp16_mul(a, b)
    with np.errstate(invalid="ignore"):  # 0 * Inf
        product64 = (a.view(np.float16).astype(np.float64)
                     * b.view(np.float16).astype(np.float64))
    finite = np.isfinite(product64)
    np.testing.assert_array_equal(got[finite].view(np.float32).astype(np.float64),
                                  product64[finite])
    assert (got[np.isnan(product64)] == CANONICAL_NAN32).all()


def test_fp32_add_matches_exact_rounding(rng):
    a = rng.integers(0, 2**32, size=3000, dtype=np.uint64)
    b = a ^ rng.integers(0, 2**27, size=3000, dtype=np.uint64)  # close exponents
    b[::2] = rng.integers(0, 2**32, size=1500, dtype=np.uint64)
    a, b = a.astype(np.uint32), b.astype(np.uint32)
    got = fp32_add(a, b)
    for x, y, z in zip(a.tolist(), b.tolist(), got.tolist(), strict=True):
        if (x >> 23) & 0xFF == 0xFF or (y >> 23) & 0xFF == 0xFF:
            continue  # Inf/NaN: covered by the special-class tests
        exact = exact_value(x, 23, 8) + exact_value(y, 23, 8)
        expected = round_to_binary(exact, 23, 8)
        if exact == 0:  # IEEE: x + -x = +0 in round-to-nearest; -0 + -0 = -0
            expected = 0x80000000 if (x >> 31) and (y >> 31) else 0
        assert z == expected, f"{x:#010x} + {y:#010x}: model {z:#010x}, exact {expected:#010x}"


def test_fp32_add_special_values():
    inf, nan, ninf = 0x7F800000, 0x7FC00001, 0xFF800000
    cases = {(inf, ninf): CANONICAL_NAN32, (inf, inf): inf, (ninf, 0x3F800000): ninf,
             (nan, 0): CANONICAL_NAN32, (0x80000000, 0x80000000): 0x80000000,
             (0x80000000, 0): 0, (0x3F800000, 0xBF800000): 0,
             (0x7F7FFFFF, 0x73000000): inf}  # max + half an ulp: tie, odd -> rounds to Inf
    for (x, y), expected in cases.items():
        assert fp32_add(np.uint32(x), np.uint32(y)) == expected, (hex(x), hex(y))


def test_fp32_to_fp16_matches_exact_rounding(rng):
    values = rng.integers(0, 2**32, size=3000, dtype=np.uint64)
    exponents = rng.integers(95, 150, size=3000, dtype=np.uint64)   # around binary16's range
    values = ((values & 0x807FFFFF) | (exponents << 23)).astype(np.uint32)
    got = fp32_to_fp16(values)
    for x, z in zip(values.tolist(), got.tolist(), strict=True):
        expected = round_to_binary(exact_value(x, 23, 8), 10, 5)
        assert z == expected, f"{x:#010x}: model {z:#06x}, exact {expected:#06x}"
    assert fp32_to_fp16(np.uint32(0x7FC12345)) == CANONICAL_NAN16


def test_fp16_gemm_sums_in_order_in_float32(rng):
    a = rng.standard_normal((3, 40)).astype(np.float16)
    b = rng.standard_normal((40, 2)).astype(np.float16)
    got = fp16_gemm(a, b).view(np.float32)
    for i in range(3):
        for j in range(2):
            acc = np.float32(a[i, 0]) * np.float32(b[0, j])
            for k in range(1, 40):
                acc = np.float32(acc + np.float32(a[i, k]) * np.float32(b[k, j]))
            assert got[i, j].tobytes() == acc.tobytes()


@pytest.mark.parametrize("k", [1, 16, 1024])
def test_fp16_gemm_within_the_float32_error_bound(rng, k):
    """|C - exact| <= gamma_(K-1) * sum |a||b| with gamma_n = n*u / (1 - n*u), u = 2**-24."""
    a = rng.standard_normal((8, k)).astype(np.float16)
    b = rng.standard_normal((k, 8)).astype(np.float16)
    got = fp16_gemm(a, b).view(np.float32).astype(np.float64)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    exact = a64 @ b64           # products are exact; float64 sums are far more accurate
    u = 2.0**-24
    gamma = (k - 1) * u / (1 - (k - 1) * u)
    bound = gamma * (np.abs(a64) @ np.abs(b64)) + 2.0**-60
    assert (np.abs(got - exact) <= bound).all()
    if k == 1:
        np.testing.assert_array_equal(got, exact)


def test_fp16_gemm_keeps_negative_zero_and_canonical_nan():
    a = np.array([[-0.0, 0.0]], dtype=np.float16)
    b = np.array([[1.0], [0.0]], dtype=np.float16)
    assert fp16_gemm(a[:, :1], b[:1]).item() == 0x80000000      # -0 * 1 stays -0
    assert fp16_gemm(a, b).item() == 0                            # -0 + 0 = +0
    inf = np.array([[np.inf, -np.inf]], dtype=np.float16)
    ones = np.ones((2, 1), dtype=np.float16)
    assert fp16_gemm(inf, ones).item() == CANONICAL_NAN32         # Inf - Inf
    with pytest.raises(TypeError, match="float16"):
        fp16_gemm(np.ones((1, 1)), np.ones((1, 1)))


# --- fp16 accumulation across K splits ------------------------------------------------------


def test_fp16_gemm_k_chunks_match_an_explicit_float32_loop(rng):
    """Each chunk in ascending k from its first product, chunk sums added in order: written
    out with NumPy float32 scalars, independent of the model's code."""
    a = (rng.standard_normal((3, 23)) * np.exp2(rng.integers(-8, 8, (3, 23)))).astype(np.float16)
    b = rng.standard_normal((23, 2)).astype(np.float16)
    for k_chunk, lengths in ((5, [5, 5, 5, 5, 3]), ([1, 9, 13], [1, 9, 13]), (23, [23])):
        got = fp16_gemm(a, b, k_chunk=k_chunk).view(np.float32)
        for i in range(3):
            for j in range(2):
                acc, k0 = None, 0
                for length in lengths:
                    part = np.float32(a[i, k0]) * np.float32(b[k0, j])
                    for kk in range(k0 + 1, k0 + length):
                        part = np.float32(part + np.float32(a[i, kk]) * np.float32(b[kk, j]))
                    acc = part if acc is None else np.float32(acc + part)
                    k0 += length
                assert got[i, j].tobytes() == acc.tobytes(), (k_chunk, i, j)


def test_fp16_gemm_k_chunk_of_all_of_k_is_the_plain_gemm(rng):
    a = rng.standard_normal((4, 17)).astype(np.float16)
    b = rng.standard_normal((17, 3)).astype(np.float16)
    plain = fp16_gemm(a, b)
    for k_chunk in (None, 17, 100, [17]):
        np.testing.assert_array_equal(fp16_gemm(a, b, k_chunk=k_chunk), plain)
    # a real split rounds differently somewhere (chunk sums are rounded first)
    assert (fp16_gemm(a, b, k_chunk=4) != plain).any()


@pytest.mark.parametrize("k, k_chunk", [(64, 16), (1024, 256), (1000, 333), (300, 1)])
def test_fp16_gemm_k_chunks_within_the_float32_error_bound(rng, k, k_chunk):
    """A chunked sum is a summation tree in which every product passes through at most
    d = (longest chunk - 1) + (chunks - 1) roundings: |C - exact| <= gamma_d * sum |a||b|."""
    a = rng.standard_normal((8, k)).astype(np.float16)
    b = rng.standard_normal((k, 8)).astype(np.float16)
    got = fp16_gemm(a, b, k_chunk=k_chunk).view(np.float32).astype(np.float64)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    exact = a64 @ b64
    chunks = -(-k // k_chunk)
    depth = (min(k_chunk, k) - 1) + (chunks - 1)
    u = 2.0**-24
    gamma = depth * u / (1 - depth * u)
    bound = gamma * (np.abs(a64) @ np.abs(b64)) + 2.0**-60
    assert (np.abs(got - exact) <= bound).all()


def test_fp16_gemm_k_chunks_signed_zeros_specials_and_ties():
    f16 = np.float16

    def gemm(a_row, b_col, k_chunk):
        a = np.array([a_row], dtype=f16)
        b = np.array(b_col, dtype=f16).reshape(-1, 1)
        return int(fp16_gemm(a, b, k_chunk=k_chunk).item())

    # chunk sums -0 and -0: -0 + -0 = -0; an all -0 first chunk is not added to +0
    assert gemm([-0.0, -0.0], [1.0, 1.0], 1) == 0x80000000
    assert gemm([-0.0], [1.0], 1) == 0x80000000
    assert gemm([-0.0, 0.0], [1.0, 1.0], 1) == 0                       # -0 + +0 = +0
    assert gemm([1.0, -1.0], [3.0, 3.0], 1) == 0                       # x + -x = +0
    assert gemm([np.inf, -np.inf], [1.0, 1.0], 1) == CANONICAL_NAN32   # Inf - Inf across chunks
    assert gemm([np.inf, 65504.0], [1.0, 1.0], 1) == 0x7F800000        # Inf + finite
    assert gemm([np.nan, 1.0], [1.0, 1.0], 1) == CANONICAL_NAN32
    # (binary32 chunk sums cannot overflow: |sum| <= K * 65504**2; Inf comes from operands)
    # ties to even between chunks: 2**24 + 1 (chunk sum 2**24, then 1) rounds to 2**24
    assert gemm([2048.0, 1.0], [8192.0, 1.0], 1) == np.float32(2**24).view(np.uint32)
    assert gemm([2048.0, 1.0], [8192.0, 1.0], None) == np.float32(2**24).view(np.uint32)
    assert gemm([2048.0, 1.0, 1.0], [8192.0, 1.0, 1.0], [1, 2]) == \
        np.float32(2**24 + 2).view(np.uint32)                          # 1 + 1 summed first


@pytest.mark.parametrize("k_chunk", [0, -3, [2, 3], [3, 0, 1], True])
def test_fp16_gemm_rejects_bad_k_chunks(k_chunk):
    with pytest.raises((ValueError, TypeError)):
        fp16_gemm(np.ones((1, 4), dtype=np.float16), np.ones((4, 1), dtype=np.float16),
                  k_chunk=k_chunk)
