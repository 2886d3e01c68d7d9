"""Per-row numba kernels for the stream updates, each with a plain-numpy reference used by the tests.

Every kernel reads a row once from memory and reuses it from cache: the squared norm (which doubles
as the NaN/inf check), the heavy-row test and the update all happen in one pass, so a batch costs
about one read of its bytes.
"""

import numpy as np

from lowrank._utils.jit import njit

_FASTMATH = {"reassoc", "contract"}  # keeps NaN/inf semantics (no "nnan"/"ninf")


@njit(fastmath=_FASTMATH)
def _gram_rows_dense(X, ZT, YT, frob, inv_cd, heavy, force_light):
    """Add ``a (a^T Z)`` for each light row ``a`` of ``X`` into ``YT`` (``(p, d)``, transposed).

    A row is heavy when ``||a||^2 >= inv_cd * F`` with ``F`` the running squared Frobenius norm
    (this row included); heavy rows are flagged in ``heavy`` and not added. Returns
    ``(F, light_sq_sum, n_light, first_bad)``, ``first_bad = -1`` when every norm is finite.
    Rows go four at a time so that each load of ``Z`` and each load/store of ``Y`` serves four rows.
    """
    m, d = X.shape
    p = ZT.shape[0]
    s = np.zeros((4, p))
    idx = np.empty(4, dtype=np.int64)
    light_sq = 0.0
    n_light = 0
    i0 = 0
    while i0 < m:
        t = min(4, m - i0)
        nl = 0
        for r in range(t):
            i = i0 + r
            nn = 0.0
            for j in range(d):
                nn += X[i, j] * X[i, j]
            if not np.isfinite(nn):
                return frob, light_sq, n_light, i
            frob += nn
            if not force_light and nn >= inv_cd * frob:
                heavy[i] = True
            else:
                heavy[i] = False
                light_sq += nn
                idx[nl] = i
                nl += 1
        n_light += nl
        if nl == 4:
            a, b, c, e = idx[0], idx[1], idx[2], idx[3]
            for k in range(p):
                s0 = 0.0
                s1 = 0.0
                s2 = 0.0
                s3 = 0.0
                for j in range(d):
                    z = ZT[k, j]
                    s0 += X[a, j] * z
                    s1 += X[b, j] * z
                    s2 += X[c, j] * z
                    s3 += X[e, j] * z
                s[0, k] = s0
                s[1, k] = s1
                s[2, k] = s2
                s[3, k] = s3
            for k in range(p):
                s0 = s[0, k]
                s1 = s[1, k]
                s2 = s[2, k]
                s3 = s[3, k]
                for j in range(d):
                    YT[k, j] += X[a, j] * s0 + X[b, j] * s1 + X[c, j] * s2 + X[e, j] * s3
        else:
            for r in range(nl):
                i = idx[r]
                for k in range(p):
                    acc = 0.0
                    for j in range(d):
                        acc += X[i, j] * ZT[k, j]
                    s[0, k] = acc
                for k in range(p):
                    sk = s[0, k]
                    for j in range(d):
                        YT[k, j] += X[i, j] * sk
        i0 += t
    return frob, light_sq, n_light, -1


@njit(fastmath=_FASTMATH)
def _gram_rows_csr(data, indices, indptr, ZT, YT, frob, inv_cd, heavy, force_light):
    """:func:`_gram_rows_dense` for CSR rows (``data, indices, indptr``)."""
    m = indptr.shape[0] - 1
    p = ZT.shape[0]
    s = np.empty(p, dtype=YT.dtype)
    light_sq = 0.0
    n_light = 0
    for i in range(m):
        lo, hi = indptr[i], indptr[i + 1]
        nn = 0.0
        for t in range(lo, hi):
            nn += data[t] * data[t]
        if not np.isfinite(nn):
            return frob, light_sq, n_light, i
        frob += nn
        if not force_light and nn >= inv_cd * frob:
            heavy[i] = True
            continue
        heavy[i] = False
        light_sq += nn
        n_light += 1
        for k in range(p):
            acc = 0.0
            for t in range(lo, hi):
                acc += data[t] * ZT[k, indices[t]]
            s[k] = acc
        for k in range(p):
            sk = s[k]
            for t in range(lo, hi):
                YT[k, indices[t]] += data[t] * sk
    return frob, light_sq, n_light, -1


def gram_rows_reference(X, ZT, YT, frob, inv_cd, heavy, force_light):
    """Plain-numpy twin of :func:`_gram_rows_dense` (dense or CSR ``X``); same return values."""
    X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    norms = np.einsum("ij,ij->i", X.astype(np.float64), X.astype(np.float64))
    bad = np.flatnonzero(~np.isfinite(norms))
    stop = bad[0] if bad.size else X.shape[0]
    running = frob + np.cumsum(norms[:stop])
    flags = np.zeros(stop, dtype=bool) if force_light else norms[:stop] >= inv_cd * running
    heavy[:stop] = flags
    light = X[:stop][~flags]
    YT += ((light @ ZT.T).T @ light).astype(YT.dtype)
    new_frob = float(running[-1]) if stop else frob
    return new_frob, float(norms[:stop][~flags].sum()), int(light.shape[0]), (int(bad[0]) if bad.size else -1)


@njit(fastmath=_FASTMATH)
def _oja_rows_dense(X, XS, log_norm, energy, rates, frob):
    """Oja updates ``x_j <- x_j + (c_j / F_t) (a^T x_j) a`` for every copy ``j`` (rows of ``XS``).

    ``F_t`` is the running squared Frobenius norm including the current row; copies are kept unit
    length, their log growth is accumulated in ``log_norm`` and ``sum_t (a_t^T x_t)^2`` (the
    energy the copy captured) in ``energy``. Returns ``(F, first_bad)``.
    """
    m, d = X.shape
    r = XS.shape[0]
    for i in range(m):
        nn = 0.0
        for j in range(d):
            nn += X[i, j] * X[i, j]
        if not np.isfinite(nn):
            return frob, i
        frob += nn
        if nn == 0.0:
            continue
        for k in range(r):
            s = 0.0
            for j in range(d):
                s += X[i, j] * XS[k, j]
            energy[k] += s * s
            eta = rates[k] / frob
            c = eta * s
            # ||x + c a||^2 = 1 + 2 c s + c^2 ||a||^2 for a unit x with a^T x = s
            scale = 1.0 / np.sqrt(1.0 + 2.0 * c * s + c * c * nn)
            for j in range(d):
                XS[k, j] = (XS[k, j] + c * X[i, j]) * scale
            log_norm[k] -= np.log(scale)
    return frob, -1


@njit(fastmath=_FASTMATH)
def _oja_rows_csr(data, indices, indptr, XS, log_norm, energy, rates, frob):
    """:func:`_oja_rows_dense` for CSR rows (the rescaling touches the whole copy)."""
    m = indptr.shape[0] - 1
    r, d = XS.shape
    for i in range(m):
        lo, hi = indptr[i], indptr[i + 1]
        nn = 0.0
        for t in range(lo, hi):
            nn += data[t] * data[t]
        if not np.isfinite(nn):
            return frob, i
        frob += nn
        if nn == 0.0:
            continue
        for k in range(r):
            s = 0.0
            for t in range(lo, hi):
                s += data[t] * XS[k, indices[t]]
            energy[k] += s * s
            eta = rates[k] / frob
            c = eta * s
            scale = 1.0 / np.sqrt(1.0 + 2.0 * c * s + c * c * nn)
            for t in range(lo, hi):
                XS[k, indices[t]] += c * data[t]
            for j in range(d):
                XS[k, j] *= scale
            log_norm[k] -= np.log(scale)
    return frob, -1


def oja_rows_reference(X, XS, log_norm, energy, rates, frob):
    """Plain-numpy twin of :func:`_oja_rows_dense` (one row at a time; slow, for tests)."""
    X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    for i in range(X.shape[0]):
        a = X[i].astype(np.float64)
        nn = float(a @ a)
        if not np.isfinite(nn):
            return frob, i
        frob += nn
        if nn == 0.0:
            continue
        for k in range(XS.shape[0]):
            x = XS[k].astype(np.float64)
            energy[k] += float(a @ x) ** 2
            y = x + (rates[k] / frob) * (a @ x) * a
            norm = np.linalg.norm(y)
            XS[k] = y / norm
            log_norm[k] += np.log(norm)
    return frob, -1
