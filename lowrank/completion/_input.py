"""Turning the user's observed entries (sparse, or dense with NaN, plus an optional mask) into COO triplets."""

import numpy as np
import scipy.sparse as sp

from lowrank._utils.backend import is_torch
from lowrank.completion._kernels import transpose_csr


def observed_entries(observed, mask=None, *, name="observed", allow_empty=False):
    """Return ``(rows, cols, values, shape)`` of the observed entries, sorted by (row, col).

    * sparse ``observed``: its stored entries (explicit zeros included) are the observed ones;
      duplicates are summed, as scipy does;
    * dense ``observed``: entries that are not NaN are observed;
    * ``mask`` (same shape, boolean, dense or sparse): observed entries are exactly where it is
      true; the values are read from ``observed`` there (implicit zeros of a sparse ``observed``
      count as observed zeros).

    Raises ValueError on non-2-D or empty input, infinite values, NaN at a masked position, a
    mask of another shape, or no observed entry at all (unless ``allow_empty``); TypeError on
    complex, non-numeric or torch input.
    """
    if is_torch(observed):
        raise TypeError(f"`{name}` must be a numpy array or scipy sparse matrix; convert torch tensors with .numpy()")
    if sp.issparse(observed):
        if observed.ndim != 2:
            raise ValueError(f"`{name}` must be 2-dimensional, got {observed.ndim} dimension(s)")
        shape = observed.shape
        if observed.format == "csr" and observed.has_canonical_format:  # fast path: no sort needed
            rows = np.repeat(np.arange(shape[0], dtype=np.int64), np.diff(observed.indptr))
            cols, values = observed.indices, observed.data
        else:
            coo = sp.coo_array(observed)
            coo.sum_duplicates()  # also sorts by (row, col)
            rows, cols, values = coo.row, coo.col, coo.data
        _check_values(values, name)
    else:
        dense = np.asarray(observed)
        if dense.ndim != 2:
            raise ValueError(f"`{name}` must be 2-dimensional, got {dense.ndim} dimension(s)")
        _check_values(dense, name, allow_nan=True)
        shape = dense.shape
        if mask is None:
            rows, cols = np.nonzero(~np.isnan(dense))
            values = dense[rows, cols]
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"`{name}` must be non-empty, got shape {shape}")
    if mask is not None:
        rows, cols = _mask_positions(mask, shape)
        if sp.issparse(observed):
            values = np.asarray(sp.csr_array(observed)[rows, cols]).ravel()
        else:
            values = dense[rows, cols]
            if np.isnan(values).any():
                raise ValueError(f"`{name}` must not contain NaN at positions where `mask` is true")
    if rows.shape[0] == 0 and not allow_empty:
        raise ValueError(f"`{name}` has no observed entry")
    return (
        np.ascontiguousarray(rows, dtype=np.int64),
        np.ascontiguousarray(cols, dtype=np.int64),
        np.ascontiguousarray(values, dtype=np.float64),
        (int(shape[0]), int(shape[1])),
    )


def _check_values(values, name, allow_nan=False):
    values = np.asarray(values)
    if values.dtype.kind == "c":
        raise TypeError(f"`{name}` must be real; complex input is not supported")
    if values.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must hold real numbers, got dtype {values.dtype}")
    if values.dtype.kind == "f":
        if allow_nan:
            if np.isinf(values).any():
                raise ValueError(f"`{name}` must not contain infinity (use NaN for missing entries)")
        elif not np.isfinite(values).all():
            raise ValueError(f"`{name}` must not contain NaN or infinity among its observed entries")


def _mask_positions(mask, shape):
    if sp.issparse(mask):
        if mask.shape != shape:
            raise ValueError(f"`mask` must have the shape of `observed` {shape}, got {mask.shape}")
        coo = sp.coo_array(mask)
        coo.sum_duplicates()
        keep = coo.data != 0
        return coo.row[keep], coo.col[keep]
    mask = np.asarray(mask)
    if mask.shape != shape:
        raise ValueError(f"`mask` must have the shape of `observed` {shape}, got {mask.shape}")
    if mask.dtype != bool:
        if mask.dtype.kind not in "biu" or not np.isin(mask, (0, 1)).all():
            raise TypeError("`mask` must be boolean (or 0/1 integers)")
        mask = mask.astype(bool)
    return np.nonzero(mask)


def check_coverage(rows, cols, shape, name="observed"):
    """Raise unless every row and every column has at least one observed entry."""
    for axis, idx, size in (("row", rows, shape[0]), ("column", cols, shape[1])):
        counts = np.bincount(idx, minlength=size)
        empty = np.flatnonzero(counts == 0)
        if empty.size:
            listed = ", ".join(str(v) for v in empty[:5]) + (", ..." if empty.size > 5 else "")
            raise ValueError(
                f"`{name}` has no observed entry in {empty.size} {axis}(s) ({listed}); every row and column "
                "needs at least one observed entry (drop the empty ones first)"
            )


class Layout:
    """The observed entries in one orientation: CSR arrays of M (rows) or of M^T (columns).

    ``perm`` maps this layout's entry order to the row-major order of the COO triplets
    (None for the row layout, which is in that order).
    """

    def __init__(self, indptr, indices, data, perm, n_rows, n_cols):
        self.indptr = indptr
        self.indices = indices
        self.data = data
        self.perm = perm
        self.n_rows = n_rows
        self.n_cols = n_cols

    @classmethod
    def build(cls, rows, cols, values, shape):
        """Layouts of M and M^T from entries in row-major order (``rows`` sorted)."""
        m, n = shape
        nnz = rows.shape[0]
        index_dtype = np.int32 if max(m, n, nnz) < 2**31 - 1 else np.int64
        row_ptr = np.zeros(m + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=m), out=row_ptr[1:])
        row_indices = cols.astype(index_dtype)
        data = np.ascontiguousarray(values, dtype=np.float64)
        row_layout = cls(row_ptr, row_indices, data, None, m, n)
        col_ptr, col_indices, col_data, order = transpose_csr(row_ptr, row_indices, data, n)
        col_layout = cls(col_ptr, col_indices, col_data, order, n, m)
        return row_layout, col_layout
