"""Uniform INT-b and NormalFloat-b fake quantization with per-group scales, and its STE.

A weight is flattened and cut into groups of ``group_size`` consecutive entries (the last group is
padded); each group gets its own scale, so one outlier only coarsens its own group.

* ``"int"``: asymmetric min-max, ``q = clamp(round((w - lo) / s), 0, 2^b - 1)``, ``s = (hi - lo) / (2^b - 1)``
  with ``[lo, hi]`` the group's range shrunk by ``clip`` (1: no clipping).
* ``"nf"``: ``w / absmax`` rounded to the nearest of the ``2^b`` NormalFloat code points, times absmax
  (QLoRA: the code points are quantiles of N(0, 1) normalized to [-1, 1], with an exact zero).

bitsandbytes and torchao install beside torch 2.13 but offer NormalFloat as 4-bit storage only (no
NF2/NF3/NF5+, no NF fake quantizer with a straight-through gradient); torchao's integer fake
quantizers would cover the INT case, which is kept here as the same few lines so that both kinds
share one grouping and one straight-through estimator.
"""

import dataclasses
import functools

import numpy as np

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_choice, check_float, check_int

torch = import_optional("torch", purpose="lowrank.nn")

__all__ = ["QuantConfig", "quantize", "fake_quantize", "nf_code_points", "storage_bits"]


@dataclasses.dataclass(frozen=True)
class QuantConfig:
    """One quantization configuration.

    Attributes
    ----------
    bits : int
        Bits per weight code, 2..8.
    group_size : int
        Consecutive weights (of the flattened tensor) sharing one scale.
    kind : {"nf", "int"}
        NormalFloat (absmax scale) or uniform integer (min-max scale and offset).
    clip : float
        ``"int"`` only: the quantization range is ``clip`` times the group's range, centred on it;
        weights outside are clamped (and get a zero straight-through gradient).
    scale_bits : int
        Bits stored per scale (and per offset of ``"int"``); only used by :func:`storage_bits`.

    Examples
    --------
    >>> QuantConfig(bits=3, group_size=64)
    QuantConfig(bits=3, group_size=64, kind='nf', clip=1.0, scale_bits=16)
    """

    bits: int = 4
    group_size: int = 64
    kind: str = "nf"
    clip: float = 1.0
    scale_bits: int = 16

    @classmethod
    def make(cls, bits=4, group_size=64, kind="nf", clip=1.0, scale_bits=16):
        """Checked constructor (the ``_iv`` of every function taking a config)."""
        return cls(bits=check_int(bits, "bits", low=2, high=8), group_size=check_int(group_size, "group_size", low=1),
                   kind=check_choice(kind, "kind", ("nf", "int")),
                   clip=check_float(clip, "clip", low=0.0, high=1.0, low_inclusive=False),
                   scale_bits=check_int(scale_bits, "scale_bits", low=1, high=64))


def storage_bits(config):
    """Average stored bits per weight of ``config``: the code plus its share of the group's scale(s).

    Parameters
    ----------
    config : QuantConfig

    Returns
    -------
    float
        ``bits + scale_bits / group_size`` for NF (one absmax per group),
        ``bits + 2 * scale_bits / group_size`` for INT (scale and offset).

    Examples
    --------
    >>> storage_bits(QuantConfig(bits=4, group_size=64))
    4.25
    """
    per_group = 1 if config.kind == "nf" else 2
    return config.bits + per_group * config.scale_bits / config.group_size


@functools.lru_cache(maxsize=None)
def _nf_points(bits):
    from scipy.stats import norm

    # QLoRA (Dettmers et al. 2023, appendix): 2^(b-1) positive and 2^(b-1) - 1 negative quantiles of
    # N(0, 1) taken between `offset` and 1/2, plus an exact zero, then scaled to [-1, 1]. For b = 4
    # offset = (1 - 1/32 + 1 - 1/30) / 2 = 0.9677 as published; the same rule for any b.
    half = 2 ** (bits - 1)
    offset = 1.0 - 0.5 * (1.0 / (2 * 2**bits) + 1.0 / (2 * (2**bits - 1)))
    positive = norm.ppf(np.linspace(offset, 0.5, half + 1)[:-1])
    negative = -norm.ppf(np.linspace(offset, 0.5, half)[:-1])
    points = np.sort(np.concatenate([positive, [0.0], negative]))
    return points / points.max()


def nf_code_points(bits):
    """The ``2**bits`` NormalFloat code points in [-1, 1] (ascending, 0 included, -1 and 1 included).

    Parameters
    ----------
    bits : int
        2..8.

    Returns
    -------
    numpy.ndarray of shape (2**bits,)

    References
    ----------
    Dettmers, Pagnoni, Holtzman & Zettlemoyer, "QLoRA: Efficient Finetuning of Quantized LLMs",
    NeurIPS 2023, arXiv:2305.14314.

    Examples
    --------
    >>> p = nf_code_points(4)
    >>> len(p), float(p[0]), float(p[7]), float(p[-1])
    (16, -1.0, 0.0, 1.0)
    """
    return _nf_points(check_int(bits, "bits", low=2, high=8)).copy()


def _groups(w, group_size):
    flat = w.reshape(-1)
    pad = (-flat.numel()) % group_size
    if pad:
        # pad with the last value: it neither widens a min-max range nor raises an absmax
        flat = torch.cat([flat, flat[-1:].expand(pad)])
    return flat.reshape(-1, group_size), pad


def _quantize(w, config):
    """Fake-quantized ``w`` (same shape and dtype) and the mask of entries inside the clipping range."""
    g, pad = _groups(w.detach(), config.group_size)
    if config.kind == "nf":
        points = torch.as_tensor(_nf_points(config.bits), dtype=g.dtype, device=g.device)
        absmax = g.abs().amax(1, keepdim=True)
        scale = torch.where(absmax > 0, absmax, torch.ones_like(absmax))
        x = g / scale
        # nearest code point: compare against the midpoints between consecutive points
        idx = torch.bucketize(x, (points[1:] + points[:-1]) / 2)
        q = points[idx] * scale
        inside = torch.ones_like(g, dtype=torch.bool)
    else:
        lo, hi = g.amin(1, keepdim=True), g.amax(1, keepdim=True)
        mid, half = (hi + lo) / 2, (hi - lo) / 2 * config.clip
        lo, hi = mid - half, mid + half
        levels = 2**config.bits - 1
        step = (hi - lo) / levels
        step = torch.where(step > 0, step, torch.ones_like(step))
        codes = torch.clamp(torch.round((g - lo) / step), 0, levels)
        q = codes * step + lo
        inside = (g >= lo) & (g <= hi)
    q, inside = q.reshape(-1), inside.reshape(-1)
    if pad:
        q, inside = q[:-pad], inside[:-pad]
    return q.reshape(w.shape), inside.reshape(w.shape)


def _check_weight(w):
    if not isinstance(w, torch.Tensor) or not w.is_floating_point():
        raise TypeError(f"`weight` must be a floating-point torch.Tensor, got {type(w).__name__}")
    if w.numel() == 0:
        raise ValueError("`weight` must not be empty")
    if not torch.isfinite(w.detach()).all():
        raise ValueError("`weight` must be finite (it holds NaN or inf)")


def quantize(weight, bits=4, group_size=64, kind="nf", *, clip=1.0):
    """Round ``weight`` to ``bits``-bit codes with per-group scales and map it back (no gradient).

    Parameters
    ----------
    weight : torch.Tensor
        Any shape; flattened into groups of ``group_size`` entries.
    bits : int, default=4
        2..8.
    group_size : int, default=64
    kind : {"nf", "int"}, default="nf"
        NormalFloat with an absmax scale, or uniform integers with a min-max scale and offset.
    clip : float in (0, 1], default=1.0
        ``"int"``: fraction of each group's range that is kept (the rest is clamped).

    Returns
    -------
    torch.Tensor
        The dequantized weight, same shape, dtype and device (at most ``2**bits`` values per group).

    Raises
    ------
    TypeError
        ``weight`` not a floating tensor; non-integer ``bits``/``group_size``.
    ValueError
        Out-of-range options, an empty or non-finite weight.

    References
    ----------
    Dettmers et al., "QLoRA", arXiv:2305.14314 (NormalFloat, blockwise absmax).

    Examples
    --------
    >>> w = torch.tensor([[-1.0, -0.2, 0.1, 0.5]])
    >>> quantize(w, bits=2, group_size=4, kind="int")  # 4 levels on [-1, 0.5]: -1, -0.5, 0, 0.5
    tensor([[-1.0000,  0.0000,  0.0000,  0.5000]])
    """
    config = QuantConfig.make(bits, group_size, kind, clip)
    _check_weight(weight)
    return _quantize(weight, config)[0]


class _STE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w, config):
        q, inside = _quantize(w, config)
        ctx.save_for_backward(inside)
        return q

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside, None


def fake_quantize(weight, bits=4, group_size=64, kind="nf", *, clip=1.0):
    """:func:`quantize` with a straight-through gradient: identity inside the clipping range, 0 outside.

    Parameters and returns as :func:`quantize`; the result carries autograd back to ``weight``
    (the scales are treated as constants, as in the straight-through estimator of Bengio et al.).

    References
    ----------
    Bengio, Leonard & Courville, "Estimating or Propagating Gradients Through Stochastic Neurons",
    2013, arXiv:1308.3432.

    Examples
    --------
    >>> w = torch.tensor([0.3, -0.7, 1.1], requires_grad=True)
    >>> fake_quantize(w, bits=3, group_size=3).sum().backward()
    >>> w.grad
    tensor([1., 1., 1.])
    """
    config = QuantConfig.make(bits, group_size, kind, clip)
    _check_weight(weight)
    return _STE.apply(weight, config)


def fake_quantize_config(weight, config):
    """:func:`fake_quantize` with a checked :class:`QuantConfig` (no validation: library-internal)."""
    return _STE.apply(weight, config)


def quantize_config(weight, config):
    """:func:`quantize` with a checked :class:`QuantConfig` (no validation: library-internal)."""
    return _quantize(weight, config)[0]
