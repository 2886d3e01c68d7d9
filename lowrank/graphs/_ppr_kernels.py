"""numba kernels behind personalized PageRank: block power iteration, forward push,
random-walk fingerprints and the PowerWalk decomposition query.

Conventions shared by every kernel (see :mod:`lowrank.graphs.pagerank`):

* the graph is the row-stochastic transition ``P = D^-1 A`` (row = source), given as CSR
  ``(indptr, indices, probs)`` with ``probs[k] = w_uv / d_u``; ``dangling[u]`` marks ``d_u == 0``;
* a personalization batch is a CSR ``(p_indptr, p_indices, p_values)`` of shape (k, n), rows sum to 1;
* the mass a dangling vertex would send goes back to the personalization (networkx's default when
  a personalization is given, igraph's PRPACK).
"""

import numpy as np
from numba import prange

from lowrank._utils._counter_rng_numba import counter_uniform
from lowrank._utils.jit import njit, num_threads


@njit
def _n_chunks(n, per_thread):
    return max(1, min(n, num_threads() * per_thread))


@njit(inline="always")
def _add_dangling_mass(coef, X, dangling_idx, alpha):
    """``coef[j] += alpha * sum_d X[d, j]``: the flow of column ``j`` on dangling vertices."""
    for d in dangling_idx:
        for j in range(coef.size):
            coef[j] += alpha * X[d, j]


@njit(inline="always")
def _gather_row(v, t_indptr, t_indices, t_probs, X, alpha, pt_indptr, pt_cols, pt_vals, coef, row):
    """``row = alpha * (P^T X)[v] + coef * pers^T[v]``: one step of every column at vertex ``v``.

    Gathers the contiguous rows ``X[u]`` of the in-neighbours ``u`` of ``v`` (``t_*``, the CSR of
    ``P^T``), then adds ``v``'s share of each column's personalization (``pt_*``) times ``coef``.
    """
    row[:] = 0.0
    for p in range(t_indptr[v], t_indptr[v + 1]):
        u = t_indices[p]
        w = alpha * t_probs[p]
        for j in range(row.size):
            row[j] += w * X[u, j]
    for p in range(pt_indptr[v], pt_indptr[v + 1]):
        j = pt_cols[p]
        row[j] += coef[j] * pt_vals[p]


# --------------------------------------------------------------------------- exact: block power iteration


@njit(parallel=True)
def power_block(t_indptr, t_indices, t_probs, dangling_idx, pt_indptr, pt_cols, pt_vals, X, alpha, tol, max_iter):
    """Power iteration on a row-major block ``X`` (n, k), one PPR vector per column.

    ``t_*`` is the CSR of ``P^T`` (row v lists the in-arcs u -> v with ``P[u, v]``), so a new row
    ``Y[v, :]`` is a gather of whole contiguous rows of ``X``: every arc moves ``k`` numbers at once.
    ``pt_*`` is the personalization transposed (row v lists (column j, weight)).
    Stops when ``alpha / (1 - alpha) * ||x_{t+1} - x_t||_1 <= tol`` for every column, a bound on the
    L1 error of the returned iterate. Returns ``(X, n_iter, bound)`` with ``bound`` per column.
    """
    n, k = X.shape
    Y = np.empty_like(X)
    coef = np.empty(k)
    n_chunks = _n_chunks(n, 8)
    partial = np.zeros((n_chunks, k))
    bound = np.full(k, np.inf)
    it = 0
    factor = alpha / (1.0 - alpha)
    while it < max_iter:
        it += 1
        coef[:] = 1.0 - alpha
        _add_dangling_mass(coef, X, dangling_idx, alpha)
        for c in prange(n_chunks):
            acc = np.zeros(k)
            row = np.empty(k)
            for v in range(c * n // n_chunks, (c + 1) * n // n_chunks):
                _gather_row(v, t_indptr, t_indices, t_probs, X, alpha, pt_indptr, pt_cols, pt_vals, coef, row)
                for j in range(k):
                    acc[j] += abs(row[j] - X[v, j])
                    Y[v, j] = row[j]
            partial[c, :] = acc
        X, Y = Y, X
        done = True
        for j in range(k):
            s = 0.0
            for c in range(n_chunks):
                s += partial[c, j]
            bound[j] = factor * s
            if bound[j] > tol:
                done = False
        if done:
            break
    return X, it, bound


# --------------------------------------------------------------------------- forward push


@njit(parallel=True)
def push_batch(indptr, indices, probs, dangling, p_indptr, p_indices, p_values, alpha, tol, r_max0, out):
    """Forward push (Andersen, Chung, Lang 2006) per personalization row, in parallel over rows.

    ``out[j]`` receives the estimate; the L1 error equals the residual mass left, driven below ``tol``
    by lowering the push threshold ``r_max`` (per unit of out-degree) until it is. Returns the final
    residual mass per row.
    """
    k, n = out.shape
    resid = np.zeros(k)
    for j in prange(k):
        est = out[j]
        r = np.zeros(n)
        queue = np.empty(n, dtype=np.int64)
        inq = np.zeros(n, dtype=np.bool_)
        total = 0.0
        for p in range(p_indptr[j], p_indptr[j + 1]):
            r[p_indices[p]] += p_values[p]
            total += p_values[p]
        r_max = r_max0
        while True:
            head = 0
            size = 0
            for u in range(n):
                deg = max(1, indptr[u + 1] - indptr[u])
                if r[u] > r_max * deg:
                    queue[(head + size) % n] = u
                    size += 1
                    inq[u] = True
            while size > 0:
                u = queue[head]
                head = (head + 1) % n
                size -= 1
                inq[u] = False
                ru = r[u]
                r[u] = 0.0
                est[u] += (1.0 - alpha) * ru
                total -= (1.0 - alpha) * ru
                if dangling[u]:
                    lo, hi = p_indptr[j], p_indptr[j + 1]
                    tgt, val = p_indices[lo:hi], p_values[lo:hi]
                else:
                    lo, hi = indptr[u], indptr[u + 1]
                    tgt, val = indices[lo:hi], probs[lo:hi]
                for q in range(tgt.size):
                    v = tgt[q]
                    r[v] += alpha * ru * val[q]
                    if not inq[v] and r[v] > r_max * max(1, indptr[v + 1] - indptr[v]):
                        queue[(head + size) % n] = v
                        size += 1
                        inq[v] = True
            # recompute the residual mass exactly: the running total drifts by rounding
            total = 0.0
            for u in range(n):
                total += r[u]
            if total <= tol:
                break
            r_max *= 0.25
        resid[j] = total
    return resid


# --------------------------------------------------------------------------- random-walk fingerprints


@njit
def _walk_visits(seed, source, n_walks, max_steps, alpha, endpoint, indptr, indices, cumprob, uniform_rows, buf):
    """Run the ``n_walks`` walks of ``source``; write visited vertices to ``buf``, return how many.

    A walk starts at ``source``, stops with probability ``1 - alpha`` before each step and otherwise
    moves along an out-arc chosen with probability ``P[u, v]`` (from a dangling vertex it jumps back to
    ``source``, the mass convention of the exact solver). At most ``max_steps`` steps are taken.
    ``endpoint=True`` records only where each walk stops; otherwise every visit is recorded.
    """
    m = 0
    for w in range(n_walks):
        u = source
        if not endpoint:
            buf[m] = u
            m += 1
        hi_key = np.uint64(w) << np.uint64(32)
        for step in range(max_steps):
            if counter_uniform(seed, source, hi_key | np.uint64(2 * step)) >= alpha:
                break
            lo = indptr[u]
            deg = indptr[u + 1] - lo
            if deg == 0:
                u = source
            else:
                x = counter_uniform(seed, source, hi_key | np.uint64(2 * step + 1))
                if uniform_rows:
                    pick = min(int(x * deg), deg - 1)
                else:
                    pick = np.searchsorted(cumprob[lo : lo + deg], x, side="right")
                    pick = min(pick, deg - 1)
                u = indices[lo + pick]
            if not endpoint:
                buf[m] = u
                m += 1
        if endpoint:
            buf[m] = u
            m += 1
    return m


@njit(parallel=True)
def fingerprint_walks(
    sources, seed, n_walks, max_steps, alpha, endpoint, indptr, indices, cumprob, uniform_rows, buf_idx, buf_cnt
):
    """Walk from every source; row ``i`` of ``buf_idx``/``buf_cnt`` receives its distinct visited
    vertices (sorted) and their visit counts. Returns the number of distinct vertices per source.
    """
    ns = sources.size
    counts = np.zeros(ns, dtype=np.int64)
    cap = buf_idx.shape[1]
    n_chunks = _n_chunks(ns, 4)
    for c in prange(n_chunks):
        buf = np.empty(cap, dtype=np.int64)
        for i in range(c * ns // n_chunks, (c + 1) * ns // n_chunks):
            m = _walk_visits(
                seed, sources[i], n_walks, max_steps, alpha, endpoint, indptr, indices, cumprob, uniform_rows, buf
            )
            vis = np.sort(buf[:m])
            pos = 0
            buf_idx[i, 0] = vis[0]
            buf_cnt[i, 0] = 1
            for q in range(1, m):
                if vis[q] != vis[q - 1]:
                    pos += 1
                    buf_idx[i, pos] = vis[q]
                    buf_cnt[i, pos] = 1
                else:
                    buf_cnt[i, pos] += 1
            counts[i] = pos + 1
    return counts


# the same kernel without parallel=True, for Dask tasks that already run one per worker thread
# (numba's workqueue threading layer must not be entered from several threads at once)
fingerprint_walks_serial = njit(nogil=True)(fingerprint_walks.py_func)


@njit
def compact_rows(buf_idx, buf_cnt, counts, out_idx, out_cnt):
    """Copy the first ``counts[i]`` entries of each buffer row, back to back."""
    pos = 0
    for i in range(counts.size):
        for q in range(counts[i]):
            out_idx[pos] = buf_idx[i, q]
            out_cnt[pos] = buf_cnt[i, q]
            pos += 1


# --------------------------------------------------------------------------- PowerWalk query


@njit(parallel=True)
def decompose_block(
    t_indptr,
    t_indices,
    t_probs,
    dangling_idx,
    hub_pos,
    pt_indptr,
    pt_cols,
    pt_vals,
    R,
    n_decomp,
    alpha,
    est,
    hub_flow,
    hub_idx,
    ft_indptr,
    ft_indices,
    ft_values,
):
    """The batched decomposition: ``n_decomp`` steps on a row-major flow block ``R`` (n, k).

    Each step keeps ``(1 - alpha) R[v]`` in ``est[v]`` and moves ``alpha R`` one arc further, by
    gathering contiguous rows through ``P^T`` (``t_*``; arcs out of hubs carry probability 0
    there). Flow on a hub (``hub_pos[v] >= 0``) is not expanded: it is added to
    ``hub_flow[hub_pos[v]]`` for closing with the hub's fingerprint. Then all flow is closed with
    the normalized fingerprints, ``est += F^T R``, through ``ft_*`` (the CSR of ``F^T``: row w lists
    the vertices u whose fingerprint visits w, with ``F[u, w]``), again a gather of contiguous rows.
    """
    n, k = R.shape
    R2 = np.empty_like(R)
    coef = np.empty(k)
    n_chunks = _n_chunks(n, 8)
    for _ in range(n_decomp):
        coef[:] = 0.0
        _add_dangling_mass(coef, R, dangling_idx, alpha)
        for c in prange(n_chunks):
            acc = np.empty(k)
            for v in range(c * n // n_chunks, (c + 1) * n // n_chunks):
                _gather_row(v, t_indptr, t_indices, t_probs, R, alpha, pt_indptr, pt_cols, pt_vals, coef, acc)
                h = hub_pos[v]
                if h >= 0:
                    for j in range(k):
                        hub_flow[h, j] += R[v, j]
                else:
                    for j in range(k):
                        est[v, j] += (1.0 - alpha) * R[v, j]
                for j in range(k):
                    R2[v, j] = acc[j]
        R, R2 = R2, R
    for h in range(hub_idx.size):
        for j in range(k):
            R[hub_idx[h], j] += hub_flow[h, j]
    for c in prange(n_chunks):
        acc = np.empty(k)
        for w in range(c * n // n_chunks, (c + 1) * n // n_chunks):
            acc[:] = 0.0
            for p in range(ft_indptr[w], ft_indptr[w + 1]):
                u = ft_indices[p]
                x = ft_values[p]
                for j in range(k):
                    acc[j] += x * R[u, j]
            for j in range(k):
                est[w, j] += acc[j]


@njit(inline="always")
def _close_flow(u, ru, close, closed, n_closed):
    """Set flow ``ru`` on ``u`` aside for closing with ``u``'s fingerprint; returns the new ``n_closed``."""
    if close[u] == 0.0:
        closed[n_closed] = u
        n_closed += 1
    close[u] += ru
    return n_closed


@njit(parallel=True)
def decompose_query(
    indptr,
    indices,
    probs,
    dangling,
    expand,
    p_indptr,
    p_indices,
    p_values,
    fp_indptr,
    fp_indices,
    fp_counts,
    fp_scale,
    alpha,
    n_decomp,
    threshold,
    out,
):
    """PowerWalk's online phase: ``n_decomp`` steps of the decomposition, then fingerprints.

    For each personalization row, flow ``r`` starts at the personalization. A step takes every vertex
    ``u`` holding flow: keeps ``(1 - alpha) r(u)`` in the answer and passes ``alpha r(u) P[u, :]`` on
    (Jeh-Widom: ``pi_u = (1-alpha) e_u + alpha sum_v P[u, v] pi_v``). Flow that is small
    (``r(u) < threshold * out_degree(u)``) or sits on a vertex that is not expanded (``expand[u]``
    false, a hub above the degree threshold) is closed at once with ``u``'s fingerprint, as is all flow
    left after the last step. No mass is dropped: each row of ``out`` sums to 1.
    """
    k, n = out.shape
    n_chunks = _n_chunks(k, 2)
    for c in prange(n_chunks):
        r = np.zeros(n)
        r_next = np.zeros(n)
        close = np.zeros(n)
        active = np.empty(n, dtype=np.int64)
        nxt = np.empty(n, dtype=np.int64)
        closed = np.empty(n, dtype=np.int64)
        for j in range(c * k // n_chunks, (c + 1) * k // n_chunks):
            est = out[j]
            n_act = 0
            n_closed = 0
            for p in range(p_indptr[j], p_indptr[j + 1]):
                u = p_indices[p]
                if r[u] == 0.0:
                    active[n_act] = u
                    n_act += 1
                r[u] += p_values[p]
            for _ in range(n_decomp):
                n_nxt = 0
                for a in range(n_act):
                    u = active[a]
                    ru = r[u]
                    r[u] = 0.0
                    if ru == 0.0:
                        continue
                    lo, hi = indptr[u], indptr[u + 1]
                    if not expand[u] or ru < threshold * max(1, hi - lo):
                        n_closed = _close_flow(u, ru, close, closed, n_closed)
                        continue
                    est[u] += (1.0 - alpha) * ru
                    if dangling[u]:
                        tgt, val = p_indices[p_indptr[j] : p_indptr[j + 1]], p_values[p_indptr[j] : p_indptr[j + 1]]
                    else:
                        tgt, val = indices[lo:hi], probs[lo:hi]
                    for q in range(tgt.size):
                        v = tgt[q]
                        if r_next[v] == 0.0:
                            nxt[n_nxt] = v
                            n_nxt += 1
                        r_next[v] += alpha * ru * val[q]
                r, r_next = r_next, r
                active, nxt = nxt, active
                n_act = n_nxt
            for a in range(n_act):
                u = active[a]
                ru = r[u]
                r[u] = 0.0
                if ru == 0.0:
                    continue
                n_closed = _close_flow(u, ru, close, closed, n_closed)
            for a in range(n_closed):
                u = closed[a]
                cu = close[u] * fp_scale[u]
                close[u] = 0.0
                for p in range(fp_indptr[u], fp_indptr[u + 1]):
                    est[fp_indices[p]] += cu * fp_counts[p]
