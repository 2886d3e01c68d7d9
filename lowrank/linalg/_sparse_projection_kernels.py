"""numba kernel for :func:`lowrank.linalg.sparse_random_projection` (same bits as the numpy path)."""

import numpy as np

from lowrank._utils._counter_rng_numba import counter_uniform
from lowrank._utils.jit import njit


@njit
def projection_rows_csr(rows, n_components, density, seed, value):
    """CSR arrays of the projection rows ``rows``: two passes (count, then fill), no dense block."""
    n = rows.size
    useed = np.uint64(seed)
    indptr = np.zeros(n + 1, dtype=np.int64)
    for r in range(n):
        count = 0
        for j in range(n_components):
            if counter_uniform(useed, rows[r], j) < density:
                count += 1
        indptr[r + 1] = indptr[r] + count
    indices = np.empty(indptr[n], dtype=np.int32)
    data = np.empty(indptr[n], dtype=np.float64)
    half = density / 2
    for r in range(n):
        p = indptr[r]
        for j in range(n_components):
            u = counter_uniform(useed, rows[r], j)
            if u < density:
                indices[p] = j
                data[p] = -value if u < half else value
                p += 1
    return indptr, indices, data
