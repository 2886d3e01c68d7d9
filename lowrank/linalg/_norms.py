"""Norm estimates from a partial SVD."""

import numpy as np
import scipy.sparse as sp

from lowrank._utils.rng import as_generator
from lowrank._utils.validation import check_matrix, check_rank
from lowrank.linalg._randomized_svd import _check_options, _randomized_svd_numpy


def nuclear_norm_estimate(A, *, rank=20, rng=None):
    """Estimate the nuclear norm ``sum(svd(A))`` from the top ``rank`` singular values.

    Returns ``sum(s_1..s_k) + tail / s_k`` where ``tail = ||A||_F^2 - sum(s_i^2)`` is the energy
    left outside the top ``k``. Every remaining singular value is at most ``s_k``, so the tail's
    nuclear norm is at least ``tail / s_k``: the estimate is a lower bound, exact when ``A`` has
    rank at most ``k`` or a flat tail at level ``s_k``, and within a factor ``sqrt(r - k)`` of the
    tail otherwise. One randomized SVD and one Frobenius norm: cheap on large sparse input.

    Parameters
    ----------
    A : array_like or scipy sparse, shape (m, n)
    rank : int, default=20
        Number of leading singular values computed exactly (clipped to ``min(m, n)``).
    rng : None, int or numpy.random.Generator, default=None

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> A = np.diag([3.0, 2.0, 1.0])
    >>> round(nuclear_norm_estimate(A, rank=3, rng=0), 6)
    6.0
    """
    A = check_matrix(A, "A")
    k = check_rank(min(rank, min(A.shape)) if isinstance(rank, (int, np.integer)) else rank, A.shape)
    k, p, q = _check_options(A.shape, k, 10, "auto", "LU")
    _, s, _ = _randomized_svd_numpy(A.astype(np.float64), k, p, q, "LU", as_generator(rng))
    fro2 = float(sp.linalg.norm(A) ** 2) if sp.issparse(A) else float(np.linalg.norm(A) ** 2)
    tail = max(fro2 - float(np.sum(s.astype(np.float64) ** 2)), 0.0)
    est = float(np.sum(s))
    if s[-1] > 0 and tail > 1e-12 * fro2:
        est += tail / float(s[-1])
    return est
