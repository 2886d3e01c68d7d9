"""FLoRA: a Tucker-shaped weight delta in the layer's own N-d weight shape.

``delta W = scale * G x_1 U_1 x_2 ... x_N U_N`` with a small core ``G`` (zero at init, so the adapter
starts as a no-op) and one factor per mode of the weight, all trained. A Conv2d kernel
``(out, in, kh, kw)`` keeps its spatial structure (default ranks ``[r, r, min(2, kh), min(2, kw)]``)
instead of being flattened to a matrix as LoRA does; a Linear weight gets ``U_out G U_in^T``.
The delta is built by :func:`lowrank.tensors.tucker_to_tensor`.
"""

import dataclasses
import math

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_float, check_int
from lowrank.nn.adapters._method import AdapterMethod, register_method
from lowrank.tensors import tucker_to_tensor

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn

__all__ = ["FLoRA", "FLoRAConfig"]


@dataclasses.dataclass(frozen=True)
class FLoRAConfig:
    """Options of :class:`FLoRA`.

    Attributes
    ----------
    rank : int
        Rank of the output and input channel modes.
    spatial_rank : int
        Rank of each kernel (spatial) mode of a convolution, at most the kernel size.
    ranks : tuple of int or None
        Explicit ranks for every mode (overrides ``rank`` / ``spatial_rank``; one per weight axis).
    alpha : float
        The delta is scaled by ``alpha / rank``.
    """

    rank: int = 8
    spatial_rank: int = 2
    ranks: tuple = None
    alpha: float = 8.0


@register_method("flora")
class FLoRA(AdapterMethod):
    """Tucker-format adapter: core ``G`` (zero init) and one factor per weight mode, all trained.

    Built by :func:`lowrank.nn.adapt` (``method="flora"``).

    Parameters
    ----------
    rank : int, default=8
        Rank of the channel modes (``out`` and ``in``; ``num`` and ``dim`` of an embedding), capped
        at each mode's size.
    spatial_rank : int, default=2
        Rank of each spatial mode of a convolution kernel (capped at the kernel size).
    ranks : sequence of int, optional
        One rank per weight axis, overriding the two above.
    alpha : float, optional
        Scale numerator (default ``rank``: scale 1).

    Attributes
    ----------
    core : torch.nn.Parameter of shape ranks
    factors : torch.nn.ParameterList
        ``factors[k]`` of shape (weight_shape[k], ranks[k]), orthonormal columns at init.

    References
    ----------
    Si et al., "FLoRA: Low-Rank Core Space for N-dimension", 2024, arXiv:2405.14739.

    Examples
    --------
    >>> import torch
    >>> from lowrank.nn import adapt
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3))
    >>> adapter = adapt(model, "flora", rank=2, rng=0)
    >>> adapter.num_trainable  # core 2*2*2*2 + factors 8*2 + 3*2 + 3*2 + 3*2
    50
    """

    config_class = FLoRAConfig

    @classmethod
    def _iv(cls, rank=8, spatial_rank=2, ranks=None, alpha=None):
        rank = check_int(rank, "rank", low=1)
        spatial_rank = check_int(spatial_rank, "spatial_rank", low=1)
        if ranks is not None:
            if isinstance(ranks, (str, bytes)) or not hasattr(ranks, "__iter__"):
                raise TypeError(f"`ranks` must be a sequence of positive integers, got {type(ranks).__name__}")
            ranks = tuple(check_int(r, "ranks", low=1) for r in ranks)
        alpha = float(rank) if alpha is None else check_float(alpha, "alpha")
        return FLoRAConfig(rank=rank, spatial_rank=spatial_rank, ranks=ranks, alpha=alpha)

    @staticmethod
    def mode_ranks(spec, config):
        shape = spec.weight_shape
        if config.ranks is not None:
            return config.ranks
        # rank and spatial_rank are capped at each mode's size (a 3-channel input takes rank <= 3);
        # explicit ``ranks`` are taken as given and checked
        return tuple(min(config.rank, d) for d in shape[:2]) + tuple(min(config.spatial_rank, k) for k in shape[2:])

    @classmethod
    def check_layer(cls, name, base, spec, config):
        ranks = cls.mode_ranks(spec, config)
        shape = spec.weight_shape
        if len(ranks) != len(shape):
            raise ValueError(f"`ranks`: layer {name!r} ({spec.describe()}) has a {len(shape)}-d weight; give "
                             f"{len(shape)} ranks, got {len(ranks)}")
        bad = [k for k, (r, d) in enumerate(zip(ranks, shape)) if r > d]
        if bad:
            raise ValueError(f"`ranks`: ranks {list(ranks)} exceed the weight shape {list(shape)} of layer {name!r} "
                             f"on mode(s) {bad}")

    def __init__(self, base, spec, config, *, generator, shared):
        super().__init__(base, spec, config, generator=generator, shared=shared)
        weight = base.weight
        ranks = self.mode_ranks(spec, config)
        like = dict(device=weight.device, dtype=weight.dtype)
        factors = []
        for d, r in zip(spec.weight_shape, ranks):
            # orthonormal columns (QR of a Gaussian drawn in float64 on the CPU generator): the delta's
            # scale is set by the core alone, whatever the layer's size
            Q, _ = torch.linalg.qr(torch.randn(d, r, generator=generator, dtype=torch.float64))
            factors.append(nn.Parameter(Q.to(**like)))
        self.factors = nn.ParameterList(factors)
        self.core = nn.Parameter(torch.zeros(ranks, **like))
        self.scaling = config.alpha / config.rank

    def delta_weight(self):
        return tucker_to_tensor(self.core, list(self.factors)) * self.scaling

    @property
    def num_parameters(self):
        return math.prod(self.core.shape) + sum(f.numel() for f in self.factors)
