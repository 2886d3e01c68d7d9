"""numba kernels of FastRP: one propagation step ``U_out = M @ U_prev`` over a block of rows, fused
with the per-row work that follows it (norm, weighted accumulation, optional normalization).

Every output row depends only on its own row of ``M`` and on ``U_prev``, with a fixed order of
operations, so a row block computed anywhere (a thread, a Dask worker) equals the same rows of a
whole-matrix run bit for bit. :func:`finish_rows_numpy` and the scipy products in
:mod:`lowrank.graphs.fastrp` are the plain-numpy reference the tests compare against.
"""

import numba
import numpy as np


@numba.njit(inline="always")
def _finish_row(out, res, weight, normalize, propagate_normalized):
    sq = 0.0
    for k in range(out.shape[0]):
        sq += np.float64(out[k]) * np.float64(out[k])
    norm = np.sqrt(sq)
    if normalize:
        scale = weight / norm if norm > 0.0 else 0.0
    else:
        scale = weight
    if scale != 0.0:
        for k in range(out.shape[0]):
            res[k] += scale * out[k]
    if propagate_normalized and norm > 0.0:
        inv = 1.0 / norm
        for k in range(out.shape[0]):
            out[k] *= inv


@numba.njit(parallel=True)
def propagate_sparse(indptr, indices, data, r_indptr, r_indices, r_data, out, res, weight, normalize, propagate_normalized):
    """First step: ``out = M @ R`` with ``R`` sparse (CSR arrays ``r_*``), then finish each row."""
    n_rows, d = out.shape
    for i in numba.prange(n_rows):
        row = out[i]
        for k in range(d):
            row[k] = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            w = data[p]
            for q in range(r_indptr[j], r_indptr[j + 1]):
                row[r_indices[q]] += w * r_data[q]
        _finish_row(row, res[i], weight, normalize, propagate_normalized)


@numba.njit(parallel=True)
def propagate_dense(indptr, indices, data, prev, out, res, weight, normalize, propagate_normalized):
    """Later steps: ``out = M @ prev`` with ``prev`` dense, then finish each row."""
    n_rows, d = out.shape
    for i in numba.prange(n_rows):
        row = out[i]
        for k in range(d):
            row[k] = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            src = prev[indices[p]]
            w = data[p]
            for k in range(d):
                row[k] += w * src[k]
        _finish_row(row, res[i], weight, normalize, propagate_normalized)


def finish_rows_numpy(out, res, weight, normalize, propagate_normalized):
    """Plain-numpy twin of the row finishing step (used by the reference path)."""
    norm = np.sqrt(np.einsum("ij,ij->i", out, out, dtype=np.float64))
    if normalize:
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(norm > 0, weight / norm, 0.0)
    else:
        scale = np.full(out.shape[0], weight)
    if weight != 0.0:
        res += scale.astype(res.dtype)[:, None] * out
    if propagate_normalized:
        inv = np.where(norm > 0, 1.0 / np.where(norm > 0, norm, 1.0), 1.0)
        out *= inv.astype(out.dtype)[:, None]
