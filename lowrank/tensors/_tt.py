"""Body of TT-SVD (Oseledets, 2011), and its EM loop for missing entries."""

from lowrank._utils.backend import to_numpy
from lowrank.linalg import randomized_svd, svd_flip
from lowrank.tensors._tensor_ops import norm, rank_from_tol


def truncated_svd(A, cap, budget, method, xp, rng=None):
    """``A ~= U diag(s) Vh`` with rank <= ``cap`` and discarded energy <= ``budget`` (if given)."""
    m, n = int(A.shape[0]), int(A.shape[1])
    cap = min(cap, m, n)
    if method == "randomized" and budget is None and cap < min(m, n):
        U, s, Vh = randomized_svd(A, cap, rng=rng)
        return U, s, Vh
    if method == "full":
        U, s, Vh = xp.linalg.svd(A, full_matrices=False)
        sq = s * s
    elif m <= n:  # "gram": eigendecomposition of the smaller Gram matrix
        w, U = xp.linalg.eigh(A @ A.T)
        w, U = xp.flip(w, axis=0), xp.flip(U, axis=1)
        sq = xp.where(w > 0, w, xp.zeros_like(w))
        s = xp.sqrt(sq)
        side = "left"
    else:
        w, V = xp.linalg.eigh(A.T @ A)
        w, V = xp.flip(w, axis=0), xp.flip(V, axis=1)
        sq = xp.where(w > 0, w, xp.zeros_like(w))
        s = xp.sqrt(sq)
        side = "right"
    r = cap if budget is None else min(cap, rank_from_tol(to_numpy(sq), budget))
    s = s[:r]
    # drop numerically zero directions that the Gram route cannot normalize
    keep = max(1, int(xp.sum(s > s[0] * 1e-12)) if float(s[0]) > 0 else 1)
    s = s[:keep]
    safe = xp.where(s > 0, s, xp.ones_like(s))
    if method == "full":
        U, Vh = U[:, :keep], Vh[:keep]
    elif side == "left":
        U = U[:, :keep]
        Vh = (U.T @ A) / safe[:, None]
    else:
        Vh = V[:, :keep].T
        U = (A @ V[:, :keep]) / safe[None, :]
    U, Vh = svd_flip(U, Vh)
    return U, s, Vh


def tt_body(X, caps, tol, method, rng, xp):
    """TT cores ``(r_{k-1}, I_k, r_k)`` with ``r_k <= caps[k]``; ``tol`` bounds the relative error."""
    shape = [int(s) for s in X.shape]
    K = len(shape)
    budget = None if tol is None else tol**2 * norm(X, xp) ** 2 / (K - 1)
    cores = []
    C = X
    r_prev = 1
    for k in range(K - 1):
        C = xp.reshape(C, (r_prev * shape[k], -1))
        U, s, Vh = truncated_svd(C, caps[k], budget, method, xp, rng)
        r = int(s.shape[0])
        cores.append(xp.reshape(U, (r_prev, shape[k], r)))
        C = s[:, None] * Vh
        r_prev = r
    cores.append(xp.reshape(C, (r_prev, shape[-1], 1)))
    return cores


def tt_to_tensor(cores, xp):
    shape = tuple(int(c.shape[1]) for c in cores)
    out = cores[0]
    for c in cores[1:]:
        out = xp.tensordot(out, c, axes=([out.ndim - 1], [0]))
    return xp.reshape(out, shape)


def tt_em_body(X, M, caps, tol, method, n_iter_max, em_tol, rng, xp):
    """TT-SVD with missing entries: impute, decompose, re-impute from the model until the fit settles."""
    n_obs = float(xp.sum(M))
    mean = float(xp.sum(X)) / n_obs
    norm_x = norm(X, xp)
    recon = xp.zeros_like(X) + mean
    errors = []
    for _ in range(n_iter_max):
        cores = tt_body(X + (1 - M) * recon, caps, tol, method, rng, xp)
        recon = tt_to_tensor(cores, xp)
        errors.append(norm(M * (X - recon), xp) / norm_x)
        if len(errors) > 1 and abs(errors[-2] - errors[-1]) <= em_tol * max(errors[-2], 1e-300):
            break
    return cores, errors

