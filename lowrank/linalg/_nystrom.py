"""Randomized Nyström approximation of positive semidefinite matrices."""

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, aslinearoperator

from lowrank._utils.rng import as_generator
from lowrank._utils.validation import check_int, check_matrix, check_rank


def nystrom(K, rank, *, n_oversamples=10, rng=None):
    """Rank-``rank`` Nyström approximation ``K ≈ U @ diag(s) @ U.T`` of a PSD matrix.

    Uses a Gaussian test matrix with the numerically stable shift of Tropp et al. (2017).

    Parameters
    ----------
    K : ndarray, scipy sparse or LinearOperator, shape (n, n)
        Symmetric positive semidefinite.
    rank : int
        ``0 < rank <= n``.
    n_oversamples : int, default=10
    rng : None, int or numpy.random.Generator, default=None

    Returns
    -------
    U : (n, rank) orthonormal columns
    s : (rank,) non-negative eigenvalue estimates, descending

    Raises
    ------
    ValueError
        Non-square or non-symmetric (dense input) ``K``, rank out of range, NaN/inf, or ``K`` found
        indefinite: a negative diagonal entry (dense/sparse input) or a sketch ``Omega.T @ K @ Omega``
        with an eigenvalue below ``-1e-8`` times its largest (the estimates would be meaningless).
        An all-zero ``K`` is valid: ``s`` is then all zero.

    References
    ----------
    J. A. Tropp, A. Yurtsever, M. Udell, V. Cevher, "Fixed-rank approximation of a positive-semidefinite
    matrix from streaming data", NeurIPS 2017, arXiv:1706.05736.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((50, 3))
    >>> U, s = nystrom(X @ X.T, 3, rng=0)
    >>> bool(np.allclose(U * s @ U.T, X @ X.T))
    True
    """
    if not isinstance(K, LinearOperator):
        K = check_matrix(K, "K")
        if K.shape[0] != K.shape[1]:
            raise ValueError(f"`K` must be square, got shape {K.shape}")
        asym = abs(K - K.T).max() if sp.issparse(K) else np.abs(K - K.T).max()
        if asym > 1e-8 * max(1.0, float(abs(K).max())):
            raise ValueError("`K` must be symmetric (positive semidefinite)")
    elif K.shape[0] != K.shape[1]:
        raise ValueError(f"`K` must be square, got shape {K.shape}")
        diag = K.diagonal()
        if diag.min() < -1e-8 * max(float(np.abs(diag).max()), 1e-300):
            raise ValueError("`K` must be positive semidefinite; it has a negative diagonal entry")
    rank = check_rank(rank, K.shape)
    n_oversamples = check_int(n_oversamples, "n_oversamples", low=0)
    gen = as_generator(rng)
    n = K.shape[0]
    size = min(n, rank + n_oversamples)
    Omega, _ = np.linalg.qr(gen.standard_normal((n, size)))
    Y = np.asarray(aslinearoperator(K).matmat(Omega))
    shift = np.sqrt(n) * np.finfo(np.float64).eps * np.linalg.norm(Y)
    if shift == 0:  # K @ Omega = 0 for a Gaussian Omega: K is the zero matrix
        return Omega[:, :rank], np.zeros(rank)
    Y = Y + shift * Omega
    core = Omega.T @ Y
    core = (core + core.T) / 2
    try:
        C = scipy.linalg.cholesky(core, lower=False)  # core = C^T C
        B = scipy.linalg.solve_triangular(C, Y.T, trans="T", lower=False).T  # Y C^-1
    except np.linalg.LinAlgError:
        # Not numerically PSD along the sketch: use the eigen-decomposition of the core instead.
        w, V = np.linalg.eigh(core)
        if w[0] < -1e-8 * max(abs(w[-1]), shift):
            raise ValueError(
                "`K` must be positive semidefinite; the sketch Omega.T @ K @ Omega has eigenvalue "
                f"{w[0]:.3g} (largest {w[-1]:.3g})"
            ) from None
        B = (Y @ V) / np.sqrt(np.maximum(w, shift))
    U, sv, _ = scipy.linalg.svd(B, full_matrices=False)
    s = np.maximum(sv**2 - shift, 0.0)
    return U[:, :rank], s[:rank]
