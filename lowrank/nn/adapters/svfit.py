"""SVFit: fine-tune only the top singular values of each frozen weight.

``W = U diag(s) V^T`` (the weight as a matrix, see :mod:`lowrank.nn.adapters._matrix`). The top-``r``
singular vectors ``U_r``, ``V_r`` and the rest of the spectrum stay frozen; only ``sigma`` (``r``
numbers per layer, starting at ``s_r``) trains, so the adapted weight is
``W + U_r diag(sigma - s_r) V_r^T``: a delta of rank ``<= r`` in the principal subspace of ``W``.
"""

import dataclasses

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_float, check_int
from lowrank.nn.adapters._matrix import as_matrix, factor_source, to_weight
from lowrank.nn.adapters._method import AdapterMethod, register_method

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn
F = nn.functional

__all__ = ["SVFit", "SVFitConfig"]


@dataclasses.dataclass(frozen=True)
class SVFitConfig:
    """Options of :class:`SVFit`.

    Attributes
    ----------
    rank : int or None
        Singular values trained per layer; None: the smallest count holding ``energy`` of the
        layer's spectral energy (:func:`lowrank.linalg.rank_by_energy`).
    energy : float
        Energy fraction for ``rank=None``.
    """

    rank: int = None
    energy: float = 0.99


@register_method("svfit")
class SVFit(AdapterMethod):
    """Train the top-``r`` singular values of each target weight, its singular vectors frozen.

    Built by :func:`lowrank.nn.adapt` (``method="svfit"``).

    Parameters
    ----------
    rank : int, optional
        Singular values per layer (``<= min`` of the weight matrix's sides); default from ``energy``.
    energy : float, default=0.99
        With ``rank=None``: keep the smallest ``r`` whose singular values hold this fraction of
        ``sum(s**2)``.

    Attributes
    ----------
    sigma : torch.nn.Parameter of shape (r,)
        The trained singular values (start at the frozen ones, so the adapter starts as a no-op).
    U, Vh, s0 : buffers
        Frozen ``U_r`` (m, r), ``V_r^T`` (r, n) and the original ``s_r`` (saved with the adapter).

    References
    ----------
    Sun et al., "SVFit: Parameter-Efficient Fine-Tuning of Large Pre-Trained Models Using Singular
    Values", 2024, arXiv:2409.05926.

    Examples
    --------
    >>> import torch
    >>> from lowrank.nn import adapt
    >>> model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> adapter = adapt(model, "svfit", targets="0", rank=3, rng=0)
    >>> adapter.num_trainable  # one singular value per rank
    3
    """

    config_class = SVFitConfig

    @classmethod
    def _iv(cls, rank=None, energy=0.99):
        rank = None if rank is None else check_int(rank, "rank", low=1)
        energy = check_float(energy, "energy", low=0.0, high=1.0, low_inclusive=False)
        return SVFitConfig(rank=rank, energy=energy)

    def __init__(self, base, spec, config, *, generator, shared):
        super().__init__(base, spec, config, generator=generator, shared=shared)
        weight = base.weight
        U, s, Vh = torch.linalg.svd(as_matrix(factor_source(base), spec), full_matrices=False)
        if config.rank is None:
            from lowrank.linalg import rank_by_energy  # here, not at import: linalg pulls in scikit-learn

            r = rank_by_energy(s.numpy(), config.energy)
        else:
            r = config.rank
        like = dict(device=weight.device, dtype=weight.dtype)
        self.register_buffer("U", U[:, :r].to(**like).contiguous())
        self.register_buffer("Vh", Vh[:r].to(**like).contiguous())
        self.register_buffer("s0", s[:r].to(**like).clone())
        # sigma - s0 is exactly zero at init in every dtype: the adapter starts as a no-op
        self.sigma = nn.Parameter(self.s0.clone())

    @property
    def rank(self):
        return int(self.sigma.numel())

    def delta_weight(self):
        return to_weight((self.U * (self.sigma - self.s0)) @ self.Vh, self.spec)

    def delta_output(self, x, *args, **kwargs):
        if self.spec.kind != "linear":
            return super().delta_output(x, *args, **kwargs)
        # U diag(sigma - s0) V^T x without forming the (out, in) delta
        return F.linear(F.linear(x, self.Vh) * (self.sigma - self.s0), self.U)

