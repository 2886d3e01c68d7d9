"""Bodies of HOSVD, ST-HOSVD and HOOI (no input validation; see decomposition.py)."""

import math

import numpy as np

from lowrank._utils.backend import is_torch, to_numpy
from lowrank.tensors._tensor_ops import (
    complete_columns,
    leading_vectors,
    mode_dot,
    multi_mode_dot,
    norm,
    orthonormal_random,
    rank_from_tol,
)


def _observed_fraction(M, xp):
    return float(xp.sum(M)) / math.prod(int(s) for s in M.shape)


def hosvd_body(X, ranks, tol, method, M, rng, xp, *, modes=None):
    """Truncated HOSVD over ``modes``: factors from each unfolding of ``X`` (masked Gram when ``M``).

    ``ranks[i]`` caps the rank of ``modes[i]`` (None = no cap); ``tol`` chooses the smallest ranks with
    relative error at most ``tol`` (the HOSVD bound splits the error budget evenly over modes).
    Returns ``(core, factors)``; with a mask the core is the projection of ``X / p`` (p = observed
    fraction), the usual unbiased spectral estimate.
    """
    modes = list(range(X.ndim)) if modes is None else modes
    budget = None if tol is None else tol**2 * norm(X, xp) ** 2 / len(modes)
    if M is not None and budget is not None:
        budget = budget / _observed_fraction(M, xp)
    factors = []
    for i, n in enumerate(modes):
        cap = ranks[i] if ranks[i] is not None else int(X.shape[n])
        U, sq = leading_vectors(X, n, cap, xp, method=method, mask=M, rng=rng)
        if budget is not None:
            U = U[:, : min(cap, rank_from_tol(to_numpy(sq), budget))]
        factors.append(U)
    Y = X if M is None else X / _observed_fraction(M, xp)
    core = multi_mode_dot(Y, factors, modes, xp, transpose=True)
    return core, factors


def st_hosvd_body(X, ranks, tol, method, rng, xp, *, modes=None):
    """Sequentially truncated HOSVD: project each mode as soon as its factor is known."""
    modes = list(range(X.ndim)) if modes is None else modes
    budget = None if tol is None else tol**2 * norm(X, xp) ** 2 / len(modes)
    # process the modes with the largest reduction first: the tensor shrinks fastest
    order = sorted(range(len(modes)), key=lambda i: (ranks[i] or X.shape[modes[i]]) / X.shape[modes[i]])
    factors = [None] * len(modes)
    Y = X
    for i in order:
        n = modes[i]
        cap = ranks[i] if ranks[i] is not None else int(Y.shape[n])
        U, sq = leading_vectors(Y, n, cap, xp, method=method, rng=rng)
        if budget is not None:
            U = U[:, : min(cap, rank_from_tol(to_numpy(sq), budget))]
        factors[i] = U
        Y = mode_dot(Y, U, n, xp, transpose=True)
    return Y, factors


def hooi_body(X, ranks, modes, init, n_iter_max, tol, method, M, rng, xp, *, fixed=()):
    """Higher-order orthogonal iteration (EM-imputed when ``M`` is given).

    Returns ``(core, factors, errors)``; errors are relative errors on the observed entries.
    Factors at positions ``fixed`` (orthonormal) are not updated. A given ``init`` is orthonormalized
    (only its column spaces matter); ``n_iter_max = 0`` returns it with the projected core.
    """
    if isinstance(init, (list, tuple)):
        factors = [F if i in fixed else xp.linalg.qr(F)[0] for i, F in enumerate(init)]
    elif init == "random":
        factors = [orthonormal_random(int(X.shape[n]), r, rng, X) for n, r in zip(modes, ranks)]
    elif M is None:  # "svd": sequentially truncated HOSVD
        _, factors = st_hosvd_body(X, ranks, None, method, rng, xp, modes=modes)
        factors = [complete_columns(U, r, rng, xp) for U, r in zip(factors, ranks)]
    else:  # "svd" with missing entries: HOSVD from the masked (pairwise-available) Gram
        _, factors = hosvd_body(X, ranks, None, method, M, rng, xp, modes=modes)
        factors = [complete_columns(U, r, rng, xp) for U, r in zip(factors, ranks)]
    norm_x = norm(X, xp) or 1.0  # X is zero outside the mask: the observed entries' norm (1 for a zero tensor)
    errors = []
    recon = None
    if M is not None:
        core = _observed_least_squares_core(X, M, factors, modes, xp)
        if core is None:  # too large for the normal equations: the unbiased spectral core
            core = multi_mode_dot(X / _observed_fraction(M, xp), factors, modes, xp, transpose=True)
        recon = multi_mode_dot(core, factors, modes, xp)
    if n_iter_max == 0:
        if M is None:
            core = multi_mode_dot(X, factors, modes, xp, transpose=True)
            errors.append(math.sqrt(abs(norm_x**2 - norm(core, xp) ** 2)) / norm_x)
        else:
            errors.append(norm(M * (X - recon), xp) / norm_x)
    for _ in range(n_iter_max):
        Xf = X if M is None else X + (1 - M) * recon
        for i, n in enumerate(modes):
            if i in fixed:
                continue
            Y = multi_mode_dot(Xf, factors, modes, xp, transpose=True, skip=i)
            factors[i], _ = leading_vectors(Y, n, ranks[i], xp)
        if len(modes) - 1 in fixed:
            core = multi_mode_dot(Xf, factors, modes, xp, transpose=True)
        else:  # Y already holds every projection but the last mode's
            core = mode_dot(Y, factors[-1], modes[-1], xp, transpose=True)
        if M is None:
            err = math.sqrt(abs(norm_x**2 - norm(core, xp) ** 2)) / norm_x
        else:
            recon = multi_mode_dot(core, factors, modes, xp)
            err = norm(M * (X - recon), xp) / norm_x
        errors.append(err)
        if len(errors) > 1 and abs(errors[-2] - errors[-1]) <= tol:
            break
    return core, factors, errors


_LS_CORE_MAX_WORK = 2e9


def _observed_least_squares_core(X, M, factors, modes, xp):
    """Core fitting the observed entries exactly in least squares (for the first imputation).

    Normal equations over the observed entries, accumulated in chunks (in float64, on the input's
    backend and device); None when the work ``n_observed * P**2`` (P = core size) would be too
    large, or for partial decompositions.
    """
    if len(modes) != X.ndim:
        return None
    P = math.prod(int(F.shape[1]) for F in factors)
    n_obs = int(xp.sum(M > 0))
    if n_obs * P * P > _LS_CORE_MAX_WORK:
        return None
    if is_torch(X):
        import torch

        idx = torch.nonzero(M > 0)
        f64 = [F.to(torch.float64) for F in factors]
        values = X[tuple(idx.T)].to(torch.float64)
        G = torch.zeros((P, P), dtype=torch.float64, device=X.device)
        b = torch.zeros(P, dtype=torch.float64, device=X.device)
        eye = torch.eye(P, dtype=torch.float64, device=X.device)
    else:
        idx = np.argwhere(M > 0)
        f64 = [np.asarray(F, dtype=np.float64) for F in factors]
        values = X[tuple(idx.T)].astype(np.float64)
        G, b, eye = np.zeros((P, P)), np.zeros(P), np.eye(P)
    step = max(1, 2**21 // P)
    for start in range(0, n_obs, step):
        rows = idx[start : start + step]
        phi = f64[0][rows[:, 0]]
        for n in range(1, len(f64)):
            Fn = f64[n][rows[:, n]]
            phi = xp.reshape(phi[:, :, None] * Fn[:, None, :], (rows.shape[0], -1))
        G = G + phi.T @ phi
        b = b + phi.T @ values[start : start + step]
    ridge = 1e-10 * max(float(xp.sum(xp.linalg.diagonal(G) if is_torch(G) else np.diag(G))) / P, 1e-300)
    core = xp.linalg.solve(G + ridge * eye, b)
    core = xp.reshape(core, tuple(int(F.shape[1]) for F in factors))
    return core.to(X.dtype) if is_torch(X) else core.astype(X.dtype, copy=False)
