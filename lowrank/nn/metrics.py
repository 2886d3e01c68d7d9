"""Spectral metrics of features and weights: Matrix Nuclear-Norm, effective rank, per-layer spectra.

``matrix_nuclear_norm`` scores a batch of representations (hidden states or class probabilities,
samples x features) by the nuclear norm of its centred, row-normalized matrix without an SVD;
``effective_rank`` is the entropy rank of a spectrum; ``spectrum_summary`` lists, per layer of a
torch model, the statistics one reads before choosing ranks (stable and effective rank, the
heavy-tail exponent of the weight's eigenvalue distribution, how many normalized singular values
stay above a threshold).
"""

import math
from dataclasses import dataclass

import numpy as np

from lowrank._utils.validation import check_float, check_matrix

__all__ = ["LayerSpectrumSummary", "effective_rank", "hill_alpha", "matrix_nuclear_norm", "spectrum_summary"]


def _as_array(H, name):
    if hasattr(H, "detach") and hasattr(H, "cpu"):  # a torch tensor, converted without importing torch
        H = H.detach().cpu().double().numpy()
    return check_matrix(H, name, accept_sparse=False)


def matrix_nuclear_norm(H, *, exact=False):
    """Nuclear norm of the centred, row-normalized representation matrix (Matrix Nuclear-Norm).

    The rows of ``H`` (samples) are centred (the mean row is subtracted) and scaled to unit L2
    norm, giving ``A``. The nuclear norm ``||A||_*`` is then approximated without an SVD by the
    sum of the ``D = min(n, d)`` largest column L2 norms of ``A``; ``exact=True`` gives the SVD value.

    The approximation is exact when the columns of ``A`` are orthogonal. Otherwise, when
    ``d <= n`` (every column counted), the triangle inequality and Cauchy-Schwarz give
    ``||A||_* <= approx <= sqrt(d) * ||A||_F <= sqrt(d) * ||A||_*``, so the relative gap
    ``approx / exact - 1`` lies in ``[0, sqrt(d) - 1]``. When ``d > n`` only the top ``n``
    column norms are summed and ``approx >= (n / d) * ||A||_*``. The gap is small when the
    features are close to uncorrelated and grows with their correlation (a planted low-rank
    matrix has the largest gaps).

    Divide by ``n`` for the paper's per-sample score.

    Parameters
    ----------
    H : array_like or torch.Tensor, shape (n, d)
        Representations, one row per sample; finite.
    exact : bool, default=False
        Return the nuclear norm from the singular values instead of the column-norm estimate.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``H`` is not a finite 2-D matrix.

    References
    ----------
    Y. Li et al., "Large Language Model Evaluation via Matrix Nuclear-Norm", 2024, arXiv:2410.10672.

    Examples
    --------
    >>> import numpy as np
    >>> H = np.array([[1.0, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]])  # orthogonal, zero-mean columns
    >>> round(matrix_nuclear_norm(H), 6), round(matrix_nuclear_norm(H, exact=True), 6)
    (3.464102, 3.464102)
    """
    A = _normalized(_as_array(H, "H"))
    if exact:
        return float(np.linalg.svd(A, compute_uv=False).sum())
    norms = np.sqrt(np.einsum("ij,ij->j", A, A))
    D = min(A.shape)
    top = np.partition(norms, norms.size - D)[norms.size - D:] if D < norms.size else norms
    return float(top.sum())


def _normalized(H):
    A = H - H.mean(axis=0, keepdims=True)
    norms = np.linalg.norm(A, axis=1, keepdims=True)
    # a row equal to the mean has no direction: it stays zero instead of becoming NaN
    return np.divide(A, norms, out=np.zeros_like(A), where=norms > 0)


def effective_rank(A, *, singular_values=False):
    """Entropy effective rank: ``exp(H(p))`` with ``p = s / sum(s)`` the normalized singular values.

    Between 1 (one non-zero singular value) and ``min(A.shape)`` (all equal).

    Parameters
    ----------
    A : array_like or torch.Tensor
        A matrix, or (``singular_values=True``) a 1-D array of non-negative singular values.
    singular_values : bool, default=False
        Whether ``A`` already holds the singular values.

    Returns
    -------
    float
        0.0 for an all-zero matrix.

    Raises
    ------
    ValueError
        If ``A`` is not a finite matrix, or the singular values are not a finite non-negative 1-D array.

    References
    ----------
    O. Roy and M. Vetterli, "The effective rank: a measure of effective dimensionality", EUSIPCO 2007.

    Examples
    --------
    >>> import numpy as np
    >>> round(effective_rank(np.diag([2.0, 2.0, 2.0, 0.0])), 6)
    3.0
    """
    if singular_values:
        s = np.asarray(A.detach().cpu().numpy() if hasattr(A, "detach") else A, dtype=np.float64)
        if s.ndim != 1 or not np.isfinite(s).all() or (s < 0).any():
            raise ValueError("`A` must be a 1-D array of finite non-negative singular values")
    else:
        s = np.linalg.svd(_as_array(A, "A"), compute_uv=False)
    total = s.sum()
    if total <= 0:
        return 0.0
    p = s[s > 0] / total
    return float(math.exp(-(p * np.log(p)).sum()))


def hill_alpha(eigenvalues, tail=None):
    """Hill estimate of the power-law exponent of the largest ``eigenvalues`` (density ~ x^-alpha).

    ``alpha = 1 + k / sum_{i<k} log(lambda_i / lambda_k)`` over the ``k = tail`` largest values
    (default half of them); NaN when fewer than 3 positive values or the tail is flat.

    Parameters
    ----------
    eigenvalues : array_like, 1-D
    tail : int, optional
        How many of the largest values the estimate uses (default: half).

    Returns
    -------
    float

    References
    ----------
    B. M. Hill, "A simple general approach to inference about the tail of a distribution",
    Annals of Statistics 1975.

    Examples
    --------
    >>> round(hill_alpha([8.0, 4.0, 2.0, 1.0, 0.5, 0.25]), 4)  # log-spaced values
    1.7213
    """
    lam = np.sort(np.asarray(eigenvalues, dtype=np.float64))[::-1]
    lam = lam[lam > 0]
    k = lam.size // 2 if tail is None else min(int(tail), lam.size - 1)
    if k < 2:
        return float("nan")
    logs = np.log(lam[:k] / lam[k]).sum()
    return float(1.0 + k / logs) if logs > 0 else float("nan")


@dataclass(frozen=True)
class LayerSpectrumSummary:
    """Spectral statistics of one layer's weight matrix.

    Attributes
    ----------
    name : str
        Qualified module name.
    shape : tuple of int
        ``(out, in)`` of the weight matrix (a kernel reshaped to ``(out, in * prod(kernel))``).
    stable_rank : float
        ``||W||_F^2 / ||W||_2^2``.
    effective_rank : float
        :func:`effective_rank` of the singular values.
    alpha : float
        Hill estimate of the power-law exponent of the eigenvalues ``s^2`` (heavy-tailed when
        small, around 2-4 in well-trained layers; NaN for tiny matrices).
    rank_above : int
        How many normalized singular values ``s / s_max`` are at least ``threshold`` (the rank
        WeLore's global threshold would keep).
    threshold : float
        The threshold used for ``rank_above``.
    """

    name: str
    shape: tuple
    stable_rank: float
    effective_rank: float
    alpha: float
    rank_above: int
    threshold: float


def spectrum_summary(model, *, targets=None, threshold=0.1):
    """Per-layer spectral statistics of a torch model's Linear / Conv / Embedding weights.

    Parameters
    ----------
    model : torch.nn.Module
    targets : None, str, type, callable or list, default=None
        Layer selection as in :func:`lowrank.nn.compress` (None: every supported layer).
    threshold : float in (0, 1], default=0.1
        Threshold on normalized singular values for ``rank_above``.

    Returns
    -------
    list of LayerSpectrumSummary
        In model order.

    Raises
    ------
    TypeError
        If ``model`` is not a torch module.
    ValueError
        If ``threshold`` is outside (0, 1] or a target pattern matches nothing.

    References
    ----------
    A. Jaiswal et al., "From GaLore to WeLore", 2024, arXiv:2407.11239 (normalized singular values);
    C. H. Martin and M. W. Mahoney, "Implicit self-regularization in deep neural networks", JMLR 2021,
    arXiv:1810.01075 (heavy-tailed spectra, alpha).

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 4, bias=False))
    >>> with torch.no_grad():
    ...     _ = model[0].weight.copy_(torch.diag(torch.tensor([1.0, 1.0, 0.05, 0.0])))
    >>> row = spectrum_summary(model)[0]
    >>> row.rank_above, round(row.stable_rank, 4)
    (2, 2.0025)
    """
    from lowrank._utils.optional import import_optional

    torch = import_optional("torch", purpose="lowrank.nn")
    from lowrank.nn._targets import select_modules
    from lowrank.nn.compression._base import Compressor
    from lowrank.nn.compression.svd import weight_matrix

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
    threshold = check_float(threshold, "threshold", low=0.0, high=1.0, low_inclusive=False)
    modules = dict(model.named_modules())
    rows = []
    for name in select_modules(model, targets, Compressor.supported):
        W = weight_matrix(modules[name]).cpu().numpy()
        s = np.linalg.svd(W, compute_uv=False)
        top = s[0] if s.size else 0.0
        rows.append(LayerSpectrumSummary(
            name=name, shape=tuple(W.shape),
            stable_rank=float((s**2).sum() / top**2) if top > 0 else 0.0,
            effective_rank=effective_rank(s, singular_values=True), alpha=hill_alpha(s**2),
            rank_above=int((s >= threshold * top).sum()) if top > 0 else 0, threshold=threshold))
    return rows
