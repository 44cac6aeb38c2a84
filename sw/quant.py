"""Quantisation helpers: floats to the int8 datapath and back.

Conventions (TensorFlow Lite / gemmlowp):

* a real value ``r`` is represented by an int8 ``q`` with ``r = scale * (q - zero_point)``;
* **weights** are quantised symmetrically per output channel (``zero_point = 0``, one scale
  per column of a ``K x N`` weight matrix, ``q`` in ``[-127, 127]``): :func:`quantize_weights`;
* **activations** per tensor, symmetrically (``q`` in ``[-127, 127]``) or asymmetrically
  with a zero point (``q`` in ``[-128, 127]``, the range always contains 0):
  :func:`quantize_activations`.

Error bound of quantisation: every element inside the tensor's calibrated range (the
default: its own min/max) dequantises to within ``scale / 2`` of its real value
(round to nearest). Weights: ``|w - scale_j * q| <= scale_j / 2`` with
``scale_j = max|w[:, j]| / 127``.

The hardware requantises int32 accumulators to int8 on store with a fixed-point multiplier:
the real scale applied is ``multiplier * 2**-31 * 2**-shift`` with ``shift`` in 0..31 and
``multiplier`` in ``[2**30, 2**31)`` (``tb/golden.py: requantize``).
:func:`quantize_multiplier` finds them for a real scale in ``[2**-32, 1)`` with relative error
``<= 2**-31``; :func:`requant_params` does it per output channel for a linear layer;
:func:`quantized_linear` runs a whole int8 linear layer on a device.
"""
from dataclasses import dataclass

import numpy as np

from .errors import DtypeError, RangeError, ShapeError

__all__ = ["QTensor", "QuantizedLinear", "quantize_weights", "quantize_activations",
           "quantize_multiplier", "requant_params", "quantize_linear", "quantized_linear",
           "MULTIPLIER_RELATIVE_ERROR", "MIN_SCALE"]

#: Bound on ``|real - multiplier * 2**-31 * 2**-shift| / real`` of :func:`quantize_multiplier`.
MULTIPLIER_RELATIVE_ERROR = 2.0**-31
#: Smallest real scale the hardware represents (multiplier ``2**30``, shift 31).
MIN_SCALE = 2.0**-32


@dataclass
class QTensor:
    """An int8 tensor ``q`` (``np.int8``) standing for ``scale * (q - zero_point)``.

    ``scale``: float (per tensor) or a float array broadcasting along the last axis (per
    channel); ``zero_point``: int in [-128, 127] (0 when symmetric).
    """
    q: np.ndarray
    scale: float | np.ndarray
    zero_point: int = 0

    def dequantize(self):
        """The real values, ``float32``."""
        return (np.asarray(self.scale, np.float64) *
                (self.q.astype(np.float64) - self.zero_point)).astype(np.float32)


def _floats(name, x):
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating) and not np.issubdtype(x.dtype, np.integer):
        raise DtypeError(f"{name} must be a float array, not {x.dtype}")
    x = x.astype(np.float64)
    if x.size and not np.isfinite(x).all():
        raise RangeError(f"{name} contains NaN or Inf: quantisation needs finite values; "
                         f"clean the input first")
    return x


def quantize_weights(w):
    """Symmetric per-output-channel int8 quantisation of a ``K x N`` weight matrix (``x @ w``).

    Returns a :class:`QTensor` with ``q`` in ``[-127, 127]`` and ``scale`` a float64 array of
    ``N`` per-column scales (``max|w[:, j]| / 127``; an all-zero column gets scale 1).
    Per-element error ``|w - scale_j * q| <= scale_j / 2``.
    """
    w = _floats("w", w)
    if w.ndim != 2:
        raise ShapeError(f"weights must be a K x N matrix, not shape {w.shape}")
    peak = np.abs(w).max(axis=0) if w.size else np.zeros(w.shape[1])
    scale = np.where(peak > 0, peak / 127.0, 1.0)
    q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
    return QTensor(q, scale, 0)


def quantize_activations(x, *, symmetric=True, range_=None):
    """Per-tensor int8 quantisation of activations.

    ``symmetric``: ``scale = max|x| / 127``, ``zero_point = 0``, ``q`` in ``[-127, 127]``;
    otherwise ``scale = (hi - lo) / 255`` over ``[lo, hi] = [min(x.min(), 0), max(x.max(),
    0)]`` and a zero point in [-128, 127] so that 0 is exact, ``q`` in ``[-128, 127]``.
    ``range_``: ``(lo, hi)`` calibrated range to use instead of the tensor's own (values
    outside it saturate). Per-element error ``<= scale / 2`` inside the range.
    """
    x = _floats("x", x)
    lo, hi = (float(x.min()) if x.size else 0.0, float(x.max()) if x.size else 0.0) \
        if range_ is None else map(float, range_)
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if symmetric:
        peak = max(-lo, hi)
        scale = peak / 127.0 if peak > 0 else 1.0
        q = np.clip(np.round(x / scale), -127, 127).astype(np.int8)
        return QTensor(q, scale, 0)
    scale = (hi - lo) / 255.0 if hi > lo else 1.0
    zero_point = int(np.clip(np.round(-128 - lo / scale), -128, 127))
    q = np.clip(np.round(x / scale) + zero_point, -128, 127).astype(np.int8)
    return QTensor(q, scale, zero_point)


def quantize_multiplier(real_scale):
    """The hardware's ``(multiplier, shift)`` for a real requantisation scale.

    TFLite's ``QuantizeMultiplier`` mapped to Loom's convention: ``real_scale ~=
    multiplier * 2**-31 * 2**-shift`` with ``multiplier`` in ``[2**30, 2**31)`` and ``shift``
    in 0..31, the multiplier rounded to nearest (ties away from zero), so the relative
    error ``|real - represented| / real <= 2**-31`` (:data:`MULTIPLIER_RELATIVE_ERROR`).

    ``real_scale``: a float or an array of floats (then arrays of ``int64`` come back).
    Raises :class:`~sw.errors.RangeError` for scales the hardware cannot represent: not
    finite, ``<= 0``, ``>= 1`` (after rounding: there is no left shift) or below ``2**-32``
    (:data:`MIN_SCALE`, the shift would exceed 31).
    """
    real = np.asarray(real_scale, dtype=np.float64)
    scalar = real.ndim == 0
    real = np.atleast_1d(real)
    bad = ~np.isfinite(real) | (real <= 0)
    if bad.any():
        raise RangeError(f"requantisation scale {real[bad][0]!r} is not a positive finite "
                         f"number: scales are input_scale * weight_scale / output_scale, "
                         f"all > 0")
    fraction, exponent = np.frexp(real)            # real = fraction * 2**exponent, [0.5, 1)
    mantissa = np.floor(fraction * 2.0**31 + 0.5)  # exact in float64; ties away from zero
    carry = mantissa == 2.0**31
    mantissa = np.where(carry, 2.0**30, mantissa)
    exponent = exponent + carry
    shift = -exponent.astype(np.int64)
    if (shift < 0).any():
        raise RangeError(f"requantisation scale {real[shift < 0][0]!r} is >= 1 (after "
                         f"rounding to 31 bits): the hardware only scales down (shift 0..31)."
                         f" Choose a larger output scale (at least input_scale * "
                         f"weight_scale) or dequantise the int32 results on the host")
    if (shift > 31).any():
        raise RangeError(f"requantisation scale {real[shift > 31][0]!r} is below 2**-32, "
                         f"the smallest the hardware represents (shift <= 31): choose a "
                         f"smaller output scale or dequantise the int32 results on the host")
    multiplier = mantissa.astype(np.int64)
    if scalar:
        return int(multiplier[0]), int(shift[0])
    return multiplier, shift


def requant_params(input_scale, weight_scales, output_scale):
    """Per-output-channel ``(multiplier, shift)`` int64 arrays for an int8 linear layer.

    The int32 accumulator of channel ``j`` holds ``sum q_x * q_w`` in units of
    ``input_scale * weight_scales[j]``; the int8 output is in units of ``output_scale``, so
    the real scale is ``input_scale * weight_scales[j] / output_scale`` (each must be in
    ``[2**-32, 1)``, see :func:`quantize_multiplier`). The requantised output then differs
    from ``round(acc * real_scale) + zero_point`` by at most 1 (two roundings, and the
    multiplier's ``2**-31`` relative error).
    """
    weight_scales = np.atleast_1d(np.asarray(weight_scales, dtype=np.float64))
    if float(input_scale) <= 0 or float(output_scale) <= 0:
        raise RangeError(f"input_scale ({input_scale}) and output_scale ({output_scale}) "
                         f"must be > 0")
    return quantize_multiplier(float(input_scale) * weight_scales / float(output_scale))


@dataclass
class QuantizedLinear:
    """An int8 linear layer ``y = x @ w + bias``: ``weight`` a per-channel :class:`QTensor`
    (``K x N``), ``bias`` float32 ``N`` or None (real units)."""
    weight: QTensor
    bias: np.ndarray | None = None

    @property
    def in_features(self):
        return self.weight.q.shape[0]

    @property
    def out_features(self):
        return self.weight.q.shape[1]


def quantize_linear(w, bias=None):
    """A :class:`QuantizedLinear` from a float ``K x N`` weight and optional ``N`` bias."""
    weight = quantize_weights(w)
    if bias is not None:
        bias = _floats("bias", bias).astype(np.float32)
        if bias.shape != (weight.q.shape[1],):
            raise ShapeError(f"bias must have one entry per output column "
                             f"({weight.q.shape[1]}), not shape {bias.shape}")
    return QuantizedLinear(weight, bias)


def quantized_linear(dev, x, layer, *, symmetric=True, output_scale=None,
                     output_zero_point=0, relu=False):
    """Run ``x @ w + bias`` as an int8 GEMM on ``dev``.

    ``x``: float ``M x K`` activations, quantised per tensor (:func:`quantize_activations`;
    ``symmetric=False`` adds a zero point, whose cross term ``-zero_point * colsum(q_w)`` is
    folded into the int32 bias). ``layer``: a :class:`QuantizedLinear`.

    * ``output_scale=None``: the device returns int32 accumulators, dequantised here:
      returns float32 ``M x N`` (``relu`` applied in float). Error vs ``x @ w + bias`` in
      float: at most ``sum_k (|x| e_w + |w| e_x + e_x e_w)`` per element with
      ``e_x = scale_x / 2``, ``e_w = scale_w[j] / 2``, plus half a bias unit.
    * ``output_scale`` given: the device requantises to int8 (:func:`requant_params`);
      returns a :class:`QTensor` (``scale=output_scale``, ``zero_point=output_zero_point``)
      within one output unit of the int32 path, rounded (plus the saturation to int8).
    """
    if not isinstance(layer, QuantizedLinear):
        raise TypeError(f"layer must be a sw.quant.QuantizedLinear (from quantize_linear), "
                        f"not {type(layer).__name__}")
    x = _floats("x", x)
    if x.ndim != 2 or x.shape[1] != layer.in_features:
        raise ShapeError(f"x has shape {x.shape}; the layer takes M x {layer.in_features}")
    qx = quantize_activations(x, symmetric=symmetric)
    w = layer.weight
    acc_scale = qx.scale * w.scale                                  # per column
    bias = -qx.zero_point * w.q.astype(np.int64).sum(axis=0)        # zero-point cross term
    if layer.bias is not None:
        bias = bias + np.round(layer.bias / acc_scale).astype(np.int64)
    if np.abs(bias).max(initial=0) >= 2**31:
        raise RangeError("the layer's bias in accumulator units overflows int32: the "
                         "activations' scale is too small for it; rescale the input")
    if output_scale is None:
        acc = dev.matmul(qx.q, w.q).astype(np.int64) + bias
        y = (acc * acc_scale).astype(np.float32)
        return np.maximum(y, 0) if relu else y
    multiplier, shift = requant_params(qx.scale, w.scale, output_scale)
    q = dev.matmul(qx.q, w.q, out="int8", multiplier=multiplier, shift=shift,
                   zero_point=output_zero_point, bias=bias, relu=relu)
    return QTensor(q, float(output_scale), int(output_zero_point))
