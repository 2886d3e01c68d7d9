"""Rank-revealing QR: LAPACK's column-pivoted QR, plus Gu-Eisenstat strong RRQR swaps."""

import numpy as np
import scipy.linalg

from lowrank._utils.validation import check_float, check_int, check_matrix


def rrqr(A, rank=None, *, tol=None, strong=False, f=1.2):
    """Rank-revealing QR factorization with column pivoting: ``A[:, perm] ≈ Q @ R``.

    Parameters
    ----------
    A : array_like, shape (m, n)
        Dense real matrix (sparse input is densified; use :func:`interpolative` with
        ``method="randomized"`` for large sparse matrices).
    rank : int, optional
        Keep the leading ``rank`` columns of ``Q`` and rows of ``R``. Default: decided by
        ``tol``, or ``min(m, n)`` when both are None.
    tol : float, optional
        Numerical rank: keep the diagonal entries with ``|R[i, i]| > tol * |R[0, 0]|``.
    strong : bool, default=False
        Apply Gu-Eisenstat swaps after pivoting until every entry of ``R11^-1 R12`` and every
        ``||R22 e_j|| * ||e_i^T R11^-1||`` is at most ``f`` in magnitude (a strong RRQR).
        Needs a rank (given or from ``tol``).
    f : float, default=1.2
        Bound of the strong RRQR, ``f >= 1``.

    Returns
    -------
    Q : (m, rank) orthonormal columns
    R : (rank, n) upper trapezoidal
    perm : (n,) column permutation; ``perm[:rank]`` are the selected columns.

    Raises
    ------
    ValueError
        ``rank`` out of range, ``f < 1``, ``tol`` negative, NaN/inf in ``A``.

    References
    ----------
    M. Gu and S. C. Eisenstat, "Efficient algorithms for computing a strong rank-revealing QR
    factorization", SIAM J. Sci. Comput. 17(4), 1996.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.linalg import rrqr
    >>> A = np.random.default_rng(0).standard_normal((6, 10))
    >>> Q, R, perm = rrqr(A, 3, strong=True)
    >>> W = np.linalg.solve(R[:, :3], R[:, 3:])  # bounded by f
    >>> bool(np.abs(W).max() <= 1.2 + 1e-12)
    True
    """
    A, rank, tol, strong, f = _iv(A, rank, tol, strong, f)
    return _rrqr(A, rank, tol, strong, f)


def _iv(A, rank, tol, strong, f):
    import scipy.sparse as sp

    A = check_matrix(A, "A")
    if sp.issparse(A):
        A = A.toarray()
    if rank is not None:
        rank = check_int(rank, "rank", low=1, high=min(A.shape))
    if tol is not None:
        tol = check_float(tol, "tol", low=0)
    f = check_float(f, "f", low=1.0)
    if not isinstance(strong, (bool, np.bool_)):
        raise TypeError(f"`strong` must be a bool, got {type(strong).__name__}")
    return A, rank, tol, bool(strong), f


def _rrqr(A, rank, tol, strong, f):
    """Body of :func:`rrqr` without input validation."""
    Q, R, perm = scipy.linalg.qr(A, mode="economic", pivoting=True, check_finite=False)
    if rank is None:
        if tol is None:
            rank = min(A.shape)
        else:
            d = np.abs(np.diag(R))
            rank = max(1, int(np.count_nonzero(d > tol * d[0]))) if d[0] > 0 else 1
    # A zero on R11's diagonal means (column pivoting) that the trailing block R22 is zero as well:
    # the factorization already reveals the rank, and the swaps' R11^-1 would not exist.
    if strong and rank < A.shape[1] and np.abs(np.diag(R)[:rank]).min() > 0:
        Q, R, perm = _strong_swaps(A, Q, R, perm, rank, f)
    return Q[:, :rank], R[:rank], perm


def _strong_swaps(A, Q, R, perm, k, f):
    """Gu-Eisenstat Algorithm 4 with refactorization after each swap.

    Each swap multiplies |det(R11)| by more than ``f``, so the number of swaps is bounded
    by log_f of the ratio between the optimal and initial determinants (small in practice);
    refactorizing the k leading columns keeps the code short and exact.
    """
    perm = perm.copy()
    n = A.shape[1]
    max_swaps = 10 * n * max(1, k)
    for _ in range(max_swaps):
        W, G = _bound_terms(R, k, check_finite=False)
        score = np.maximum(np.abs(W), G)
        i, j = np.unravel_index(np.argmax(score), score.shape)
        if score[i, j] <= f:
            break
        perm[[i, k + j]] = perm[[k + j, i]]
        Q, R = scipy.linalg.qr(A[:, perm], mode="economic", check_finite=False)
    return Q, R, perm


def strong_rrqr_bounds(R, k):
    """The two quantities a strong RRQR bounds: ``max|R11^-1 R12|`` and ``max ||R22 e_j|| ||e_i^T R11^-1||``.

    Useful for checking the guarantee (tests, band selection diagnostics).

    Parameters
    ----------
    R : ndarray, shape (k', n)
        Upper trapezoidal factor of a column-pivoted QR, ``k' >= k`` rows (as returned by
        :func:`rrqr` without truncation, or ``scipy.linalg.qr``).
    k : int
        Size of the leading block ``R11``.

    Returns
    -------
    (float, float)
        Both 0.0 when ``R`` has no column beyond the first ``k``; both inf when ``R11`` is singular.

    Raises
    ------
    ValueError
        ``R`` not a non-empty 2-D finite real array, ``k`` not in ``1 <= k <= R.shape[0]``.
    TypeError
        ``R`` not array-like or not real, ``k`` not an integer.

    Examples
    --------
    >>> import numpy as np, scipy.linalg
    >>> A = np.random.default_rng(0).standard_normal((6, 10))
    >>> _, R, perm = rrqr(A, 3, strong=True)
    >>> _, R_full = scipy.linalg.qr(A[:, perm], mode="economic")
    >>> w, g = strong_rrqr_bounds(R_full, 3)
    >>> bool(w <= 1.2 + 1e-12 and g <= 1.2 + 1e-12)
    True
    """
    if R is None:
        raise TypeError("`R` must be a 2-D array (the R factor of a pivoted QR), got None")
    R = check_matrix(R, "R", accept_sparse=False)
    k = check_int(k, "k", low=1, high=R.shape[0])
    if R.shape[1] <= k:  # no R12
        return 0.0, 0.0
    if np.abs(np.diag(R)[:k]).min() == 0:
        return float("inf"), float("inf")
    W, G = _bound_terms(R, k)
    return float(np.abs(W).max()), float(G.max())


def _bound_terms(R, k, check_finite=True):
    """``R11^-1 R12`` and the matrix ``||R22 e_j|| * ||e_i^T R11^-1||`` (both k x (n - k))."""
    R11, R12, R22 = R[:k, :k], R[:k, k:], R[k:, k:]
    W = scipy.linalg.solve_triangular(R11, R12, check_finite=check_finite)
    inv_rows = np.linalg.norm(scipy.linalg.solve_triangular(R11, np.eye(k), check_finite=check_finite), axis=1)
    gamma = np.linalg.norm(R22, axis=0) if R22.size else np.zeros(R12.shape[1])
    return W, np.outer(inv_rows, gamma)
