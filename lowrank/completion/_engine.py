"""Where the per-row work runs: in this process (numba threads) or on Dask row/column blocks.

Both engines run the same numba kernels on the same rows with the same arguments, so the
factors they produce are bit-identical; only where the rows are solved differs.
"""

import numpy as np
from threadpoolctl import threadpool_limits

from lowrank.completion import _kernels


def _solve(indptr, indices, data, Y, X, params, row_offset):
    """Run one half-step's kernel on CSR rows; returns the per-row squared residuals (``X`` updated)."""
    resid2 = np.empty(indptr.shape[0] - 1)
    run = _kernels.run_rows
    # The kernels already run on every core; keep the BLAS they call single-threaded.
    with threadpool_limits(limits=1, user_api="blas"):
        if not params["robust"]:
            run(_kernels.solve_rows_exact, indptr, indptr, indices, data, Y, X, params["alpha"], resid2)
        elif params["use_sketch"]:
            run(_kernels.solve_rows_pcg_sketch, indptr, indptr, indices, data, Y, X, params["alpha"],
                params["n_inner"], params["sketch_rows"], params["seed"], row_offset, resid2)
        else:
            run(_kernels.solve_rows_pcg_gram, indptr, indptr, indices, data, Y, X, params["alpha"],
                params["n_inner"], params["Q"], params["lam"], params["n_total"], resid2)
    return resid2


def csr_matmat(indptr, indices, data, B):
    """``M @ B`` for CSR arrays of ``M``, on every core."""
    out = np.empty((indptr.shape[0] - 1, B.shape[1]))
    B = np.ascontiguousarray(B, dtype=np.float64)
    _kernels.run_rows(_kernels.csr_matmat, indptr, indptr, indices, data, B, out)
    return out


class LocalEngine:
    """Runs every half-step in this process."""

    def __init__(self, sides):
        self.sides = sides  # {"rows": Layout of M, "cols": Layout of M^T}

    def solve(self, side, Y, X, params):
        s = self.sides[side]
        return _solve(s.indptr, s.indices, s.data, Y, X, params, 0)

    def matmat(self, side, B):
        s = self.sides[side]
        return csr_matmat(s.indptr, s.indices, s.data, B)

    def close(self):
        pass


def _block_solve(block, Y, X_block, params):
    indptr, indices, data = block
    X_block = X_block.copy()
    resid2 = _solve(indptr, indices, data, Y, X_block, params, params["row_offset"])
    return X_block, resid2


def _block_matmat(block, B):
    return csr_matmat(*block, B)


class DaskEngine:
    """Row blocks of M and of M^T live on the workers; each half-step sends the other factor
    (broadcast) and the warm start of each block, and gathers the updated block factors."""

    def __init__(self, sides, client, n_blocks=None):
        self.client = client
        n_workers = max(len(client.scheduler_info().get("workers", {})), 1)
        n_blocks = n_blocks or 2 * n_workers
        self.blocks = {}
        for name, s in sides.items():
            bounds = _balanced_bounds(s.indptr, n_blocks)
            futures = []
            for lo, hi in zip(bounds[:-1], bounds[1:]):
                start, stop = s.indptr[lo], s.indptr[hi]
                block = (s.indptr[lo : hi + 1] - start, s.indices[start:stop], s.data[start:stop])
                futures.append(client.scatter(block))
            self.blocks[name] = list(zip(bounds[:-1], bounds[1:], futures))

    def solve(self, side, Y, X, params):
        Y_future = self.client.scatter(Y, broadcast=True)
        futures = []
        for lo, hi, block in self.blocks[side]:
            block_params = dict(params, row_offset=lo)
            futures.append(self.client.submit(_block_solve, block, Y_future, X[lo:hi], block_params, pure=False))
        results = self.client.gather(futures)
        resid2 = np.empty(X.shape[0])
        for (lo, hi, _), (X_block, r2) in zip(self.blocks[side], results):
            X[lo:hi] = X_block
            resid2[lo:hi] = r2
        return resid2

    def matmat(self, side, B):
        B_future = self.client.scatter(np.ascontiguousarray(B, dtype=np.float64), broadcast=True)
        futures = [self.client.submit(_block_matmat, block, B_future, pure=False) for _, _, block in self.blocks[side]]
        return np.vstack(self.client.gather(futures))

    def close(self):
        for blocks in self.blocks.values():
            self.client.cancel([future for _, _, future in blocks])


def _balanced_bounds(indptr, n_blocks):
    """Row boundaries splitting CSR rows into ``n_blocks`` pieces of about equal entry counts."""
    n_rows = indptr.shape[0] - 1
    n_blocks = max(1, min(n_blocks, n_rows))
    targets = np.linspace(0, indptr[-1], n_blocks + 1)[1:-1]
    inner = np.searchsorted(indptr, targets)
    bounds = np.unique(np.concatenate([[0], np.clip(inner, 1, n_rows - 1) if n_rows > 1 else [], [n_rows]]))
    return bounds.astype(np.int64)
