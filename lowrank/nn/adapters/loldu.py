"""LoLDU: fine-tune a diagonal of the weight's LDU decomposition.

With ``W = P L U`` (partial-pivoting LU of the weight as a matrix), ``D = diag(U)`` and the unit
upper factor ``U_1 = D^-1 U``, ``W = P L diag(D) U_1``. LoLDU keeps ``L[:, :r]``, ``U_1[:r]`` and
``P`` frozen and trains a diagonal ``z`` (starting at ``D[:r]``) and one scalar ``scale``
(starting at 1):

    W' = W + P L_r diag(scale * z - D_r) U_{1,r}

so the adapter starts as a no-op and trains ``r + 1`` numbers per layer.
"""

import dataclasses

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_int
from lowrank.nn.adapters._matrix import as_matrix, factor_source, to_weight
from lowrank.nn.adapters._method import AdapterMethod, register_method

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn

__all__ = ["LoLDU", "LoLDUConfig", "ldu"]


def ldu(matrix):
    """``(perm, L, D, U1)`` with ``matrix == (L * D) @ U1`` after gathering rows: ``matrix[perm]``.

    ``L`` (m, k) is unit lower-triangular, ``D`` (k,) the pivots, ``U1`` (k, n) unit upper-triangular,
    ``k = min(m, n)``. A zero pivot (a singular matrix) keeps its row of ``U`` unscaled, with ``D = 0``.

    Examples
    --------
    >>> import torch
    >>> A = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    >>> perm, L, D, U1 = ldu(A)
    >>> torch.allclose(((L * D) @ U1), A[perm])
    True
    """
    P, L, U = torch.linalg.lu(matrix)
    D = torch.diagonal(U).clone()
    safe = torch.where(D == 0, torch.ones_like(D), D)
    U1 = U / safe[:, None]
    # matrix = P L U, so matrix[perm] = L U with perm[j] the row of P's column j
    perm = P.argmax(dim=0)
    return perm, L, D, U1


@dataclasses.dataclass(frozen=True)
class LoLDUConfig:
    """Options of :class:`LoLDU`.

    Attributes
    ----------
    rank : int or None
        Pivots trained per layer; None: all ``min(m, n)`` of them.
    """

    rank: int = None


@register_method("loldu")
class LoLDU(AdapterMethod):
    """Train a scaled diagonal of the frozen weight's LDU decomposition (``r + 1`` numbers a layer).

    Built by :func:`lowrank.nn.adapt` (``method="loldu"``).

    Parameters
    ----------
    rank : int, optional
        Leading pivots trained per layer (default all, ``min`` of the weight matrix's sides).

    Attributes
    ----------
    z : torch.nn.Parameter of shape (r,)
        The trained diagonal (starts at the frozen pivots ``D_r``).
    scale : torch.nn.Parameter (0-d)
        The trained scalar (starts at 1).
    L, U1, d0, inverse_perm : buffers
        Frozen ``L[:, :r]``, ``U_1[:r]``, ``D_r`` and the row permutation (saved with the adapter).

    References
    ----------
    Shi et al., "LoLDU: Low-Rank Adaptation via Lower-Diag-Upper Decomposition for
    Parameter-Efficient Fine-Tuning", 2024, arXiv:2410.13618.

    Examples
    --------
    >>> import torch
    >>> from lowrank.nn import adapt
    >>> model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> adapter = adapt(model, "loldu", targets="0", rng=0)
    >>> adapter.num_trainable  # min(8, 16) pivots + one scale
    9
    """

    config_class = LoLDUConfig

    @classmethod
    def _iv(cls, rank=None):
        return LoLDUConfig(rank=None if rank is None else check_int(rank, "rank", low=1))

    def __init__(self, base, spec, config, *, generator, shared):
        super().__init__(base, spec, config, generator=generator, shared=shared)
        weight = base.weight
        perm, L, D, U1 = ldu(as_matrix(factor_source(base), spec))
        r = D.numel() if config.rank is None else config.rank
        like = dict(device=weight.device, dtype=weight.dtype)
        self.register_buffer("L", L[:, :r].to(**like).contiguous())
        self.register_buffer("U1", U1[:r].to(**like).contiguous())
        self.register_buffer("d0", D[:r].to(**like).clone())
        self.register_buffer("inverse_perm", torch.argsort(perm).to(weight.device))
        self.z = nn.Parameter(self.d0.clone())
        self.scale = nn.Parameter(torch.ones((), **like))

    def delta_weight(self):
        rows = (self.L * (self.scale * self.z - self.d0)) @ self.U1  # the delta of matrix[perm]
        return to_weight(rows[self.inverse_perm], self.spec)
