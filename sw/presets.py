"""Transformer layer shapes of real models, and scaled-down copies for fast simulation.

>>> from sw.presets import PRESETS, scaled
>>> scaled(PRESETS["gpt2-small"], 8)        # d_model 96, 12 heads of 8, MLP 384

Widths are in elements (features); ``head_dim = d_model // n_heads``.
"""
from dataclasses import dataclass, replace

__all__ = ["Preset", "PRESETS", "preset", "scaled", "MIN_HEAD_DIM"]

#: Smallest head width :func:`scaled` keeps (heads are merged below it).
MIN_HEAD_DIM = 8


@dataclass(frozen=True)
class Preset:
    """The shape and structure of one transformer layer.

    ``d_model``: residual width; ``n_heads``: attention heads (``d_model`` divisible by it);
    ``d_mlp``: MLP hidden width; ``mlp``: ``"gelu"`` (up, GELU, down) or ``"swiglu"`` (gate
    and up, SiLU(gate) * up, down); ``gelu``: ``"tanh"`` (GPT-2's approximation) or
    ``"erf"`` (BERT's exact form); ``norm``: ``"layernorm"`` or ``"rmsnorm"``;
    ``pre_norm``: norm before each block (GPT-2, Llama) or after the residual add (BERT);
    ``causal``: decoder mask; ``bias``: linear layers have biases; ``rope``: rotary
    position embedding on Q and K; ``eps``: the norm's epsilon.
    """
    name: str
    d_model: int
    n_heads: int
    d_mlp: int
    mlp: str = "gelu"
    gelu: str = "tanh"
    norm: str = "layernorm"
    pre_norm: bool = True
    causal: bool = True
    bias: bool = True
    rope: bool = False
    eps: float = 1e-5

    def __post_init__(self):
        if self.d_model < 1 or self.n_heads < 1 or self.d_mlp < 1:
            raise ValueError(f"preset {self.name!r}: widths and heads must be >= 1")
        if self.d_model % self.n_heads:
            raise ValueError(f"preset {self.name!r}: d_model {self.d_model} is not divisible "
                             f"by n_heads {self.n_heads}")
        if self.rope and self.head_dim % 2:
            raise ValueError(f"preset {self.name!r}: rotary embedding needs an even head_dim, "
                             f"not {self.head_dim}")

    @property
    def head_dim(self):
        return self.d_model // self.n_heads


PRESETS = {p.name: p for p in (
    Preset("gpt2-small", d_model=768, n_heads=12, d_mlp=3072, mlp="gelu", gelu="tanh",
           norm="layernorm", pre_norm=True, causal=True, bias=True),
    # sentence-transformers/all-MiniLM-L6-v2 (BERT: post-LN encoder, exact GELU)
    Preset("minilm-l6", d_model=384, n_heads=12, d_mlp=1536, mlp="gelu", gelu="erf",
           norm="layernorm", pre_norm=False, causal=False, bias=True, eps=1e-12),
    Preset("llama-7b-style", d_model=4096, n_heads=32, d_mlp=11008, mlp="swiglu",
           norm="rmsnorm", pre_norm=True, causal=True, bias=False, rope=True, eps=1e-6),
)}


def preset(name_or_preset):
    """A :class:`Preset` by name (or the preset itself)."""
    if isinstance(name_or_preset, Preset):
        return name_or_preset
    if name_or_preset not in PRESETS:
        raise ValueError(f"unknown preset {name_or_preset!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name_or_preset]


def scaled(base, factor):
    """``base`` with ``d_model`` and ``d_mlp`` divided by ``factor`` (an int >= 1), keeping
    its structure. Heads are kept while ``head_dim >= 8``; below that fewer, wider heads
    (the largest count that divides the new ``d_model`` with ``head_dim >= 8``)."""
    base = preset(base)
    if not isinstance(factor, int) or factor < 1:
        raise ValueError(f"factor must be an int >= 1, not {factor!r}")
    if factor == 1:
        return base
    d_model, d_mlp = base.d_model // factor, base.d_mlp // factor
    if d_model < MIN_HEAD_DIM or d_mlp < 1:
        raise ValueError(f"{base.name} scaled by {factor} has d_model {d_model}: below one "
                         f"head of {MIN_HEAD_DIM}; use a factor <= "
                         f"{base.d_model // MIN_HEAD_DIM}")
    heads = base.n_heads
    while heads > 1 and (d_model % heads or d_model // heads < MIN_HEAD_DIM or
                         (base.rope and (d_model // heads) % 2)):
        heads -= 1
    return replace(base, name=f"{base.name}/{factor}", d_model=d_model, n_heads=heads,
                   d_mlp=d_mlp)
