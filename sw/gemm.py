"""One GEMM as the driver understands it: checked operands and what to do with the result.

:func:`gemm_spec` is where every argument check of ``Device.matmul`` lives, so a bad call
fails here, with a message that says what is wrong and what to do, before any host memory
is touched.
"""
from dataclasses import dataclass

import numpy as np

from .errors import DtypeError, RangeError, ShapeError

__all__ = ["GemmSpec", "gemm_spec", "OUTPUTS"]

#: Output kinds per input dtype; the first is the default.
OUTPUTS = {"int8": ("int32", "int8"), "fp16": ("float32", "float16")}
#: STORE mode (``hw/isa.py``) and bytes per result element of each output kind.
STORE_MODE = {"int32": (0, 4), "float32": (0, 4), "int8": (1, 1), "float16": (2, 2)}


@dataclass
class GemmSpec:
    """``C = A @ B`` with checked operands.

    ``a`` (M x K) and ``b`` (K x N) are ``np.int8`` (``dtype="int8"``) or binary16 bit
    patterns ``np.uint16`` (``dtype="fp16"``). ``out`` is ``int32`` (raw accumulators),
    ``int8`` (requantised per output column with ``multiplier``, ``shift``, ``zero_point``,
    optional int32 ``bias`` and ``relu``; see ``tb/golden.py: requantize``), ``float32``
    (fp16 inputs, fp32 accumulators) or ``float16`` (those rounded to binary16, RNE).
    """
    a: np.ndarray
    b: np.ndarray
    dtype: str
    out: str
    bias: np.ndarray | None = None
    multiplier: np.ndarray | None = None
    shift: np.ndarray | None = None
    zero_point: np.ndarray | None = None
    relu: bool = False

    @property
    def m(self):
        return self.a.shape[0]

    @property
    def k(self):
        return self.a.shape[1]

    @property
    def n(self):
        return self.b.shape[1]

    @property
    def store_mode(self):
        return STORE_MODE[self.out][0]

    @property
    def out_bytes(self):
        return STORE_MODE[self.out][1]

    @property
    def macs(self):
        return self.m * self.k * self.n


def _matrix(name, x):
    try:
        x = np.asarray(x)
    except Exception as exc:  # noqa: BLE001 - anything numpy cannot read is a type error
        raise DtypeError(f"{name} must be a 2-D array, not {type(x).__name__}") from exc
    if x.ndim != 2:
        raise ShapeError(f"{name} must be a 2-D matrix, not an array of shape {x.shape}")
    if 0 in x.shape:
        raise ShapeError(f"{name} has shape {x.shape}: every dimension must be at least 1")
    return x


def _infer_dtype(a, b):
    kinds = {x.dtype for x in (a, b)}
    if all(np.issubdtype(d, np.integer) for d in kinds):
        return "int8"
    if kinds == {np.dtype(np.float16)}:
        return "fp16"
    raise DtypeError(f"cannot tell the datapath from dtypes {a.dtype} and {b.dtype}: pass "
                     f"int8 integer arrays (quantise floats with sw.quant) or float16 arrays, "
                     f"or say dtype='int8' / dtype='fp16'")


def _int8(name, x):
    if np.issubdtype(x.dtype, np.floating):
        if np.isnan(x).any():
            raise RangeError(f"{name} contains NaN: an int8 GEMM takes integers only "
                             f"(quantise with sw.quant first)")
        raise DtypeError(f"{name} is {x.dtype}: an int8 GEMM takes integer arrays "
                         f"(quantise floats with sw.quant.quantize_* first)")
    if not np.issubdtype(x.dtype, np.integer):
        raise DtypeError(f"{name} is {x.dtype}: an int8 GEMM takes integer arrays")
    low, high = int(x.min()), int(x.max())
    if low < -128 or high > 127:
        raise RangeError(f"{name} holds values in [{low}, {high}], outside int8's "
                         f"[-128, 127]: requantise or clip it first")
    return x.astype(np.int8)


def _fp16(name, x):
    if x.dtype == np.float16:
        return x.view(np.uint16)
    if x.dtype == np.uint16:
        return x                      # binary16 bit patterns
    raise DtypeError(f"{name} is {x.dtype}: an fp16 GEMM takes float16 arrays (or uint16 "
                     f"binary16 bit patterns); convert with {name}.astype(np.float16)")


def _vector(name, value, n, low, high, kind=np.int64):
    v = np.asarray(value)
    if v.dtype.kind not in "iub":
        raise DtypeError(f"{name} must be integers, not {v.dtype}")
    if v.ndim == 0:
        v = np.full(n, int(v), dtype=np.int64)
    if v.shape != (n,):
        raise ShapeError(f"{name} must be a scalar or have one entry per output column "
                         f"({n}), not shape {v.shape}")
    if v.size and (int(v.min()) < low or int(v.max()) > high):
        raise RangeError(f"{name} holds values in [{int(v.min())}, {int(v.max())}], outside "
                         f"[{low}, {high}]")
    return v.astype(kind)


def gemm_spec(a, b, *, dtype=None, out=None, bias=None, multiplier=None, shift=None,
              zero_point=None, relu=False):
    """Check the arguments of one GEMM and return its :class:`GemmSpec`."""
    a, b = _matrix("a", a), _matrix("b", b)
    if a.shape[1] != b.shape[0]:
        raise ShapeError(f"a is {a.shape[0]}x{a.shape[1]} and b is {b.shape[0]}x{b.shape[1]}: "
                         f"a's columns (K={a.shape[1]}) must equal b's rows")
    dtype = _infer_dtype(a, b) if dtype is None else dtype
    if dtype not in OUTPUTS:
        raise DtypeError(f"dtype must be 'int8' or 'fp16', not {dtype!r}")
    a, b = (_int8 if dtype == "int8" else _fp16)("a", a), \
        (_int8 if dtype == "int8" else _fp16)("b", b)
    out = OUTPUTS[dtype][0] if out is None else out
    if out not in OUTPUTS[dtype]:
        raise DtypeError(f"a {dtype} GEMM produces {' or '.join(OUTPUTS[dtype])}, "
                         f"not {out!r}")
    n = b.shape[1]
    spec = GemmSpec(a, b, dtype, out, relu=bool(relu))
    requant = (multiplier, shift, zero_point)
    if out == "int8":
        if multiplier is None or shift is None:
            raise ValueError("out='int8' needs multiplier and shift (per column or scalar); "
                             "sw.quant.requant_params computes them from float scales")
        spec.multiplier = _vector("multiplier", multiplier, n, -(2**31), 2**31 - 1)
        spec.shift = _vector("shift", shift, n, 0, 31)
        spec.zero_point = _vector("zero_point", 0 if zero_point is None else zero_point,
                                  n, -128, 127)
        if bias is not None:
            spec.bias = _vector("bias", bias, n, -(2**31), 2**31 - 1)
    else:
        given = [name for name, v in zip(("multiplier", "shift", "zero_point"), requant,
                                         strict=True) if v is not None]
        if bias is not None:
            given.append("bias")
        if relu:
            given.append("relu")
        if given:
            raise ValueError(f"{', '.join(given)} only apply to out='int8' (requantised "
                             f"int8 results), not out={out!r}")
    return spec
