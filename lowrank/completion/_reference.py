"""Plain-numpy twins of :mod:`lowrank.completion._kernels` (slow, row by row; used by the tests)."""

import numpy as np
import scipy.linalg

from lowrank._utils.counter_rng import counter_bits


def solve_rows_exact(indptr, indices, data, Y, X, alpha, resid2):
    k = Y.shape[1]
    for i in range(indptr.shape[0] - 1):
        sl = slice(indptr[i], indptr[i + 1])
        A, b = Y[indices[sl]], data[sl]
        G = A.T @ A + alpha * np.eye(k)
        x = scipy.linalg.lstsq(G, A.T @ b)[0] if np.any(G) else np.zeros(k)
        X[i] = x
        resid2[i] = np.sum((b - A @ x) ** 2)


def sketch_r_factor(A, alpha, sketch_rows, seed, row_id):
    nnz, k = A.shape
    if nnz <= sketch_rows:
        SA = A.copy()
    else:
        bits = counter_bits(seed, row_id, np.arange(nnz, dtype=np.uint64))
        bucket = (bits % np.uint64(sketch_rows)).astype(np.int64)
        sign = np.where((bits >> np.uint64(63)) == 0, 1.0, -1.0)
        SA = np.zeros((sketch_rows, k))
        np.add.at(SA, bucket, sign[:, None] * A)
    ridge = alpha
    if not ridge > 0:
        frob2 = float(np.sum(A * A))
        ridge = 1e-12 * frob2 / k if frob2 > 0 else 1.0
    return np.linalg.qr(np.vstack([SA, np.sqrt(ridge) * np.eye(k)]), mode="r")


def solve_rows_pcg(
    indptr, indices, data, Y, X, alpha, n_inner, use_sketch, Q, lam, n_total, sketch_rows, seed, row_offset, resid2
):
    for i in range(indptr.shape[0] - 1):
        sl = slice(indptr[i], indptr[i + 1])
        A, b = Y[indices[sl]], data[sl]
        if use_sketch:
            R = sketch_r_factor(A, alpha, sketch_rows, seed, row_offset + i)

            def precondition(s, R=R):
                return scipy.linalg.solve_triangular(R, scipy.linalg.solve_triangular(R, s, trans="T"))

        else:
            d = A.shape[0] / n_total * lam + alpha
            inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1.0), 0.0)

            def precondition(s, inv=inv):
                return Q @ (inv * (Q.T @ s))

        x = X[i].copy()
        r = b - A @ x
        s = A.T @ r - alpha * x
        z = precondition(s)
        p, gamma = z.copy(), s @ z
        for it in range(n_inner):
            if not gamma > 0:
                break
            q = A @ p
            delta = q @ q + alpha * (p @ p)
            if not delta > 0:
                break
            step = gamma / delta
            x += step * p
            r -= step * q
            if it == n_inner - 1:
                break
            s = A.T @ r - alpha * x
            z = precondition(s)
            gamma_new = s @ z
            p = z + (gamma_new / gamma) * p
            gamma = gamma_new
        X[i] = x
        resid2[i] = r @ r


def csr_matmat(indptr, indices, data, B, out):
    for i in range(indptr.shape[0] - 1):
        sl = slice(indptr[i], indptr[i + 1])
        out[i] = data[sl] @ B[indices[sl]]
