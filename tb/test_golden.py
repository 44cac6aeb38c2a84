"""The golden model itself, checked against plain NumPy and an explicit wrapped accumulation."""
import numpy as np
import pytest

from tb.golden import int8_gemm, wrap_int32


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
