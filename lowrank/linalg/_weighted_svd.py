"""Weighted low-rank approximation with separable (row x column) weights."""

import numpy as np
import scipy.linalg

from lowrank._utils.validation import check_matrix, check_rank


def weighted_svd(A, rank, *, row_weights=None, col_weights=None):
    """Best rank-``rank`` approximation of ``A`` in a row/column weighted Frobenius norm.

    Minimizes ``sum_ij r_i c_j (A_ij - B_ij)^2`` over rank-``rank`` matrices ``B``. With separable
    positive weights the minimizer is exact: the truncated SVD of ``D_r^{1/2} A D_c^{1/2}``,
    mapped back (as in Fisher-weighted SVD, where the weights are Fisher information estimates).

    Parameters
    ----------
    A : array_like, shape (m, n)
    rank : int
        ``0 < rank <= min(m, n)``.
    row_weights : (m,) array of positive floats, optional (default all ones)
    col_weights : (n,) array of positive floats, optional (default all ones)

    Returns
    -------
    U : (m, rank), s : (rank,), Vh : (rank, n)
        ``B = U @ diag(s) @ Vh``; ``U`` is orthonormal in the ``D_r`` inner product
        (``U.T @ diag(r) @ U = I``) and ``Vh`` in the ``D_c`` one.

    Raises
    ------
    ValueError
        Weights of the wrong length, non-positive or non-finite weights.

    References
    ----------
    Y.-C. Hsu et al., "Language model compression with weighted low-rank factorization" (FWSVD),
    ICLR 2022, arXiv:2207.00112. N. Srebro, T. Jaakkola, "Weighted low-rank approximations", ICML 2003.

    Examples
    --------
    >>> import numpy as np
    >>> A = np.random.default_rng(0).standard_normal((6, 5))
    >>> U, s, Vh = weighted_svd(A, 5, row_weights=np.arange(1, 7.0))
    >>> bool(np.allclose(U * s @ Vh, A))
    True
    """
    A = check_matrix(A, "A", accept_sparse=False)
    rank = check_rank(rank, A.shape)
    r = _weights(row_weights, A.shape[0], "row_weights")
    c = _weights(col_weights, A.shape[1], "col_weights")
    sr, sc = np.sqrt(r), np.sqrt(c)
    U, s, Vh = scipy.linalg.svd(sr[:, None] * A * sc[None, :], full_matrices=False)
    from lowrank.linalg._randomized_svd import svd_flip

    U, Vh = svd_flip(U[:, :rank], Vh[:rank])
    return U / sr[:, None], s[:rank], Vh / sc[None, :]


def _weights(w, size, name):
    if w is None:
        return np.ones(size)
    w = np.asarray(w, dtype=np.float64)
    if w.shape != (size,):
        raise ValueError(f"`{name}` must have shape ({size},), got {w.shape}")
    if not np.isfinite(w).all() or (w <= 0).any():
        raise ValueError(f"`{name}` must be finite and positive")
    return w
