"""SoftImpute (Mazumder, Hastie & Tibshirani 2010) with a sparse-plus-low-rank SVD step.

Each step takes the rank-``rank`` SVD of ``P_Omega(M) + P_Omega^perp(Z) = P_Omega(M - Z) + Z``:
a sparse matrix of residuals on the observed entries plus the current low-rank estimate
``Z = U diag(s) V^T``, applied as a LinearOperator, so memory stays ``O(|Omega| + (m + n) k)``.
"""

import time

import numpy as np
from scipy.sparse.linalg import LinearOperator

from lowrank._utils.progress import progress
from lowrank.completion import _kernels
from lowrank.completion._engine import csr_matmat
from lowrank.linalg import randomized_svd


def _matmat(side, data, B):
    return csr_matmat(side.indptr, side.indices, data, B)


def _operator(sides, resid_rows, resid_cols, U, s, V):
    rows, cols = sides["rows"], sides["cols"]
    Us = U * s

    def matmat(B):
        return _matmat(rows, resid_rows, B) + Us @ (V.T @ B)

    def rmatmat(B):
        return _matmat(cols, resid_cols, B) + V @ (Us.T @ B)

    return LinearOperator(
        (rows.n_rows, cols.n_rows),
        matvec=lambda x: matmat(np.reshape(x, (-1, 1)))[:, 0],
        rmatvec=lambda x: rmatmat(np.reshape(x, (-1, 1)))[:, 0],
        matmat=matmat,
        rmatmat=rmatmat,
        dtype=np.float64,
    )


def _residuals(sides, U, s, V):
    rows = sides["rows"]
    out = np.empty(rows.data.shape[0])
    _kernels.run_rows(_kernels.csr_residual, rows.indptr, rows.indptr, rows.indices, rows.data,
                      np.ascontiguousarray(U * s), np.ascontiguousarray(V), out)
    return out


def _frobenius2(U, s, V):
    """``||U diag(s) V^T||_F^2`` from the small core of thin QRs (no cancellation)."""
    core = np.linalg.qr(U * s, mode="r") @ np.linalg.qr(V, mode="r").T
    return float(np.sum(core * core))


def top_singular_value(sides, n_iter, gen):
    """Largest singular value of the observed matrix ``P_Omega(M)``."""
    rows, cols = sides["rows"], sides["cols"]
    zero = np.zeros(1)
    op = _operator(sides, rows.data, cols.data, np.zeros((rows.n_rows, 1)), zero, np.zeros((cols.n_rows, 1)))
    return float(randomized_svd(op, 1, n_iter=n_iter, rng=gen)[1][0])


def soft_impute(sides, opts, gen, start, warm=None):
    """Body of ``complete_matrix(method="softimpute")``; returns ``(U, V, history, n_iter, converged)``.

    ``warm``: balanced factors ``(U, V)`` of an earlier solution (a larger shrinkage on a path) to
    start from instead of 0."""
    rows, cols = sides["rows"], sides["cols"]
    m, n = rows.n_rows, cols.n_rows
    rank = opts.rank
    U, s, V = np.zeros((m, rank)), np.zeros(rank), np.zeros((n, rank))
    if warm is not None and warm[0].shape[1] == rank:
        # balanced factors are U sqrt(s) and V sqrt(s), orthogonal columns: undo the scaling
        s = np.sum(warm[0] * warm[0], axis=0)
        root = np.sqrt(np.where(s > 0, s, 1.0))
        U, V = warm[0] / root, warm[1] / root
    shrinkage = opts.shrinkage
    if shrinkage is None:
        shrinkage = top_singular_value(sides, opts.svd_n_iter + 2, gen) / 50.0
    n_observed = rows.data.shape[0]
    history = {"train_rmse": [], "validation_rmse": [], "seconds": []}
    resid_rows = rows.data
    resid_cols = cols.data
    if s.any():
        resid_rows = _residuals(sides, U, s, V)
        resid_cols = resid_rows[cols.perm]
    converged, step = False, 0
    bar = progress(total=opts.max_iter, desc="softimpute", verbose=opts.verbose, unit="step")
    for step in range(1, opts.max_iter + 1):
        op = _operator(sides, resid_rows, resid_cols, U, s, V)
        U_new, s_new, Vh_new = randomized_svd(op, rank, n_iter=opts.svd_n_iter, rng=gen)
        s_new = np.maximum(s_new - shrinkage, 0.0)
        V_new = Vh_new.T
        old2 = _frobenius2(U, s, V)
        diff2 = _frobenius2(np.hstack([U_new, U]), np.concatenate([s_new, -s]), np.hstack([V_new, V]))
        U, s, V = U_new, s_new, V_new
        resid_rows = _residuals(sides, U, s, V)
        resid_cols = resid_rows[cols.perm]
        history["train_rmse"].append(float(np.sqrt(resid_rows @ resid_rows / n_observed)))
        history["seconds"].append(time.perf_counter() - start)
        bar.update(1)
        if old2 > 0 and np.sqrt(max(diff2, 0.0) / old2) < opts.tol:
            converged = True
            break
    bar.close()
    root = np.sqrt(s)
    return U * root, V * root, history, step, converged
