"""TDN: an SO(3)-equivariant tensor product through a CP decomposition of its Clebsch-Gordan tensor.

A fully connected tensor product of irreps features is bilinear: ``z_k = sum_ij T_ijk x_i y_j`` with
``T`` the path-weighted, normalized Clebsch-Gordan (CG) tensor of shape ``(D1, D2, D3)``,
``D = sum (2l + 1)`` (``(L + 1)^2`` for one copy of every ``l <= L``). A rank-``R`` CP model
``T ≈ sum_r a_r ⊗ b_r ⊗ c_r`` evaluates it as ``((x A) * (y B)) C^T`` in ``O(R (D1 + D2 + D3))`` per
sample instead of ``O(D1 D2 D3)``. The factors are fitted once to the exact tensor (e3nn's) and frozen.
"""

import numpy as np

from lowrank._utils.optional import import_optional
from lowrank._utils.rng import as_seed
from lowrank._utils.validation import check_int

torch = import_optional("torch", purpose="lowrank.nn.CPTensorProduct")
nn = torch.nn

__all__ = ["CPTensorProduct", "tensor_product_tensor", "equivariance_error"]


def _e3nn():
    return import_optional("e3nn", extra="mlip", purpose="lowrank.nn.CPTensorProduct")


def tensor_product_tensor(tp, weight=None):
    """The dense ``(D1, D2, D3)`` tensor of a bilinear e3nn tensor product (float64).

    ``T[i, j] = tp(e_i, e_j)``: the product evaluated on every pair of basis vectors, so the tensor
    includes e3nn's path normalization and the path weights.

    Parameters
    ----------
    tp : e3nn.o3.TensorProduct
        With shared weights (internal, or given as ``weight``).
    weight : torch.Tensor of shape (tp.weight_numel,), optional
        Path weights when ``tp`` has no internal ones.

    Returns
    -------
    torch.Tensor of shape (D1, D2, D3), float64

    Examples
    --------
    >>> from e3nn import o3
    >>> tp = o3.FullyConnectedTensorProduct("1x1o", "1x1o", "1x0e")
    >>> tensor_product_tensor(tp).shape
    torch.Size([3, 3, 1])
    """
    d1, d2 = tp.irreps_in1.dim, tp.irreps_in2.dim
    tp = tp.double() if weight is None else tp
    x1 = torch.eye(d1, dtype=torch.float64).repeat_interleave(d2, dim=0)
    x2 = torch.eye(d2, dtype=torch.float64).repeat(d1, 1)
    with torch.no_grad():
        out = tp(x1, x2) if weight is None else tp(x1, x2, weight.double())
    return out.reshape(d1, d2, -1).double()


class CPTensorProduct(nn.Module):
    """Fully connected tensor product of irreps features as a frozen rank-``R`` CP model (TDN).

    ``forward(x, y) = ((x A) * (y B) * w) C^T`` with ``A (D1, R)``, ``B (D2, R)``, ``C (D3, R)`` fitted
    to the exact CG tensor of e3nn's ``FullyConnectedTensorProduct(irreps_in1, irreps_in2, irreps_out)``
    with path weights ``weights`` (ALS, :func:`lowrank.tensors.cp_als`) and frozen; ``w`` (``R``, ones)
    is the one learnable weight vector shared by all CG paths. At ``rank >= D1 D2`` the factors are
    exact by construction (``a_r = e_i``, ``b_r = e_j``, ``c_r = T[i, j]``).

    Parameters
    ----------
    irreps_in1, irreps_in2, irreps_out : str or e3nn.o3.Irreps
        Irreps of the two inputs and the output.
    rank : int, optional
        CP rank ``R`` (default ``7 L^2`` with ``L`` the largest input degree, the paper's default;
        ``D1 D2`` if that is smaller).
    weights : torch.Tensor of shape (weight_numel,), optional
        Path weights of the reference product (default: ones).
    n_iter : int, default=500
        ALS sweeps of the fit (below the exact rank).
    n_restarts : int, default=4
        Extra random ALS starts (the best fit wins).
    seed : int, default=0
        Seeds the ALS starts.

    Attributes
    ----------
    fit_error_ : float
        Relative Frobenius error of the CP model against the exact tensor.
    reference : e3nn.o3.FullyConnectedTensorProduct
        The exact product (weights ``weights``), kept for comparison; not called in ``forward``.

    Raises
    ------
    ImportError
        Without e3nn (``pip install "lowrank[mlip]"``).
    ValueError
        If ``rank``, ``n_iter``, ``n_restarts`` or ``weights`` is invalid, or no CG path exists.

    References
    ----------
    .. [1] Lin et al., "Tensor Decomposition Networks for Fast Machine Learning Interatomic Potential
       Computations", 2025, arXiv:2507.01131.

    Examples
    --------
    >>> import torch
    >>> from lowrank.nn import CPTensorProduct
    >>> tp = CPTensorProduct("0e+1o", "0e+1o", "0e+1o", rank=16)
    >>> x, y = torch.randn(5, 4), torch.randn(5, 4)
    >>> bool(torch.allclose(tp(x, y), tp.reference(x, y), atol=1e-5)), tp.fit_error_ < 1e-6
    (True, True)
    """

    def __init__(self, irreps_in1, irreps_in2, irreps_out, rank=None, *, weights=None, n_iter=500, n_restarts=4,
                 seed=0):
        super().__init__()
        o3 = import_optional("e3nn.o3", extra="mlip", purpose="lowrank.nn.CPTensorProduct")
        _e3nn()
        reference = o3.FullyConnectedTensorProduct(irreps_in1, irreps_in2, irreps_out)
        if reference.weight_numel == 0:
            raise ValueError("`irreps_out` has no Clebsch-Gordan path from `irreps_in1` x `irreps_in2`")
        if weights is None:
            weights = torch.ones(reference.weight_numel)
        if not torch.is_tensor(weights) or weights.shape != (reference.weight_numel,):
            raise ValueError(f"`weights` must be a tensor of shape ({reference.weight_numel},)")
        if not torch.isfinite(weights).all():
            raise ValueError("`weights` must be finite")
        with torch.no_grad():
            reference.weight.copy_(weights)
        self.irreps_in1, self.irreps_in2 = reference.irreps_in1, reference.irreps_in2
        self.irreps_out = reference.irreps_out
        d1, d2 = self.irreps_in1.dim, self.irreps_in2.dim
        L = max(ir.l for _, ir in list(self.irreps_in1) + list(self.irreps_in2))
        exact = d1 * d2
        rank = min(7 * max(L, 1) ** 2, exact) if rank is None else check_int(rank, "rank", low=1)
        n_iter = check_int(n_iter, "n_iter", low=0)
        n_restarts = check_int(n_restarts, "n_restarts", low=0)
        T = tensor_product_tensor(reference)
        A, B, C = _fit(T, rank, n_iter, n_restarts, as_seed(seed, name="seed"))
        self.rank = rank
        self.register_buffer("A", A.float())
        self.register_buffer("B", B.float())
        self.register_buffer("C", C.float())
        self.weight = nn.Parameter(torch.ones(rank))
        approx = torch.einsum("ir,jr,kr->ijk", A, B, C)
        self.fit_error_ = float((approx - T).norm() / T.norm().clamp_min(1e-300))
        self.reference = reference.float()
        for p in self.reference.parameters():
            p.requires_grad_(False)

    def forward(self, x, y):
        """``(..., D1), (..., D2) -> (..., D3)``."""
        return ((x @ self.A) * (y @ self.B) * self.weight) @ self.C.T


def _fit(T, rank, n_iter, n_restarts, seed):
    d1, d2, d3 = T.shape
    if rank >= d1 * d2:
        A = torch.zeros(d1, rank, dtype=torch.float64)
        B = torch.zeros(d2, rank, dtype=torch.float64)
        C = torch.zeros(d3, rank, dtype=torch.float64)
        r = torch.arange(d1 * d2)
        A[r // d2, r] = 1.0
        B[r % d2, r] = 1.0
        C[:, : d1 * d2] = T.reshape(d1 * d2, d3).T
        return A, B, C
    from lowrank.tensors import cp_als

    cp = cp_als(T.numpy(), rank, n_iter_max=n_iter, n_restarts=n_restarts, tol=1e-12, rng=seed)
    w, (A, B, C) = cp
    A, B, C = (torch.as_tensor(np.asarray(f), dtype=torch.float64) for f in (A, B, C))
    scale = torch.as_tensor(np.asarray(w), dtype=torch.float64)
    # split each component's scale evenly over the three factors (balanced magnitudes in float32)
    root = scale.abs() ** (1.0 / 3.0)
    return A * root, B * root, C * (scale.sign() * root)


def equivariance_error(module, n=64, seed=0):
    """``max |f(D1 x, D2 y) - D3 f(x, y)| / max |f(x, y)|`` over random inputs and one random rotation.

    Parameters
    ----------
    module : CPTensorProduct or e3nn tensor product
        With ``irreps_in1``, ``irreps_in2``, ``irreps_out`` and ``forward(x, y)``.
    n : int, default=64
        Number of random input pairs.
    seed : int, default=0

    Returns
    -------
    float

    Examples
    --------
    >>> tp = CPTensorProduct("0e+1o", "0e+1o", "0e+1o", rank=16)
    >>> equivariance_error(tp) < 1e-5
    True
    """
    o3 = import_optional("e3nn.o3", extra="mlip", purpose="lowrank.nn.structural.tensor_product")
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, module.irreps_in1.dim, generator=gen)
    y = torch.randn(n, module.irreps_in2.dim, generator=gen)
    q = torch.randn(4, generator=gen, dtype=torch.float64)
    R = o3.quaternion_to_matrix(q / q.norm()).float()
    D1, D2, D3 = (ir.D_from_matrix(R) for ir in (module.irreps_in1, module.irreps_in2, module.irreps_out))
    with torch.no_grad():
        out = module(x, y)
        rotated = module(x @ D1.T, y @ D2.T)
    return float((rotated - out @ D3.T).abs().max() / out.abs().max().clamp_min(1e-30))


