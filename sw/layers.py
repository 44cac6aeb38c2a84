"""Transformer layers with every matmul on a Loom device, beside a float32 NumPy reference.

>>> from sw import open_device
>>> from sw.layers import run_layer
>>> from sw.presets import scaled
>>> dev = open_device("golden", rows=8, cols=8, depth=256)
>>> result = run_layer(dev, scaled("gpt2-small", 8), seq=16, dtype="int8")
>>> print(result.table())

On the device: the Q, K, V and output projections, ``Q K^T`` and ``P V`` per head, and the
MLP's up, (gate) and down projections. On the host, in float32: norms, the attention scale,
mask and softmax, rotary embeddings, GELU / SiLU, biases and residual adds.

``dtype="int8"``: activations are quantised per tensor (symmetric; the softmax
probabilities asymmetrically with zero point -128, since they are >= 0), weights per output
channel (``sw.quant``); the device returns int32 accumulators, dequantised on the host
(the zero-point cross term subtracted there). ``dtype="fp16"``: float16 operands, float32
results (the device must have the fp16 datapath).

Each matmul is compared with the float32 product of the *same* float inputs, so its error is
its own, not inherited; the layer output is compared with the float32 reference layer run
from the same input. Device jobs are few: Q/K/V in one job, every head's ``Q K^T`` in one,
every head's ``P V`` in one, the output projection, the MLP up (and gate), the MLP down.
"""
import math
import time
from dataclasses import dataclass, field

import numpy as np

from .errors import DtypeError, ShapeError, UnsupportedError
from .presets import preset as _preset
from .quant import quantize_activations, quantize_weights

__all__ = ["random_weights", "reference_layer", "run_layer", "LayerResult", "MatmulReport",
           "JobReport", "DTYPES"]

DTYPES = ("int8", "fp16")


def random_weights(p, rng, std=0.02):
    """Seeded random float32 weights for preset ``p`` (``rng``: a ``np.random.Generator``).

    Linear weights ``K x N`` (for ``x @ w``) and biases ~ N(0, ``std``) as GPT-2's
    initialisation; norm gains ~ 1 + N(0, ``std``), norm biases ~ N(0, ``std``)."""
    p = _preset(p)
    d, f = p.d_model, p.d_mlp

    def normal(*shape):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    w = {"wq": normal(d, d), "wk": normal(d, d), "wv": normal(d, d), "wo": normal(d, d),
         "w_up": normal(d, f), "w_down": normal(f, d)}
    if p.mlp == "swiglu":
        w["w_gate"] = normal(d, f)
    if p.bias:
        w.update(bq=normal(d), bk=normal(d), bv=normal(d), bo=normal(d), b_up=normal(f),
                 b_down=normal(d))
    for n in ("norm1", "norm2"):
        w[f"{n}_g"] = (1 + normal(d)).astype(np.float32)
        if p.norm == "layernorm":
            w[f"{n}_b"] = normal(d)
    return w


# --- host operations (float32) ----------------------------------------------------------------
def _norm(x, w, name, p):
    if p.norm == "layernorm":
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        y = (x - mean) / np.sqrt(var + np.float32(p.eps))
        return (y * w[f"{name}_g"] + w[f"{name}_b"]).astype(np.float32)
    rms = np.sqrt((x * x).mean(axis=-1, keepdims=True) + np.float32(p.eps))
    return (x / rms * w[f"{name}_g"]).astype(np.float32)


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _gelu(x, kind):
    if kind == "erf":
        return (0.5 * x * (1 + _erf(x / math.sqrt(2)))).astype(np.float32)
    c = np.float32(math.sqrt(2 / math.pi))
    return (0.5 * x * (1 + np.tanh(c * (x + np.float32(0.044715) * x ** 3)))).astype(np.float32)


def _silu(x):
    return (x / (1 + np.exp(-x))).astype(np.float32)


def _rope(x, head_dim):
    """Rotary embedding (Llama's rotate-half form) on a ``seq x head_dim`` head."""
    seq = x.shape[0]
    inv = 10000.0 ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    angles = np.arange(seq)[:, None] * inv[None, :]
    cos = np.cos(np.concatenate([angles, angles], axis=1)).astype(np.float32)
    sin = np.sin(np.concatenate([angles, angles], axis=1)).astype(np.float32)
    half = head_dim // 2
    rotated = np.concatenate([-x[:, half:], x[:, :half]], axis=1)
    return (x * cos + rotated * sin).astype(np.float32)


def _softmax(scores, causal):
    if causal:
        seq = scores.shape[0]
        scores = np.where(np.triu(np.ones((seq, scores.shape[1]), bool), 1), -np.inf, scores)
    scores = scores - scores.max(axis=-1, keepdims=True)
    e = np.exp(scores)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def _forward(x, w, p, mm):
    """One layer; ``mm(job, items)`` runs a list of ``(name, a, b, b_is_weight)`` matmuls
    (as one device job) and returns their float32 products."""
    zero = np.float32(0)
    hd, heads = p.head_dim, p.n_heads
    h = _norm(x, w, "norm1", p) if p.pre_norm else x
    q, k, v = mm("qkv", [("q_proj", h, w["wq"], True), ("k_proj", h, w["wk"], True),
                         ("v_proj", h, w["wv"], True)])
    q, k, v = (t + w.get(b, zero) for t, b in ((q, "bq"), (k, "bk"), (v, "bv")))
    qh = [q[:, i * hd:(i + 1) * hd] for i in range(heads)]
    kh = [k[:, i * hd:(i + 1) * hd] for i in range(heads)]
    if p.rope:
        qh, kh = [_rope(t, hd) for t in qh], [_rope(t, hd) for t in kh]
    scores = mm("qk", [(f"qk[{i}]", qh[i], np.ascontiguousarray(kh[i].T), False)
                       for i in range(heads)])
    scale = np.float32(1 / math.sqrt(hd))
    probs = [_softmax(s * scale, p.causal) for s in scores]
    ctx = mm("av", [(f"av[{i}]", probs[i], v[:, i * hd:(i + 1) * hd], False)
                    for i in range(heads)])
    attn = mm("o_proj", [("o_proj", np.concatenate(ctx, axis=1), w["wo"], True)])[0]
    x1 = (x + attn + w.get("bo", zero)).astype(np.float32)
    if not p.pre_norm:
        x1 = _norm(x1, w, "norm1", p)
    h2 = _norm(x1, w, "norm2", p) if p.pre_norm else x1
    if p.mlp == "swiglu":
        gate, up = mm("mlp_up", [("mlp_gate", h2, w["w_gate"], True),
                                 ("mlp_up", h2, w["w_up"], True)])
        act = _silu(gate) * up
    else:
        up = mm("mlp_up", [("mlp_up", h2, w["w_up"], True)])[0] + w.get("b_up", zero)
        act = _gelu(up, p.gelu)
    down = mm("mlp_down", [("mlp_down", act.astype(np.float32), w["w_down"], True)])[0]
    out = (x1 + down + w.get("b_down", zero)).astype(np.float32)
    return _norm(out, w, "norm2", p) if not p.pre_norm else out


def _float_mm(job, items):
    return [a.astype(np.float32) @ b.astype(np.float32) for _, a, b, _ in items]


def reference_layer(x, weights, p):
    """The layer in float32 NumPy (``x``: ``seq x d_model``); returns ``seq x d_model``."""
    p = _preset(p)
    return _forward(np.asarray(x, np.float32), weights, p, _float_mm)


# --- results ------------------------------------------------------------------------------------
def _cosine(a, b):
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 1.0 if na == nb else 0.0
    return float(a @ b / (na * nb))


@dataclass
class MatmulReport:
    """One group of equal-shaped matmuls (a projection, or one per head).

    ``shape``: ``(M, K, N)`` of each; ``count``: how many (heads); ``max_abs_err`` and
    ``cosine`` over all of them vs the float32 product of the same float inputs; ``job``:
    index into :attr:`LayerResult.jobs` (the job's cycles are shared by its matmuls)."""
    name: str
    shape: tuple
    count: int
    max_abs_err: float
    cosine: float
    job: int
    macs: int


@dataclass
class JobReport:
    """One device job: its matmuls, device cycles, utilisation (useful MACs / peak slots)."""
    name: str
    matmuls: int
    macs: int
    cycles: int
    utilisation: float
    wall_s: float
    peak_macs_per_cycle: int


@dataclass
class LayerResult:
    """What :func:`run_layer` measured. ``input``/``output``/``reference``: ``seq x d_model``
    float32; ``raw``: every device result in execution order (int32 accumulators or float32).

    The residual stream carries the input through, so the output's cosine with the reference
    is close to 1 whatever the matmuls do; :attr:`update_cosine` compares what the layer
    *added* (``output - input`` vs ``reference - input``), the stricter figure."""
    preset: object
    seq: int
    dtype: str
    backend: str
    matmuls: list
    jobs: list
    input: np.ndarray = field(repr=False)
    output: np.ndarray = field(repr=False)
    reference: np.ndarray = field(repr=False)
    wall_s: float = 0.0
    raw: list = field(default_factory=list, repr=False)

    @property
    def max_abs_err(self):
        return float(np.abs(self.output - self.reference).max())

    @property
    def cosine(self):
        return _cosine(self.output, self.reference)

    @property
    def update_cosine(self):
        return _cosine(self.output - self.input, self.reference - self.input)

    @property
    def device_matmuls(self):
        return sum(j.matmuls for j in self.jobs)

    @property
    def cycles(self):
        return sum(j.cycles for j in self.jobs)

    @property
    def macs(self):
        return sum(j.macs for j in self.jobs)

    @property
    def utilisation(self):
        """Useful MACs per peak MAC slot over all the layer's jobs."""
        peak = self.jobs[0].peak_macs_per_cycle if self.jobs else 0
        return self.macs / (peak * self.cycles) if self.cycles else 0.0

    def table(self):
        """A text table: one row per matmul group, then the layer output and the totals."""
        p = self.preset
        lines = [f"{p.name}: d_model {p.d_model}, {p.n_heads} heads of {p.head_dim}, MLP "
                 f"{p.d_mlp} ({p.mlp}), seq {self.seq}, {self.dtype} on {self.backend}",
                 f"{'matmul':<10} {'M x K x N':>16} {'n':>3} {'max|err|':>10} "
                 f"{'cosine':>9} {'job':>3} {'job cycles':>10} {'util':>6}"]
        for m in self.matmuls:
            job = self.jobs[m.job]
            lines.append(f"{m.name:<10} {'x'.join(map(str, m.shape)):>16} {m.count:>3} "
                         f"{m.max_abs_err:>10.3g} {m.cosine:>9.6f} {m.job:>3} "
                         + (f"{job.cycles:>10} {job.utilisation:>6.1%}" if job.cycles
                            else f"{'-':>10} {'-':>6}"))
        lines.append(f"{'output':<10} {f'{self.seq}x{p.d_model}':>16} {'':>3} "
                     f"{self.max_abs_err:>10.3g} {self.cosine:>9.6f} "
                     f"{'all':>3} " + (f"{self.cycles:>10} {self.utilisation:>6.1%}"
                                       if self.cycles else f"{'-':>10} {'-':>6}"))
        lines.append(f"{'update':<10} {'output - input':>16} {'':>3} {'':>10} "
                     f"{self.update_cosine:>9.6f}")
        lines.append(f"{self.device_matmuls} matmuls in {len(self.jobs)} device jobs, "
                     f"{self.macs} MACs, "
                     + (f"{self.cycles} cycles" if self.cycles else
                        "no cycle counts (this backend has no cycle model attached)")
                     + f", wall {self.wall_s:.2f} s")
        return "\n".join(lines)


class _DeviceMatmuls:
    """The ``mm`` of :func:`_forward` on a device: one ``dev.gemms`` job per call."""

    def __init__(self, dev, dtype):
        self.dev, self.dtype = dev, dtype
        self.reports, self.jobs, self.raw = [], [], []
        self._weights = {}

    def _operands(self, name, a, b, b_is_weight):
        if self.dtype == "fp16":
            return dict(a=a.astype(np.float16), b=b.astype(np.float16)), None
        # probabilities (>= 0) use all 256 levels with zero point -128
        qa = quantize_activations(a, symmetric=not name.startswith("av"))
        if b_is_weight:
            key = id(b)
            if key not in self._weights:
                self._weights[key] = (b, quantize_weights(b))   # keep b alive: ids stay valid
            qb = self._weights[key][1]
        else:
            qb = quantize_activations(b)
        return dict(a=qa.q, b=qb.q), (qa, qb)

    def __call__(self, job, items):
        calls, quants = zip(*(self._operands(*item) for item in items), strict=True)
        results = self.dev.gemms(list(calls))
        stats = self.dev.last_stats
        self.raw.extend(results)
        out = []
        for result, quant in zip(results, quants, strict=True):
            if quant is None:
                out.append(result.astype(np.float32))
                continue
            qa, qb = quant
            acc = result.astype(np.int64)
            if qa.zero_point:
                acc = acc - qa.zero_point * qb.q.astype(np.int64).sum(axis=0)
            out.append((acc * (qa.scale * np.asarray(qb.scale))).astype(np.float32))
        index = len(self.jobs)
        self.jobs.append(JobReport(job, len(items), stats.macs, stats.cycles,
                                   stats.utilisation, stats.wall_s,
                                   stats.peak_macs_per_cycle))
        groups = {}
        for (name, a, b, _), got in zip(items, out, strict=True):
            groups.setdefault(name.split("[")[0], []).append((a, b, got))
        for group, members in groups.items():
            ref = [a.astype(np.float32) @ b.astype(np.float32) for a, b, _ in members]
            got = [g for _, _, g in members]
            a, b, _ = members[0]
            self.reports.append(MatmulReport(
                group, (a.shape[0], a.shape[1], b.shape[1]), len(members),
                max(float(np.abs(g - r).max()) for g, r in zip(got, ref, strict=True)),
                _cosine(np.concatenate([g.ravel() for g in got]),
                        np.concatenate([r.ravel() for r in ref])),
                index, sum(a.shape[0] * a.shape[1] * b.shape[1] for a, b, _ in members)))
        return out


def run_layer(dev, p, seq=16, *, dtype="int8", seed=0, rng=None, x=None, weights=None):
    """Run one layer of preset ``p`` (a :class:`~sw.presets.Preset` or its name) on ``dev``.

    ``seq``: tokens; ``x``: ``seq x d_model`` input (default: N(0, 1) drawn after the
    weights); ``weights``: from :func:`random_weights` (default: drawn from ``rng``, a
    ``np.random.Generator``, or else from ``np.random.default_rng(seed)``). Returns a
    :class:`LayerResult` with the per-matmul and layer-output comparison against the
    float32 reference and the device's cycles (``dev.last_stats`` of each job).
    """
    p = _preset(p)
    if dtype not in DTYPES:
        raise DtypeError(f"dtype must be one of {DTYPES}, not {dtype!r}")
    if not getattr(dev.config, dtype):
        raise UnsupportedError(f"this device has no {dtype} datapath (it has "
                               f"{', '.join(dev.config.datapaths)}): run the layer with "
                               f"dtype={dev.config.datapaths[0]!r} or open a device built with "
                               f"datapaths=('int8', 'fp16')")
    if not isinstance(seq, int) or seq < 1:
        raise ShapeError(f"seq must be an int >= 1, not {seq!r}")
    rng = np.random.default_rng(seed) if rng is None else rng
    weights = random_weights(p, rng) if weights is None else weights
    x = rng.standard_normal((seq, p.d_model)).astype(np.float32) if x is None else \
        np.asarray(x, np.float32)
    if x.shape != (seq, p.d_model):
        raise ShapeError(f"x has shape {x.shape}; {p.name} with seq {seq} takes "
                         f"({seq}, {p.d_model})")
    started = time.perf_counter()
    mm = _DeviceMatmuls(dev, dtype)
    output = _forward(x, weights, p, mm)
    wall = time.perf_counter() - started
    return LayerResult(p, seq, dtype, dev.transport.name, mm.reports, mm.jobs, x, output,
                       reference_layer(x, weights, p), wall, mm.raw)
