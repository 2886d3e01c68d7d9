"""Randomized truncated SVD (Halko, Martinsson & Tropp 2011) for numpy, scipy sparse,
LinearOperator and torch (CPU and CUDA) inputs."""

import numbers

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, aslinearoperator

from lowrank._utils.backend import is_torch
from lowrank._utils.rng import as_generator, as_seed
from lowrank._utils.validation import check_choice, check_int, check_rank

_NORMALIZERS = ("auto", "QR", "LU", "none")


def randomized_svd(A, rank, *, n_oversamples=10, n_iter="auto", power_iteration_normalizer="auto", rng=None):
    """Truncated SVD by a randomized range finder with power iterations.

    Parameters
    ----------
    A : ndarray, scipy sparse array/matrix, LinearOperator or torch.Tensor, shape (m, n)
        Real matrix. torch tensors (CPU or CUDA) are factored with torch and returned as torch.
    rank : int
        Number of singular triplets, ``0 < rank <= min(m, n)``.
    n_oversamples : int, default=10
        Extra sketch columns; the sketch has ``min(rank + n_oversamples, min(m, n))`` columns.
    n_iter : int or "auto", default="auto"
        Power iterations; "auto" is 7 when ``rank < 0.1 * min(m, n)``, else 4 (as scikit-learn).
    power_iteration_normalizer : {"auto", "QR", "LU", "none"}, default="auto"
        Re-orthonormalization between power iterations. "auto": "LU" for numpy/scipy input
        (cheaper, enough for stability), "QR" for torch.
    rng : None, int or numpy.random.Generator, default=None
        Seed of the Gaussian test matrix.

    Returns
    -------
    U : (m, rank) array with orthonormal columns
    s : (rank,) singular values, descending
    Vh : (rank, n) array with orthonormal rows

    Signs are deterministic: the largest-magnitude entry of every column of ``U`` is positive.
    float32 input gives float32 output.

    Raises
    ------
    ValueError
        ``rank`` out of range, non-2-D or empty input, NaN/inf entries.
    TypeError
        Complex or non-numeric input.

    References
    ----------
    N. Halko, P.-G. Martinsson, J. A. Tropp, "Finding structure with randomness: probabilistic
    algorithms for constructing approximate matrix decompositions", SIAM Review 53(2), 2011,
    arXiv:0909.4061.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.linalg import randomized_svd
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((100, 5)) @ rng.standard_normal((5, 80))
    >>> U, s, Vh = randomized_svd(A, 5, rng=0)
    >>> bool(np.allclose(U * s @ Vh, A))
    True
    """
    if is_torch(A):
        A, rank, n_oversamples, n_iter, normalizer = _iv_torch(A, rank, n_oversamples, n_iter, power_iteration_normalizer)
        return _randomized_svd_torch(A, rank, n_oversamples, n_iter, normalizer, as_seed(rng))
    A, rank, n_oversamples, n_iter, normalizer = _iv(A, rank, n_oversamples, n_iter, power_iteration_normalizer)
    return _randomized_svd_numpy(A, rank, n_oversamples, n_iter, normalizer, as_generator(rng))


def _check_options(shape, rank, n_oversamples, n_iter, normalizer):
    rank = check_rank(rank, shape)
    n_oversamples = check_int(n_oversamples, "n_oversamples", low=0)
    if n_iter == "auto":
        n_iter = 7 if rank < 0.1 * min(shape) else 4
    elif isinstance(n_iter, (numbers.Integral, np.integer)) and not isinstance(n_iter, bool):
        n_iter = check_int(n_iter, "n_iter", low=0)
    else:
        raise ValueError(f"`n_iter` must be a non-negative integer or 'auto', got {n_iter!r}")
    check_choice(normalizer, "power_iteration_normalizer", _NORMALIZERS)
    return rank, n_oversamples, n_iter


def _iv(A, rank, n_oversamples, n_iter, normalizer):
    if isinstance(A, LinearOperator):
        if len(A.shape) != 2 or min(A.shape) == 0:
            raise ValueError(f"`A` must be a non-empty 2-D operator, got shape {A.shape}")
        if np.dtype(A.dtype).kind == "c":
            raise TypeError("`A` must be real; complex input is not supported")
    else:
        from lowrank._utils.validation import check_matrix

        A = check_matrix(A, "A")
    rank, n_oversamples, n_iter = _check_options(A.shape, rank, n_oversamples, n_iter, normalizer)
    if normalizer == "auto":
        normalizer = "LU"
    return A, rank, n_oversamples, n_iter, normalizer


def _randomized_svd_numpy(A, rank, n_oversamples, n_iter, normalizer, gen):
    """Body of :func:`randomized_svd` for numpy/scipy input, without input validation."""
    dtype = np.float32 if np.dtype(A.dtype) == np.float32 else np.float64
    transpose = A.shape[0] < A.shape[1]  # sketch the smaller side: fewer columns to orthonormalize
    if isinstance(A, LinearOperator) or sp.issparse(A):
        op = aslinearoperator(A)
        if transpose:
            op = op.T
        matmat, rmatmat = op.matmat, op.rmatmat
        m, n = op.shape
    else:
        M = A.T if transpose else A
        matmat, rmatmat = M.__matmul__, (lambda X: M.T @ X)
        m, n = M.shape
    size = min(rank + n_oversamples, m, n)
    Q = np.asarray(matmat(gen.standard_normal((n, size)).astype(dtype, copy=False)))
    for _ in range(n_iter):
        Q = _normalize(Q, normalizer)
        Q = _normalize(np.asarray(rmatmat(Q)), normalizer)
        Q = np.asarray(matmat(Q))
    Q, _ = scipy.linalg.qr(Q, mode="economic", check_finite=False)
    B = np.asarray(rmatmat(Q)).T  # (size, n) = Q^T M
    Ub, s, Vh = scipy.linalg.svd(B, full_matrices=False, check_finite=False, lapack_driver="gesdd")
    U = Q @ Ub
    U, s, Vh = U[:, :rank], s[:rank], Vh[:rank]
    if transpose:
        U, Vh = Vh.T, U.T
    U, Vh = svd_flip(U, Vh)
    return U.astype(dtype, copy=False), s.astype(dtype, copy=False), Vh.astype(dtype, copy=False)


def _normalize(Q, how):
    if how == "LU":
        return scipy.linalg.lu(Q, permute_l=True, check_finite=False)[0]
    if how == "QR":
        return scipy.linalg.qr(Q, mode="economic", check_finite=False)[0]
    return Q


def svd_flip(U, Vh):
    """Make signs deterministic: the largest-magnitude entry of each column of ``U`` becomes positive.

    Works for numpy arrays and torch tensors; returns new ``(U, Vh)``.

    Parameters
    ----------
    U : (m, k) array or torch.Tensor
        Left singular vectors (columns).
    Vh : (k, n) array or torch.Tensor
        Right singular vectors (rows); row ``i`` is flipped with column ``i`` of ``U``.

    Returns
    -------
    U, Vh : arrays of the same shapes, flipped together so that ``U @ diag(s) @ Vh`` is unchanged.

    Raises
    ------
    ValueError
        ``U`` or ``Vh`` not 2-D, or ``Vh.shape[0] != U.shape[1]``.

    Examples
    --------
    >>> import numpy as np
    >>> U, Vh = svd_flip(np.array([[-2.0], [1.0]]), np.array([[1.0, -1.0]]))
    >>> U.ravel().tolist(), Vh.ravel().tolist()
    ([2.0, -1.0], [-1.0, 1.0])
    """
    if getattr(U, "ndim", None) != 2 or getattr(Vh, "ndim", None) != 2:
        raise ValueError(
            "`U` and `Vh` must be 2-D (columns and rows of singular vectors), got ndim "
            f"{getattr(U, 'ndim', None)} and {getattr(Vh, 'ndim', None)}"
        )
    if Vh.shape[0] != U.shape[1]:
        raise ValueError(f"`Vh` must have one row per column of `U` ({U.shape[1]}), got {Vh.shape[0]}")
    if U.shape[0] == 0 or U.shape[1] == 0:
        raise ValueError(f"`U` must be non-empty (a sign comes from its largest entry), got shape {tuple(U.shape)}")
    if is_torch(U):
        if U.is_complex() or not U.is_floating_point():
            raise TypeError(f"`U` and `Vh` must be real floating-point, got {U.dtype}")
        if not (_torch_all_finite(U) and _torch_all_finite(Vh)):
            raise ValueError("`U` and `Vh` must be finite (no NaN or infinity)")
        import torch

        idx = torch.argmax(torch.abs(U), dim=0)
        signs = torch.sign(U[idx, torch.arange(U.shape[1], device=U.device)])
        signs = torch.where(signs == 0, torch.ones_like(signs), signs)
        return U * signs, Vh * signs[:, None]
    for name, M in (("U", U), ("Vh", Vh)):
        if not isinstance(M, np.ndarray) or M.dtype.kind != "f":
            raise TypeError(f"`{name}` must be a real floating-point array, got "
                            f"{getattr(M, 'dtype', type(M).__name__)}")
        if not np.isfinite(M).all():
            raise ValueError(f"`{name}` must be finite (no NaN or infinity)")
    idx = np.argmax(np.abs(U), axis=0)
    signs = np.sign(U[idx, np.arange(U.shape[1])])
    signs[signs == 0] = 1
    return U * signs, Vh * signs[:, None]


def _torch_all_finite(M):
    import torch

    return bool(torch.isfinite(M).all())


def _iv_torch(A, rank, n_oversamples, n_iter, normalizer):
    import torch

    if A.ndim != 2:
        raise ValueError(f"`A` must be 2-dimensional, got {A.ndim} dimension(s)")
    if min(A.shape) == 0:
        raise ValueError(f"`A` must be non-empty, got shape {tuple(A.shape)}")
    if A.is_complex():
        raise TypeError("`A` must be real; complex input is not supported")
    if not A.is_floating_point():
        A = A.to(torch.float64)
    if A.layout != torch.strided:
        A = A.to_dense()
    if not bool(torch.isfinite(A).all()):
        raise ValueError("`A` must not contain NaN or infinity")
    rank, n_oversamples, n_iter = _check_options(tuple(A.shape), rank, n_oversamples, n_iter, normalizer)
    if normalizer == "auto":
        normalizer = "QR"
    return A, rank, n_oversamples, n_iter, normalizer


def _randomized_svd_torch(A, rank, n_oversamples, n_iter, normalizer, seed):
    """Body of :func:`randomized_svd` for torch tensors: the same algorithm, on A's device."""
    import torch

    transpose = A.shape[0] < A.shape[1]
    M = A.T if transpose else A
    m, n = M.shape
    size = min(rank + n_oversamples, m, n)
    gen = torch.Generator(device=A.device)
    gen.manual_seed(seed & 0x7FFFFFFFFFFFFFFF)
    Q = M @ torch.randn((n, size), generator=gen, device=A.device, dtype=A.dtype)

    def normalize(X):
        if normalizer == "QR":
            return torch.linalg.qr(X)[0]
        if normalizer == "LU":
            P, L, _ = torch.linalg.lu(X)
            return P @ L
        return X

    for _ in range(n_iter):
        Q = normalize(Q)
        Q = normalize(M.T @ Q)
        Q = M @ Q
    Q = torch.linalg.qr(Q)[0]
    B = Q.T @ M
    Ub, s, Vh = torch.linalg.svd(B, full_matrices=False)
    U = (Q @ Ub)[:, :rank]
    s, Vh = s[:rank], Vh[:rank]
    if transpose:
        U, Vh = Vh.T, U.T
    U, Vh = svd_flip(U, Vh)
    return U.contiguous(), s, Vh.contiguous()
