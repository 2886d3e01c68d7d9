"""SNELL: a sparse weight delta drawn from a kernel of two low-rank factors, kept by competition.

Rows ``a_i`` of ``A`` (out, r) and ``b_j`` of ``B`` (in, r) (a convolution as its ``(out, in * prod(k))``
matrix, an embedding as its table) define the delta through a kernel instead of an inner product:

    K_ij = exp(-|a_i - b_j|^2 / 2r) - exp(-(|a_i|^2 + |b_j|^2) / 2r)
         = exp(-(|a_i|^2 + |b_j|^2) / 2r) (exp(a_i . b_j / r) - 1),

a Gaussian distance kernel of the rows, centred so that it is signed (it has the sign of ``a_i . b_j``
and tends to LoRA's ``a_i . b_j / r`` for small rows) and, unlike ``A B^T``, of rank far above ``r``.
Then the entries compete: only those with ``|K_ij|`` in the top ``keep`` fraction of the matrix
survive, so the delta is sparse without storing any index:

    delta W = alpha * K * [|K| >= quantile(|K|, 1 - keep)].

``init="zero"`` (the default) starts ``B`` at zero, where ``K = 0`` exactly, so the adapter starts as
a no-op with a non-zero gradient for ``B``; ``init="paper"`` starts both factors random, as the paper
does (not a no-op).
"""

import dataclasses
import math

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_choice, check_float, check_int
from lowrank.nn.adapters._matrix import to_weight
from lowrank.nn.adapters._method import AdapterMethod, register_method

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn

__all__ = ["SNELL", "SNELLConfig", "competition_mask"]


def competition_mask(values, keep):
    """Boolean mask of the entries of ``values`` whose magnitude is in the top ``keep`` fraction.

    Exactly ``ceil(keep * numel)`` entries are kept, ties at the threshold aside.

    Examples
    --------
    >>> import torch
    >>> competition_mask(torch.tensor([[0.1, -3.0], [2.0, 0.5]]), 0.5)
    tensor([[False,  True],
            [ True, False]])
    """
    flat = values.detach().abs().flatten()
    n_keep = max(1, math.ceil(keep * flat.numel()))
    threshold = torch.kthvalue(flat, flat.numel() - n_keep + 1).values
    return values.detach().abs() >= threshold


@dataclasses.dataclass(frozen=True)
class SNELLConfig:
    """Options of :class:`SNELL`.

    Attributes
    ----------
    rank : int
        Columns ``r`` of the factors.
    keep : float
        Fraction of the delta's entries kept by the competition.
    alpha : float
        Scale of the delta.
    init : {"zero", "paper"}
        ``"zero"``: ``B = 0`` (a no-op start); ``"paper"``: both factors random.
    """

    rank: int = 8
    keep: float = 0.2
    alpha: float = 1.0
    init: str = "zero"


@register_method("snell")
class SNELL(AdapterMethod):
    """Sparse delta from a signed Gaussian kernel of two low-rank factors, sparsified by competition.

    Built by :func:`lowrank.nn.adapt` (``method="snell"``).

    Parameters
    ----------
    rank : int, default=8
    keep : float, default=0.2
        ``0 < keep <= 1``: fraction of entries of each delta kept.
    alpha : float, optional
        Scale (default 1).
    init : {"zero", "paper"}, default="zero"

    Attributes
    ----------
    A : torch.nn.Parameter of shape (m, r)
    B : torch.nn.Parameter of shape (n, r)

    References
    ----------
    Shen et al., "Expanding Sparse Tuning for Low Memory Usage", NeurIPS 2024, arXiv:2411.01800.

    Examples
    --------
    >>> import torch
    >>> from lowrank.nn import adapt
    >>> model = torch.nn.Sequential(torch.nn.Linear(16, 8))
    >>> adapter = adapt(model, "snell", rank=2, keep=0.25, rng=0)
    >>> adapter.num_trainable  # A (8 x 2) + B (16 x 2)
    48
    """

    config_class = SNELLConfig

    @classmethod
    def _iv(cls, rank=8, keep=0.2, alpha=None, init="zero"):
        rank = check_int(rank, "rank", low=1)
        keep = check_float(keep, "keep", low=0.0, high=1.0, low_inclusive=False)
        alpha = 1.0 if alpha is None else check_float(alpha, "alpha")
        return SNELLConfig(rank=rank, keep=keep, alpha=alpha, init=check_choice(init, "init", ("zero", "paper")))

    @classmethod
    def check_layer(cls, name, base, spec, config):
        pass  # the kernel's rank is not bounded by r: any r fits any layer

    def __init__(self, base, spec, config, *, generator, shared):
        super().__init__(base, spec, config, generator=generator, shared=shared)
        weight = base.weight
        m = spec.weight_shape[0]
        n = math.prod(spec.weight_shape[1:])
        like = dict(device=weight.device, dtype=weight.dtype)
        A = torch.randn(m, config.rank, generator=generator, dtype=torch.float64)
        B = torch.randn(n, config.rank, generator=generator, dtype=torch.float64)
        if config.init == "zero":
            B.zero_()
        self.A = nn.Parameter(A.to(**like))
        self.B = nn.Parameter(B.to(**like))

    def kernel(self):
        """The dense kernel matrix ``K`` (m, n) before the competition."""
        r = self.config.rank
        sq_a = (self.A ** 2).sum(1, keepdim=True)
        sq_b = (self.B ** 2).sum(1, keepdim=True).T
        # e^{-(|a|^2 + |b|^2) / 2r} (e^{a.b / r} - 1), with expm1 for accuracy near a.b = 0
        return torch.exp(-(sq_a + sq_b) / (2 * r)) * torch.expm1(self.A @ self.B.T / r)

    def delta_weight(self):
        K = self.kernel()
        delta = K * competition_mask(K, self.config.keep) * self.config.alpha
        return delta if self.spec.out_axis == 1 else to_weight(delta, self.spec)
