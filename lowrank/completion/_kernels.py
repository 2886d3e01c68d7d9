"""numba kernels for the per-row least-squares solves of alternating minimization.

One half-step of alternating minimization updates every row ``x_i`` of one factor given the
other factor ``Y``:

    x_i = argmin_x  sum_{j in Omega_i} (M_ij - <x, y_j>)^2 + alpha ||x||^2

The sparse matrix is given in CSR form (``indptr, indices, data``); row ``i`` of the factor
being updated corresponds to row ``i`` of the CSR. Rows are independent: every kernel works on
a row range ``lo:hi`` with the GIL released (``nogil``), and :func:`run_rows` runs ranges on a
thread pool (disjoint writes). A row's arithmetic never depends on the other rows, the range
or the thread count, so a block of rows solved anywhere (another thread, a Dask worker) gives
bit-identical results. (Serial kernels on Python threads compile in a fraction of the time a
``parallel=True`` kernel needs.)

:mod:`lowrank.completion._reference` holds plain-numpy twins that the tests cross-check.
"""

import numba
import numpy as np

from lowrank._utils._counter_rng_numba import counter_bits
from lowrank._utils.jit import njit

_FASTMATH = {"reassoc", "contract"}
# No reassociation in the per-row solvers written as loops: a vectorized reduction's order would
# depend on the alignment of its work buffers, and a row must give the same bits on any thread or
# Dask worker.
_ORDERED = {"contract"}


@njit(fastmath=_FASTMATH)
def _gather(indices, data, start, stop, Y):
    """Rows ``Y[indices[start:stop]]`` as a contiguous block, and the matching values."""
    nnz = stop - start
    k = Y.shape[1]
    A = np.empty((nnz, k))
    b = np.empty(nnz)
    for l in range(nnz):
        j = indices[start + l]
        for a in range(k):
            A[l, a] = Y[j, a]
        b[l] = data[start + l]
    return A, b


@njit(fastmath=_FASTMATH)
def _cholesky_solve(G, rhs):
    """Solve ``G x = rhs`` for symmetric positive semidefinite ``G`` (overwritten), in place in ``rhs``.

    A singular ``G`` (fewer observations than the rank and no regularization) gets a tiny
    ridge, growing until the factorization succeeds; an all-zero ``G`` gives ``x = 0``.
    """
    k = G.shape[0]
    trace = 0.0
    for a in range(k):
        trace += G[a, a]
    if not trace > 0.0:
        rhs[:] = 0.0
        return
    L = np.empty((k, k))
    jitter = 0.0
    for _attempt in range(8):
        ok = True
        for j in range(k):
            d = G[j, j] + jitter
            for c in range(j):
                d -= L[j, c] * L[j, c]
            if not d > 1e-13 * trace / k:
                ok = False
                break
            L[j, j] = np.sqrt(d)
            for i in range(j + 1, k):
                v = G[i, j]
                for c in range(j):
                    v -= L[i, c] * L[j, c]
                L[i, j] = v / L[j, j]
        if ok:
            break
        jitter = 1e-10 * trace / k if jitter == 0.0 else jitter * 100.0
    for i in range(k):  # L y = rhs
        v = rhs[i]
        for c in range(i):
            v -= L[i, c] * rhs[c]
        rhs[i] = v / L[i, i]
    for i in range(k - 1, -1, -1):  # L^T x = y
        v = rhs[i]
        for c in range(i + 1, k):
            v -= L[c, i] * rhs[c]
        rhs[i] = v / L[i, i]


@njit(nogil=True, fastmath=_FASTMATH)
def solve_rows_exact(lo, hi, indptr, indices, data, Y, X, alpha, resid2):
    """Exact alternating-minimization half-step on rows ``lo:hi``: normal equations and Cholesky.

    Overwrites ``X[i]`` with the minimizer and ``resid2[i]`` with the row's squared residual
    ``sum_j (M_ij - <x_i, y_j>)^2`` at the new ``x_i``. Cost ``O(|Omega_i| k^2 + k^3)`` per row.
    """
    _exact_rows(lo, hi, indptr, indices, data, Y, X, alpha, resid2)


@njit(nogil=True, fastmath=_ORDERED)
def _exact_rows(lo, hi, indptr, indices, data, Y, X, alpha, resid2):
    """Body of ``solve_rows_exact``. The Gram matrix is accumulated straight from the rows of ``Y``
    (no gathered copy, no BLAS call per row: most rows of a ratings matrix hold a handful of
    entries, where call overheads dominate), in a fixed order, so a row's result never depends
    on where its work buffers happen to be aligned."""
    k = Y.shape[1]
    G = np.empty((k, k))
    rhs = np.empty(k)
    for i in range(lo, hi):
        start, stop = indptr[i], indptr[i + 1]
        G[:, :] = 0.0
        rhs[:] = 0.0
        for l in range(start, stop):
            j = indices[l]
            v = data[l]
            for a in range(k):
                ya = Y[j, a]
                rhs[a] += ya * v
                for c in range(a + 1):
                    G[a, c] += ya * Y[j, c]
        for a in range(k):
            G[a, a] += alpha
            for c in range(a):
                G[c, a] = G[a, c]
        _cholesky_solve(G, rhs)
        s = 0.0
        for l in range(start, stop):
            j = indices[l]
            r = data[l]
            for a in range(k):
                r -= Y[j, a] * rhs[a]
            s += r * r
        for a in range(k):
            X[i, a] = rhs[a]
        resid2[i] = s


@njit(fastmath=_FASTMATH)
def _sketch_r_factor(A, alpha, sketch_rows, seed, row_id):
    """Upper-triangular ``R`` of a QR of the CountSketch ``S A`` with ``sqrt(alpha) I`` stacked below.

    Entry ``l`` of the row goes to bucket ``h(l)`` with sign ``sigma(l)``, both read from the
    counter-based generator at ``(seed, row_id, l)``, so the sketch of a row is the same on any
    thread or worker. With at most ``sketch_rows`` observations the "sketch" is ``A`` itself.
    """
    nnz, k = A.shape
    if nnz <= sketch_rows:
        s_rows = nnz
        SA = np.zeros((nnz + k, k))
        for l in range(nnz):
            for a in range(k):
                SA[l, a] = A[l, a]
    else:
        s_rows = sketch_rows
        SA = np.zeros((sketch_rows + k, k))
        for l in range(nnz):
            bits = counter_bits(seed, row_id, l)
            bucket = np.int64(bits % np.uint64(sketch_rows))
            sign = 1.0 if (bits >> np.uint64(63)) == np.uint64(0) else -1.0
            for a in range(k):
                SA[bucket, a] += sign * A[l, a]
    # Without regularization a tiny ridge keeps R invertible when the row has fewer observations
    # than the rank; being a ridge (not a patched diagonal) it keeps the steps in A's row space.
    ridge = alpha
    if not ridge > 0.0:
        frob2 = 0.0
        for l in range(nnz):
            for a in range(k):
                frob2 += A[l, a] * A[l, a]
        ridge = 1e-12 * frob2 / k if frob2 > 0.0 else 1.0
    root = np.sqrt(ridge)
    for a in range(k):
        SA[s_rows + a, a] = root
    _, R = np.linalg.qr(SA)  # LAPACK Householder QR (geqrf)
    return R


@njit(fastmath=_FASTMATH)
def _upper_inverse(R):
    """Inverse of an upper-triangular matrix with a non-zero diagonal."""
    k = R.shape[0]
    W = np.zeros((k, k))
    for c in range(k):
        W[c, c] = 1.0 / R[c, c]
        for i in range(c - 1, -1, -1):
            v = 0.0
            for t in range(i + 1, c + 1):
                v += R[i, t] * W[t, c]
            W[i, c] = -v / R[i, i]
    return W


@njit(fastmath=_FASTMATH)
def _pcg_row(A, b, x, alpha, n_inner, W, d):
    """``n_inner`` preconditioned CG steps on ``(A^T A + alpha I) x = A^T b`` from ``x`` (updated in
    place), with preconditioner inverse ``W diag(d) W^T``; returns the squared residual ``||b - A x||^2``.

    CGLS form: only products with ``A`` and ``A^T`` (``O(nnz k)`` each), never ``A^T A``.
    """
    k = A.shape[1]
    nnz = A.shape[0]
    r = b - A @ x
    s = A.T @ r
    for a in range(k):
        s[a] -= alpha * x[a]
    z = W @ (d * (W.T @ s))
    p = z.copy()
    gamma = s @ z
    for it in range(n_inner):
        if not gamma > 0.0:
            break
        q = A @ p
        delta = q @ q + alpha * (p @ p)
        if not delta > 0.0:
            break
        step = gamma / delta
        for a in range(k):
            x[a] += step * p[a]
        for l in range(nnz):
            r[l] -= step * q[l]
        if it == n_inner - 1:
            break
        s = A.T @ r
        for a in range(k):
            s[a] -= alpha * x[a]
        z = W @ (d * (W.T @ s))
        gamma_new = s @ z
        beta = gamma_new / gamma
        for a in range(k):
            p[a] = z[a] + beta * p[a]
        gamma = gamma_new
    return r @ r


@njit(fastmath=_ORDERED)
def _precondition(W, d, s, z, t):
    """``z = W diag(d) W^T s`` (``t`` a work vector)."""
    k = W.shape[0]
    for a in range(k):
        v = 0.0
        for c in range(k):
            v += W[c, a] * s[c]
        t[a] = d[a] * v
    for a in range(k):
        v = 0.0
        for c in range(k):
            v += W[a, c] * t[c]
        z[a] = v


@njit(fastmath=_ORDERED)
def _gradient(indices, start, stop, Y, r, x, alpha, s):
    """``s = A^T r - alpha x`` with ``A = Y[indices[start:stop]]`` read in place."""
    k = Y.shape[1]
    for a in range(k):
        s[a] = -alpha * x[a]
    for l in range(stop - start):
        j = indices[start + l]
        v = r[l]
        for a in range(k):
            s[a] += Y[j, a] * v


@njit(fastmath=_ORDERED)
def _pcg_row_indexed(indices, data, start, stop, Y, x, alpha, n_inner, W, d, r, q, s, z, p, t):
    """``_pcg_row`` on ``A = Y[indices[start:stop]]`` without gathering ``A`` and without allocating:
    ``r``/``q`` are work vectors of at least ``stop - start`` entries, ``s, z, p, t`` of ``k``."""
    k = Y.shape[1]
    nnz = stop - start
    for l in range(nnz):
        j = indices[start + l]
        v = data[start + l]
        for a in range(k):
            v -= Y[j, a] * x[a]
        r[l] = v
    _gradient(indices, start, stop, Y, r, x, alpha, s)
    _precondition(W, d, s, z, t)
    gamma = 0.0
    for a in range(k):
        p[a] = z[a]
        gamma += s[a] * z[a]
    for it in range(n_inner):
        if not gamma > 0.0:
            break
        delta = 0.0
        for l in range(nnz):
            j = indices[start + l]
            v = 0.0
            for a in range(k):
                v += Y[j, a] * p[a]
            q[l] = v
            delta += v * v
        for a in range(k):
            delta += alpha * p[a] * p[a]
        if not delta > 0.0:
            break
        step = gamma / delta
        for a in range(k):
            x[a] += step * p[a]
        for l in range(nnz):
            r[l] -= step * q[l]
        if it == n_inner - 1:
            break
        _gradient(indices, start, stop, Y, r, x, alpha, s)
        _precondition(W, d, s, z, t)
        gamma_new = 0.0
        for a in range(k):
            gamma_new += s[a] * z[a]
        beta = gamma_new / gamma
        for a in range(k):
            p[a] = z[a] + beta * p[a]
        gamma = gamma_new
    out = 0.0
    for l in range(nnz):
        out += r[l] * r[l]
    return out


@njit(nogil=True, fastmath=_FASTMATH)
def solve_rows_pcg_gram(lo, hi, indptr, indices, data, Y, X, alpha, n_inner, Q, lam, n_total, resid2):
    """Robust half-step on rows ``lo:hi`` with the shared preconditioner
    ``(|Omega_i| / n_total) Y^T Y + alpha I``, where ``Y^T Y = Q diag(lam) Q^T`` is computed once per
    half-step. Uniform sampling of an incoherent ``Y`` makes the observed rows of ``Y`` a subspace
    embedding, so this matches every row's system up to a constant: ``O(k^2)`` per application.
    Warm start at ``X[i]``; overwrites ``X[i]`` and ``resid2[i]``.
    """
    k = Y.shape[1]
    d = np.empty(k)
    widest = 0
    for i in range(lo, hi):
        widest = max(widest, indptr[i + 1] - indptr[i])
    r = np.empty(widest)
    q = np.empty(widest)
    s = np.empty(k)
    z = np.empty(k)
    p = np.empty(k)
    t = np.empty(k)
    x = np.empty(k)
    for i in range(lo, hi):
        start, stop = indptr[i], indptr[i + 1]
        scale = (stop - start) / n_total
        for a in range(k):
            v = scale * lam[a] + alpha
            d[a] = 1.0 / v if v > 0.0 else 0.0
            x[a] = X[i, a]
        resid2[i] = _pcg_row_indexed(indices, data, start, stop, Y, x, alpha, n_inner, Q, d, r, q, s, z, p, t)
        for a in range(k):
            X[i, a] = x[a]


@njit(nogil=True, fastmath=_FASTMATH)
def solve_rows_pcg_sketch(lo, hi, indptr, indices, data, Y, X, alpha, n_inner, sketch_rows, seed, row_offset, resid2):
    """Robust half-step on rows ``lo:hi`` with the per-row sketching preconditioner of Gu, Song,
    Yin & Zhang (arXiv:2302.11068): ``R`` from a QR of a CountSketch ``S A`` of the row's block
    (``O(|Omega_i| k + sketch_rows k^2)``), then CG on the ``R``-preconditioned system. Warm start at
    ``X[i]``; overwrites ``X[i]`` and ``resid2[i]``. ``row_offset + i`` is the row's global index.
    """
    k = Y.shape[1]
    ones = np.ones(k)
    for i in range(lo, hi):
        start, stop = indptr[i], indptr[i + 1]
        A, b = _gather(indices, data, start, stop, Y)
        W = _upper_inverse(_sketch_r_factor(A, alpha, sketch_rows, seed, row_offset + i))
        x = X[i].copy()
        resid2[i] = _pcg_row(A, b, x, alpha, n_inner, W, ones)
        for a in range(k):
            X[i, a] = x[a]


@njit(nogil=True, fastmath=_FASTMATH)
def csr_matmat(lo, hi, indptr, indices, data, B, out):
    """``out[lo:hi] = M[lo:hi] @ B`` for CSR ``M``."""
    c = B.shape[1]
    for i in range(lo, hi):
        for a in range(c):
            out[i, a] = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            v = data[p]
            j = indices[p]
            for a in range(c):
                out[i, a] += v * B[j, a]


@njit(nogil=True, fastmath=_FASTMATH)
def csr_residual(lo, hi, indptr, indices, data, U, V, out):
    """``out[p] = data[p] - <U[i], V[j]>`` for every stored entry ``p = (i, j)`` of rows ``lo:hi``."""
    k = U.shape[1]
    for i in range(lo, hi):
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            v = data[p]
            for a in range(k):
                v -= U[i, a] * V[j, a]
            out[p] = v


@njit(nogil=True, fastmath=_FASTMATH)
def pair_products(lo, hi, rows, cols, U, V, out):
    """``out[t] = <U[rows[t]], V[cols[t]]>`` for ``t`` in ``lo:hi``."""
    k = U.shape[1]
    for t in range(lo, hi):
        i = rows[t]
        j = cols[t]
        v = 0.0
        for a in range(k):
            v += U[i, a] * V[j, a]
        out[t] = v


@njit
def transpose_csr(indptr, indices, data, n_cols):
    """CSR arrays of the transpose (a stable counting sort by column):
    ``(t_indptr, t_indices, t_data, perm)`` with ``perm[q]`` the position in the original order
    of the transpose's ``q``-th entry. One pass over the entries."""
    nnz = indices.shape[0]
    t_indptr = np.zeros(n_cols + 1, dtype=np.int64)
    for p in range(nnz):
        t_indptr[indices[p] + 1] += 1
    for c in range(n_cols):
        t_indptr[c + 1] += t_indptr[c]
    nxt = t_indptr[:-1].copy()
    t_indices = np.empty(nnz, dtype=indices.dtype)
    t_data = np.empty(nnz, dtype=data.dtype)
    perm = np.empty(nnz, dtype=np.int64)
    for i in range(indptr.shape[0] - 1):
        for p in range(indptr[i], indptr[i + 1]):
            c = indices[p]
            q = nxt[c]
            nxt[c] = q + 1
            t_indices[q] = i
            t_data[q] = data[p]
            perm[q] = p
    return t_indptr, t_indices, t_data, perm


def _num_threads():
    return max(1, numba.get_num_threads())


def run_rows(kernel, weights, *args, n_threads=None):
    """Call ``kernel(lo, hi, *args)`` on row ranges covering ``0:n_rows``, balanced by ``weights``.

    ``weights`` is a CSR ``indptr`` (cumulative work per row, length ``n_rows + 1``). The ranges
    run on a thread pool; kernels release the GIL and write disjoint rows.
    """
    n_rows = weights.shape[0] - 1
    n_threads = n_threads or _num_threads()
    if n_threads == 1 or n_rows < 2 * n_threads or weights[-1] < 20_000:
        kernel(0, n_rows, *args)
        return
    n_chunks = 4 * n_threads
    cost = weights + np.arange(n_rows + 1)  # per-row overhead counts too
    bounds = np.searchsorted(cost, np.linspace(0, cost[-1], n_chunks + 1))
    bounds[0], bounds[-1] = 0, n_rows
    bounds = np.unique(bounds)
    pool = _pool(n_threads)
    futures = [pool.submit(kernel, int(lo), int(hi), *args) for lo, hi in zip(bounds[:-1], bounds[1:])]
    for future in futures:
        future.result()


_POOLS = {}


def _pool(n_threads):
    from concurrent.futures import ThreadPoolExecutor

    pool = _POOLS.get(n_threads)
    if pool is None:
        pool = _POOLS[n_threads] = ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="lowrank-completion")
    return pool


def pair_values(rows, cols, U, V):
    """``<U[rows[t]], V[cols[t]]>`` for every ``t``, on every core."""
    out = np.empty(rows.shape[0])
    weights = np.arange(rows.shape[0] + 1, dtype=np.int64)
    run_rows(pair_products, weights, rows, cols, np.ascontiguousarray(U), np.ascontiguousarray(V), out)
    return out
