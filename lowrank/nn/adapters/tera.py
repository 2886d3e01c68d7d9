"""TeRA: a tensorized weight delta from frozen random factors shared by every layer; only vectors train.

The delta of a weight matrix ``(m, n)`` (a convolution as ``(out, in * prod(kernel))``) is reshaped
into a 4-way tensor ``(m1, m2, n1, n2)`` with ``m = m1 m2`` and ``n = n1 n2``, and written as a
Tucker network

    delta W = reshape(G x_1 (U_1 diag(l_1)) x_2 (U_2 diag(l_2)) x_3 (U_3 diag(l_3)) x_4 (U_4 diag(l_4)))

whose core ``G`` and factors ``U_k`` are random, frozen and shared by every adapted layer of the same
shape (regenerated from the adapter's ``seed``, never saved), while each layer trains only its
scaling vectors ``l_k`` (``sum R_k`` numbers). ``l_4`` starts at zero, so the adapter starts as a no-op.
The matricized delta can have rank up to ``min(m, n)`` although a layer trains ``sum R_k`` numbers.
"""

import dataclasses
import math

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_float, check_int
from lowrank.nn.adapters._matrix import to_weight
from lowrank.nn.adapters._method import AdapterMethod, register_method
from lowrank.tensors import tucker_to_tensor

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn

__all__ = ["TeRA", "TeRAConfig", "balanced_split"]


def balanced_split(n):
    """``(a, b)`` with ``a * b == n``, ``a <= b`` and ``a`` the largest divisor of ``n`` up to ``sqrt(n)``.

    Examples
    --------
    >>> balanced_split(256), balanced_split(64), balanced_split(13)
    ((16, 16), (8, 8), (1, 13))
    """
    a = int(math.isqrt(n))
    while n % a:
        a -= 1
    return a, n // a


@dataclasses.dataclass(frozen=True)
class TeRAConfig:
    """Options of :class:`TeRA`.

    Attributes
    ----------
    rank : int or None
        Rank of each of the four tensor modes (capped at the mode's size); None: full (each ``R_k = d_k``).
    alpha : float
        Scale of the delta.
    seed : int
        Seed of the shared random core and factors (part of the saved config, so loading regenerates them).
    """

    rank: int = None
    alpha: float = 1.0
    seed: int = 0


@register_method("tera")
class TeRA(AdapterMethod):
    """Tensorized random adapter: shared frozen Tucker network, per-layer trainable scaling vectors.

    Built by :func:`lowrank.nn.adapt` (``method="tera"``).

    Parameters
    ----------
    rank : int, optional
        Rank of each of the four modes (default full).
    alpha : float, optional
        Scale of the delta (default 1).
    seed : int, default=0
        Seed of the shared random tensors.

    Attributes
    ----------
    scales : torch.nn.ParameterList
        The four trained vectors ``l_1 .. l_4`` (``l_4`` zero at init).
    shared_key : str
        Name of this layer's shared tensors in the adapter's ``SharedModules`` (one set per shape).

    References
    ----------
    Gu et al., "TeRA: Vector-based Random Tensor Network for High-Rank Adaptation of Large Language
    Models", 2025, arXiv:2509.03234.

    Examples
    --------
    >>> import torch
    >>> from lowrank.nn import adapt
    >>> model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256))
    >>> adapter = adapt(model, "tera", rng=0)
    >>> adapter.num_trainable  # (16 + 16 + 8 + 8) + (16 + 16 + 16 + 16)
    112
    """

    config_class = TeRAConfig

    @classmethod
    def _iv(cls, rank=None, alpha=None, seed=0):
        rank = None if rank is None else check_int(rank, "rank", low=1)
        alpha = 1.0 if alpha is None else check_float(alpha, "alpha")
        return TeRAConfig(rank=rank, alpha=alpha, seed=check_int(seed, "seed", low=0))

    @classmethod
    def check_layer(cls, name, base, spec, config):
        pass  # any rank is capped at each mode's size

    def __init__(self, base, spec, config, *, generator, shared):
        super().__init__(base, spec, config, generator=generator, shared=shared)
        weight = base.weight
        m = spec.weight_shape[0]
        n = math.prod(spec.weight_shape[1:])
        dims = balanced_split(m) + balanced_split(n)
        ranks = tuple(d if config.rank is None else min(config.rank, d) for d in dims)
        self.dims, self.ranks = dims, ranks
        like = dict(device=weight.device, dtype=weight.dtype)
        self.shared_key = "g_" + "_".join(map(str, dims + ranks))
        key = self.shared_key

        def random_network():
            # one generator per shape from the config's seed: every layer of this shape, on every
            # process, regenerates the same tensors; non-persistent, so never saved
            gen = torch.Generator().manual_seed(config.seed * 1_000_003 + sum(d * 31**i for i, d in enumerate(dims + ranks)))
            core = torch.randn(ranks, generator=gen, dtype=torch.float64) / math.sqrt(math.prod(ranks))
            factors = [torch.randn(d, r, generator=gen, dtype=torch.float64) / math.sqrt(r) for d, r in zip(dims, ranks)]
            return [core, *factors]

        tensors = None
        for i in range(5):
            name = f"{key}_{i}"
            if name not in shared._buffers:
                tensors = tensors or random_network()
            shared.setdefault_buffer(name, lambda i=i: tensors[i].to(**like), persistent=False)
        self.shared = shared
        self.scales = nn.ParameterList([nn.Parameter(torch.ones(r, **like)) for r in ranks[:3]]
                                       + [nn.Parameter(torch.zeros(ranks[3], **like))])
        self.scaling = config.alpha

    def shared_tensors(self):
        """``(core, [U_1, U_2, U_3, U_4])``: the frozen shared network of this layer's shape."""
        buffers = [self.shared._buffers[f"{self.shared_key}_{i}"] for i in range(5)]
        return buffers[0], buffers[1:]

    def delta_weight(self):
        core, factors = self.shared_tensors()
        scaled = [U * s for U, s in zip(factors, self.scales)]
        m = self.spec.weight_shape[0]
        delta = tucker_to_tensor(core, scaled).reshape(m, -1) * self.scaling
        if self.spec.out_axis == 1:  # an embedding (num, dim): num plays the rows, as for the matrix view
            return delta
        return to_weight(delta, self.spec)
