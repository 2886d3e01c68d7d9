"""Where the per-row work runs: in this process (numba threads) or on Dask row/column blocks.

Both engines run the same numba kernels on the same rows with the same arguments, so the
factors they produce are bit-identical; only where the rows are solved differs.
"""

import numpy as np
from threadpoolctl import ThreadpoolController

_CONTROLLER = None


def single_threaded_blas():
    """A context that limits BLAS to one thread (the library scan is done once per process)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")

from lowrank.completion import _kernels


def _effective_data(indptr, indices, data, own, other):
    """The CSR values with fixed offsets removed: ``data - own[row] - other[indices]``."""
    if other is not None:
        data = data - other[indices]
    if own is not None:
        data = data - np.repeat(own, np.diff(indptr))
    return data


def _solve(indptr, indices, data, Y, X, params, row_offset):
    """Run one half-step's kernel on CSR rows; returns the per-row squared residuals (``X`` updated)."""
    resid2 = np.empty(indptr.shape[0] - 1)
    run = _kernels.run_rows
    # The kernels already run on every core; keep the BLAS they call single-threaded.
    with single_threaded_blas():
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

    def solve(self, side, Y, X, params, other=None):
        s = self.sides[side]
        data = _effective_data(s.indptr, s.indices, s.data, None, other)
        return _solve(s.indptr, s.indices, data, Y, X, params, 0)

    def matmat(self, side, B, own=None, other=None):
        s = self.sides[side]
        return csr_matmat(s.indptr, s.indices, _effective_data(s.indptr, s.indices, s.data, own, other), B)

    def close(self):
        pass


def _block(indptr, indices, data):
    # The block's arrays travel inside this task, so the scheduler can rebuild a block lost
    # with its worker from lineage (data scattered to one worker would be gone with it).
    return indptr, indices, data


def _shared(value):
    return value


def _block_solve(block, Y, other, X_block, params):
    indptr, indices, data = block
    X_block = X_block.copy()
    data = _effective_data(indptr, indices, data, None, other)
    resid2 = _solve(indptr, indices, data, Y, X_block, params, params["row_offset"])
    return X_block, resid2


def _block_matmat(block, B, own, other):
    indptr, indices, data = block
    return csr_matmat(indptr, indices, _effective_data(indptr, indices, data, own, other), B)


class DaskEngine:
    """Row blocks of M and of M^T live on the workers; each half-step sends the other factor
    (one shared task every block depends on) and the warm start of each block, and gathers the
    updated block factors.

    Everything a task needs has a task graph: the blocks and the shared factor are tasks whose
    specification holds their data, so Dask recomputes whatever a killed worker held (lineage),
    and a task running on it is rerun elsewhere (the scheduler's ``allowed-failures``). Keys are
    unique to this call (``pure=False``) and futures are released, never cancelled, so calls
    running back to back or at the same time on one client never touch each other's data.
    """

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
                futures.append(client.submit(_block, s.indptr[lo : hi + 1] - start, s.indices[start:stop],
                                             s.data[start:stop], pure=False))
            self.blocks[name] = list(zip(bounds[:-1], bounds[1:], futures))

    def _share(self, value):
        return None if value is None else self.client.submit(_shared, value, pure=False)

    def _gather(self, futures):
        return self.client.gather(futures)

    def solve(self, side, Y, X, params, other=None):
        Y_future, other_future = self._share(Y), self._share(other)
        futures = []
        for lo, hi, block in self.blocks[side]:
            block_params = dict(params, row_offset=lo)
            futures.append(self.client.submit(_block_solve, block, Y_future, other_future, X[lo:hi], block_params,
                                              pure=False))
        results = self._gather(futures)
        resid2 = np.empty(X.shape[0])
        for (lo, hi, _), (X_block, r2) in zip(self.blocks[side], results):
            X[lo:hi] = X_block
            resid2[lo:hi] = r2
        return resid2

    def matmat(self, side, B, own=None, other=None):
        B_future = self._share(np.ascontiguousarray(B, dtype=np.float64))
        other_future = self._share(other)
        futures = [
            self.client.submit(_block_matmat, block, B_future, None if own is None else own[lo:hi], other_future,
                               pure=False)
            for lo, hi, block in self.blocks[side]
        ]
        return np.vstack(self._gather(futures))

    def close(self):
        # Release (not cancel): cancelling would also cancel work of anyone sharing a key.
        for blocks in self.blocks.values():
            for _, _, future in blocks:
                future.release()
        self.blocks = {}


def _balanced_bounds(indptr, n_blocks):
    """Row boundaries splitting CSR rows into ``n_blocks`` pieces of about equal entry counts."""
    n_rows = indptr.shape[0] - 1
    n_blocks = max(1, min(n_blocks, n_rows))
    targets = np.linspace(0, indptr[-1], n_blocks + 1)[1:-1]
    inner = np.searchsorted(indptr, targets)
    bounds = np.unique(np.concatenate([[0], np.clip(inner, 1, n_rows - 1) if n_rows > 1 else [], [n_rows]]))
    return bounds.astype(np.int64)
