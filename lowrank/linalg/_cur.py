"""Column selection, interpolative decompositions and CUR."""

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from lowrank._utils.rng import as_generator
from lowrank._utils.validation import check_choice, check_int, check_matrix, check_rank
from lowrank.linalg._randomized_svd import _randomized_svd_numpy
from lowrank.linalg._rrqr import _rrqr

_SELECTION = ("rrqr", "leverage", "random")


def select_columns(A, k, *, method="rrqr", rng=None):
    """Choose ``k`` informative columns of ``A``.

    Parameters
    ----------
    A : array_like or scipy sparse, shape (m, n)
    k : int
        Number of columns, ``0 < k <= n``.
    method : {"rrqr", "leverage", "random"}, default="rrqr"
        "rrqr": the pivots of a column-pivoted QR (of a Gaussian sketch ``G @ A`` when ``m`` is
        much larger than ``k``, which picks the same kind of columns at a fraction of the cost);
        "leverage": sampled without replacement with probability proportional to the rank-k
        leverage scores; "random": uniform without replacement.
    rng : None, int or numpy.random.Generator, default=None

    Returns
    -------
    ndarray of int, shape (k,)

    Examples
    --------
    >>> import numpy as np
    >>> A = np.zeros((5, 4)); A[:, 2] = 1.0; A[0, 0] = 0.1
    >>> int(select_columns(A, 1)[0])
    2
    """
    A = check_matrix(A, "A")
    k = check_int(k, "k", low=1, high=A.shape[1])
    check_choice(method, "method", _SELECTION)
    return _select_columns(A, k, method, as_generator(rng))


def _select_columns(A, k, method, gen):
    m, n = A.shape
    if method == "random":
        return np.sort(gen.choice(n, size=k, replace=False))
    if method == "leverage":
        _, _, Vh = _randomized_svd_numpy(A, min(k, m, n), 10, 4, "LU", gen)
        scores = (Vh**2).sum(axis=0)
        p = scores / scores.sum()
        nonzero = np.count_nonzero(p)
        if nonzero < k:  # fewer informative columns than asked: fill uniformly among the rest
            p = 0.9 * p + 0.1 / n
        return np.sort(gen.choice(n, size=k, replace=False, p=p))
    sketch_rows = min(m, k + 10)
    if m > 2 * sketch_rows or sp.issparse(A):
        Y = (A.T @ gen.standard_normal((m, sketch_rows))).T if sp.issparse(A) else gen.standard_normal((sketch_rows, m)) @ A
    else:
        Y = A
    _, _, perm = scipy.linalg.qr(np.asarray(Y), mode="economic", pivoting=True, check_finite=False)
    return perm[:k]


def interpolative(A, rank, *, method="rrqr", rng=None):
    """Column interpolative decomposition: ``A ≈ A[:, idx] @ proj``.

    Parameters
    ----------
    A : array_like or scipy sparse, shape (m, n)
    rank : int
        Number of skeleton columns, ``0 < rank <= min(m, n)``.
    method : {"rrqr", "randomized"}, default="rrqr"
        "rrqr": strong rank-revealing QR of ``A`` itself (``|proj| <= 2`` entrywise);
        "randomized": the same on a Gaussian sketch with ``rank + 10`` rows (for large or sparse A).
    rng : None, int or numpy.random.Generator, default=None

    Returns
    -------
    idx : (rank,) int array of skeleton columns
    proj : (rank, n) interpolation matrix; ``proj[:, idx]`` is the identity.

    Unlike ``scipy.linalg.interpolative``, the return arity never depends on the arguments.

    References
    ----------
    H. Cheng, Z. Gimbutas, P.-G. Martinsson, V. Rokhlin, "On the compression of low rank matrices",
    SIAM J. Sci. Comput. 26(4), 2005.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((30, 4)) @ rng.standard_normal((4, 20))
    >>> idx, proj = interpolative(A, 4)
    >>> bool(np.allclose(A[:, idx] @ proj, A))
    True
    """
    A = check_matrix(A, "A")
    rank = check_rank(rank, A.shape)
    check_choice(method, "method", ("rrqr", "randomized"))
    gen = as_generator(rng)
    if method == "randomized" or sp.issparse(A):
        size = min(A.shape[0], rank + 10)
        Y = np.asarray((A.T @ gen.standard_normal((A.shape[0], size))).T)
    else:
        Y = A
    _, R, perm = _rrqr(np.asarray(Y, dtype=np.float64), rank, None, True, 2.0)
    T = scipy.linalg.lstsq(R[:, :rank], R[:, rank:], check_finite=False)[0]
    proj = np.zeros((rank, A.shape[1]))
    proj[:, perm[:rank]] = np.eye(rank)
    proj[:, perm[rank:]] = T
    return perm[:rank].copy(), proj


def cur(A, rank, *, method="rrqr", n_rows=None, n_cols=None, core="projection", rng=None):
    """CUR decomposition ``A ≈ C @ U @ R`` with actual columns ``C`` and rows ``R`` of ``A``.

    Parameters
    ----------
    A : array_like or scipy sparse, shape (m, n)
    rank : int
        Target rank, ``0 < rank <= min(m, n)``; the default number of rows and columns.
    method : {"rrqr", "leverage", "random"}, default="rrqr"
        Column/row selection, see :func:`select_columns`.
    n_rows, n_cols : int, optional
        Numbers of rows and columns to keep (default ``rank``; oversampling helps "leverage"/"random").
    core : {"projection", "intersection"}, default="projection"
        "projection": ``U = pinv(C) @ A @ pinv(R)``, the best core for the chosen C and R (one pass
        over A); "intersection": ``U = pinv(A[row_idx][:, col_idx])``, which never touches the rest
        of A (as in skeleton/ANNCUR approximations).
    rng : None, int or numpy.random.Generator, default=None

    Returns
    -------
    C : (m, n_cols) ndarray, ``A[:, col_idx]`` (dense)
    U : (n_cols, n_rows) ndarray
    R : (n_rows, n) ndarray, ``A[row_idx, :]`` (dense)
    row_idx : (n_rows,) int array
    col_idx : (n_cols,) int array

    References
    ----------
    M. W. Mahoney, P. Drineas, "CUR matrix decompositions for improved data analysis", PNAS 106(3), 2009.
    S. Voronin, P.-G. Martinsson, "Efficient algorithms for CUR and interpolative matrix
    decompositions", Adv. Comput. Math. 43, 2017, arXiv:1412.8447.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((40, 3)) @ rng.standard_normal((3, 30))
    >>> C, U, R, rows, cols = cur(A, 3)
    >>> bool(np.allclose(C @ U @ R, A))
    True
    """
    A = check_matrix(A, "A")
    rank = check_rank(rank, A.shape)
    check_choice(method, "method", _SELECTION)
    check_choice(core, "core", ("projection", "intersection"))
    n_rows = rank if n_rows is None else check_int(n_rows, "n_rows", low=1, high=A.shape[0])
    n_cols = rank if n_cols is None else check_int(n_cols, "n_cols", low=1, high=A.shape[1])
    gen = as_generator(rng)
    col_idx = _select_columns(A, n_cols, method, gen)
    row_idx = _select_columns(A.T.tocsr() if sp.issparse(A) else A.T, n_rows, method, gen)
    C = _dense(A[:, col_idx])
    R = _dense(A[row_idx, :])
    if core == "intersection":
        U = scipy.linalg.pinv(C[row_idx, :])
    else:
        CtA = np.asarray((A.T @ scipy.linalg.pinv(C).T).T)  # pinv(C) @ A without densifying sparse A
        U = CtA @ scipy.linalg.pinv(R)
    return C, U, R, np.asarray(row_idx), np.asarray(col_idx)


def _dense(X):
    return X.toarray() if sp.issparse(X) else np.asarray(X)
