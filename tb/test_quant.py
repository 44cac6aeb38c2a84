"""sw.quant: the requantisation multiplier within its documented error, the scales the
hardware cannot represent, quantised GEMMs on the device within a bound derived from the
scales, and int8 outputs equal to the golden requantiser."""
import numpy as np
import pytest

from sw import RangeError, ShapeError, open_device
from sw.quant import (
    MIN_SCALE,
    MULTIPLIER_RELATIVE_ERROR,
    quantize_activations,
    quantize_linear,
    quantize_multiplier,
    quantize_weights,
    quantized_linear,
    requant_params,
)
from tb.golden import int8_gemm, requantize


def test_multiplier_round_trip_is_within_the_documented_bound(rng):
    # log-uniform over the whole representable range, plus its edges
    scales = np.concatenate([2.0 ** rng.uniform(-32, 0, size=20000),
                             [MIN_SCALE, 0.5, 0.25, 1 - 2.0**-33, 2.0**-31 * 1.5]])
    scales = scales[scales < 1 - 2.0**-33]
    mult, shift = quantize_multiplier(scales)
    assert ((mult >= 2**30) & (mult < 2**31)).all()
    assert ((shift >= 0) & (shift <= 31)).all()
    represented = mult * 2.0**-31 * 2.0**-shift.astype(np.float64)
    rel = np.abs(represented - scales) / scales
    assert rel.max() <= MULTIPLIER_RELATIVE_ERROR
    m, s = quantize_multiplier(0.5)
    assert (m, s) == (2**30, 0) and isinstance(m, int)
    assert quantize_multiplier(MIN_SCALE) == (2**30, 31)


@pytest.mark.parametrize("scale, message", [
    (1.0, ">= 1"), (3.5, ">= 1"), (1 - 2.0**-40, ">= 1"),       # rounds up to 1
    (2.0**-33, "below 2\\*\\*-32"), (0.0, "positive"), (-0.1, "positive"),
    (float("nan"), "positive"), (float("inf"), "positive")])
def test_unrepresentable_scales_raise_a_range_error(scale, message):
    with pytest.raises(RangeError, match=message):
        quantize_multiplier(scale)
    with pytest.raises(RangeError):
        quantize_multiplier(np.array([0.25, scale]))


def test_quantisation_error_is_at_most_half_a_scale(rng):
    w = rng.standard_normal((50, 20)) * rng.uniform(0.01, 3, size=20)
    w[:, 3] = 0
    qw = quantize_weights(w)
    assert qw.q.dtype == np.int8 and np.abs(qw.q).max() <= 127 and qw.scale.shape == (20,)
    assert (np.abs(qw.dequantize() - w) <= qw.scale / 2 * (1 + 1e-6)).all()
    x = rng.standard_normal((30, 40)) * 4 + 1.5
    for symmetric in (True, False):
        qx = quantize_activations(x, symmetric=symmetric)
        assert np.abs(qx.dequantize() - x).max() <= qx.scale / 2 * (1 + 1e-6)
    qa = quantize_activations(np.abs(x), symmetric=False)      # all >= 0: zp is -128
    assert qa.zero_point == -128 and qa.q.min() == -128
    with pytest.raises(RangeError, match="NaN"):
        quantize_activations(np.array([1.0, np.nan]))
    with pytest.raises(ShapeError):
        quantize_weights(np.ones(4))


@pytest.mark.parametrize("symmetric", [True, False])
def test_quantised_linear_is_within_the_bound_from_the_scales(symmetric, rng):
    dev = open_device("golden", rows=8, cols=8, depth=64)
    m, k, n = 13, 70, 19
    x = rng.standard_normal((m, k)) + (0.7 if not symmetric else 0)
    w = rng.standard_normal((k, n)) * 0.02
    bias = rng.standard_normal(n) * 0.1
    layer = quantize_linear(w, bias)
    y = quantized_linear(dev, x, layer, symmetric=symmetric)
    assert y.dtype == np.float32 and y.shape == (m, n)
    ref = x @ w + bias
    qx = quantize_activations(x, symmetric=symmetric)
    e_x, e_w = qx.scale / 2, layer.weight.scale / 2
    bound = (np.abs(x) @ np.broadcast_to(e_w, (k, n)) + e_x * np.abs(w).sum(axis=0)
             + k * e_x * e_w + qx.scale * layer.weight.scale / 2) * (1 + 1e-5) + 1e-6
    err = np.abs(y - ref)
    assert (err <= bound).all(), f"max error {err.max()} vs bound {bound.min()}"
    assert err.max() < 0.05 * np.abs(ref).max()          # and the bound is not vacuous


@pytest.mark.parametrize("symmetric", [True, False])
def test_requantised_output_equals_the_golden_requantiser(symmetric, rng):
    dev = open_device("golden", rows=8, cols=8, depth=64)
    m, k, n = 9, 33, 17
    x = rng.standard_normal((m, k))
    layer = quantize_linear(rng.standard_normal((k, n)) * 0.05, rng.standard_normal(n) * 0.1)
    ref = x @ (layer.weight.dequantize().astype(np.float64)) + layer.bias
    out_scale, out_zp = np.abs(ref).max() / 100, 5
    for relu in (False, True):
        got = quantized_linear(dev, x, layer, symmetric=symmetric, output_scale=out_scale,
                               output_zero_point=out_zp, relu=relu)
        assert got.q.dtype == np.int8 and got.scale == out_scale
        qx = quantize_activations(x, symmetric=symmetric)
        acc = int8_gemm(qx.q, layer.weight.q)
        acc_scale = qx.scale * layer.weight.scale
        bias = (-qx.zero_point * layer.weight.q.astype(np.int64).sum(axis=0)
                + np.round(layer.bias / acc_scale).astype(np.int64))
        mult, shift = requant_params(qx.scale, layer.weight.scale, out_scale)
        np.testing.assert_array_equal(got.q, requantize(acc, mult, shift, out_zp, bias, relu))
        # within one output unit of the exact rescaling of the same accumulators
        exact = np.round((acc + bias) * acc_scale / out_scale) + out_zp
        exact = np.clip(exact, out_zp if relu else -128, 127)
        assert np.abs(got.q.astype(np.int64) - exact).max() <= 1
        if relu:
            assert got.q.min() >= out_zp


def test_requant_params_reject_scales_the_hardware_cannot_apply():
    with pytest.raises(RangeError, match=">= 1"):
        requant_params(0.1, [0.01, 0.5], 0.001)       # 0.05 / 0.001 = 50: needs a left shift
    with pytest.raises(RangeError, match="> 0"):
        requant_params(0.0, [0.1], 1.0)
