"""Very sparse random projections (Li, Hastie & Church 2006), reproducible row by row."""

import numpy as np
import scipy.sparse as sp

from lowrank._utils.counter_rng import counter_uniform
from lowrank._utils.rng import as_seed
from lowrank._utils.validation import check_float, check_int

# Rows are generated in blocks of about this many entries to bound temporary memory.
_BLOCK_ENTRIES = 1 << 22


def sparse_random_projection(n_features, n_components, *, density="auto", rng=None, rows=None, dtype=np.float64):
    """A very sparse random projection matrix, reproducible per row.

    Entry ``(i, j)`` is ``+v`` or ``-v`` with probability ``density / 2`` each and 0 otherwise, with
    ``v = 1 / sqrt(density * n_components)``, so ``E[P P^T] = I``. It depends only on
    ``(seed, i, j)`` through a counter-based generator: any subset of rows (``rows=``), computed on
    any machine, equals the same rows of the full matrix bit for bit.

    Parameters
    ----------
    n_features : int
        Number of rows (input dimension).
    n_components : int
        Number of columns (output dimension).
    density : "auto" or float in (0, 1], default="auto"
        Fraction of non-zeros; "auto" is ``1 / sqrt(n_features)`` (Li et al.'s very sparse choice).
        An integer ``s >= 1`` is read as Li's sparsity parameter, density ``1 / s``.
    rng : None, int or numpy.random.Generator, default=None
        An int is the counter seed itself; pass the same int to reproduce rows elsewhere.
    rows : array_like of int, optional
        Generate only these rows (in this order). Default: all ``n_features`` rows.
    dtype : numpy floating dtype, default=float64
        float16, float32 or float64 (the entries ``±v`` are not integers).

    Returns
    -------
    scipy.sparse.csr_matrix, shape (len(rows) or n_features, n_components)

    Raises
    ------
    ValueError
        Sizes below 1, ``density`` out of range, ``rows`` out of range, a non-floating ``dtype``.
    TypeError
        ``dtype`` that numpy does not understand.

    References
    ----------
    P. Li, T. J. Hastie, K. W. Church, "Very sparse random projections", KDD 2006.

    Examples
    --------
    >>> P = sparse_random_projection(1000, 64, rng=7)
    >>> Q = sparse_random_projection(1000, 64, rng=7, rows=[5, 900])
    >>> bool((P[[5, 900]] != Q).nnz == 0)
    True
    """
    n_features = check_int(n_features, "n_features", low=1)
    n_components = check_int(n_components, "n_components", low=1)
    density = _check_density(density, n_features)
    if rows is None:
        rows = np.arange(n_features, dtype=np.int64)
    else:
        rows = np.asarray(rows)
        if rows.ndim != 1 or rows.dtype.kind not in "iu":
            raise ValueError("`rows` must be a 1-D array of integer row indices")
        if rows.size and (rows.min() < 0 or rows.max() >= n_features):
            raise ValueError(f"`rows` must lie in [0, n_features) = [0, {n_features})")
        rows = rows.astype(np.int64)
    return _projection_rows(rows, n_components, density, as_seed(rng), _check_dtype(dtype))


def _check_dtype(dtype):
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"`dtype` must be a numpy floating dtype, got {dtype!r}") from None
    if dtype.kind != "f":
        # Casting +-1/sqrt(density * n_components) to an integer type would give an all-zero matrix.
        raise ValueError(f"`dtype` must be a real floating dtype (float16, float32, float64), got {dtype}")
    return dtype


def _check_density(density, n_features):
    if isinstance(density, str):
        if density != "auto":
            raise ValueError(f"`density` must be 'auto', a float in (0, 1] or an int s >= 1, got {density!r}")
        return 1.0 / np.sqrt(n_features)
    if isinstance(density, (int, np.integer)) and not isinstance(density, bool) and density >= 1:
        return 1.0 / int(density)
    return check_float(density, "density", low=0.0, high=1.0, low_inclusive=False)


def _projection_rows(rows, n_components, density, seed, dtype):
    """Body of :func:`sparse_random_projection` without input validation (numba kernel)."""
    from lowrank.linalg._sparse_projection_kernels import projection_rows_csr

    value = 1.0 / np.sqrt(density * n_components)
    indptr, indices, data = projection_rows_csr(rows, n_components, density, seed, value)
    return sp.csr_matrix((data.astype(dtype, copy=False), indices, indptr), shape=(rows.size, n_components))


def _projection_rows_numpy(rows, n_components, density, seed, dtype):
    """Plain-numpy twin of the numba kernel (the tests' cross-check)."""
    value = 1.0 / np.sqrt(density * n_components)
    cols = np.arange(n_components, dtype=np.uint64)
    block = max(1, _BLOCK_ENTRIES // n_components)
    indptr = [np.zeros(1, dtype=np.int64)]
    indices, data = [], []
    offset = 0
    for start in range(0, rows.size, block):
        r = rows[start : start + block]
        u = counter_uniform(seed, r[:, None].astype(np.uint64), cols[None, :])
        keep = u < density
        # The sign comes from the same uniform: below density/2 is negative, above is positive,
        # so the draw for entry (i, j) never depends on anything but (seed, i, j).
        signs = np.where(u < density / 2, -value, value)
        counts = keep.sum(axis=1)
        indptr.append(offset + np.cumsum(counts))
        offset += int(counts.sum())
        indices.append(np.nonzero(keep)[1].astype(np.int32))
        data.append(signs[keep].astype(dtype))
    indptr = np.concatenate(indptr)
    indices = np.concatenate(indices) if indices else np.zeros(0, np.int32)
    data = np.concatenate(data) if data else np.zeros(0, dtype)
    return sp.csr_matrix((data, indices, indptr), shape=(rows.size, n_components))
