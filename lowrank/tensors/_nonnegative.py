"""Bodies of non-negative CP and Tucker by HALS (no input validation; see decomposition.py).

Both use the Gram trick: one MTTKRP (CP) or one partial projection (Tucker) per mode and sweep, then
several cheap hierarchical-ALS column sweeps on the small normal equations (Gillis & Glineur's
accelerated HALS), so the tensor is touched once per mode however many inner sweeps run.
"""

import math

import numpy as np

from lowrank._utils.backend import is_torch
from lowrank.tensors._cp import _hadamard_grams, _normalize, _ones
from lowrank.tensors._tensor_ops import (
    cp_to_tensor,
    leading_vectors,
    multi_mode_dot,
    mttkrp,
    norm,
    to_backend,
    unfold,
)

# Inner HALS sweeps stop when a sweep changes the factor by less than this fraction of the first sweep.
_INNER_DECAY = 0.01
_MAX_INNER = 10


def _diag(V, xp):
    return xp.linalg.diagonal(V) if is_torch(V) else np.diagonal(V)


def hals_columns(A, W, V, nonneg, xp):
    """Minimize ``||X - A H||`` over ``A`` column by column, given ``W = X H^T`` and ``V = H H^T``.

    Each column update is exact for that column (clipped at zero when ``nonneg``); the sweeps repeat
    while they still move the factor (at most ``_MAX_INNER``).
    """
    A = A.clone() if is_torch(A) else np.array(A, copy=True)
    d = [float(v) for v in _diag(V, xp)]
    first = None
    for _ in range(_MAX_INNER):
        moved = 0.0
        for r, vrr in enumerate(d):
            if vrr <= 0:  # a dead component in the other factors: nothing determines this column
                continue
            old = A[:, r]
            new = old + (W[:, r] - A @ V[:, r]) / vrr
            if nonneg:
                new = xp.clip(new, 0, None) if not is_torch(new) else new.clamp(min=0)
            moved += float(xp.sum((new - old) ** 2))
            A[:, r] = new
        if first is None:
            first = moved
        if moved <= _INNER_DECAY * first or first == 0:
            break
    return A


def _scale_to_fit(X, model, xp, M=None):
    """Best non-negative scalar ``a`` for ``||X - a model||`` (observed entries with ``M``)."""
    if M is not None:
        model = M * model
    den = float(xp.sum(model * model))
    return max(float(xp.sum(X * model)) / den, 0.0) if den > 0 else 1.0


# ----------------------------------------------------------------------------- CP


def nn_cp_init(X, rank, init, rng, xp, M=None):
    """Non-negative start: |leading singular vectors| per mode ("svd") or uniform [0, 1) ("random"),
    scaled to the best fit; a given list is used as is."""
    if isinstance(init, (list, tuple)):
        return list(init)
    shape = [int(s) for s in X.shape]
    if init == "svd":
        factors = []
        for n, size in enumerate(shape):
            k = min(rank, size)
            U, _ = leading_vectors(X, n, k, xp, mask=M)
            U = xp.abs(U)
            if k < rank:
                pad = to_backend(rng.random((size, rank - k)) / math.sqrt(size), X)
                U = xp.concat([U, pad], axis=1)
            factors.append(U)
    else:
        factors = [to_backend(rng.random((n, rank)), X) for n in shape]
    model = cp_to_tensor(_ones(factors[0], xp), factors, xp)
    factors[0] = factors[0] * _scale_to_fit(X, model, xp, M)
    return factors


def nn_cp_body(X, factors, n_iter_max, tol, nn_modes, fixed_modes, M, callback, xp):
    """HALS for CP with the given modes non-negative; returns ``(weights, factors, errors)``.

    ``errors[i]`` is the relative error (observed entries with ``M``) after sweep ``i``; the loop stops
    when it changes by at most ``tol`` (absolute, as TensorLy's default criterion) or ``callback``
    returns True. ``n_iter_max = 0`` returns the normalized start.
    """
    K = X.ndim
    factors = list(factors)
    grams = [F.T @ F for F in factors]
    norm_x2 = norm(X, xp) ** 2 or 1.0
    errors = []
    free = [n for n in range(K) if n not in fixed_modes]
    for it in range(n_iter_max):
        Xf = X if M is None else X + (1 - M) * cp_to_tensor(_ones(factors[0], xp), factors, xp)
        W = None
        for n in free:
            V = _hadamard_grams(grams, n, xp)
            W = mttkrp(Xf, factors, n, xp)
            factors[n] = hals_columns(factors[n], W, V, n in nn_modes, xp)
            grams[n] = factors[n].T @ factors[n]
        if M is not None:
            recon = cp_to_tensor(_ones(factors[0], xp), factors, xp)
            err = norm(M * (X - recon), xp) / math.sqrt(norm_x2)
        else:
            last = free[-1] if free else K - 1
            if W is None:
                W = mttkrp(X, factors, last, xp)
            inner = float(xp.sum(W * factors[last]))  # W of the last updated mode does not depend on it
            model2 = float(xp.sum(_hadamard_grams(grams, None, xp)))
            err = math.sqrt(max(norm_x2 - 2 * inner + model2, 0.0) / norm_x2)
        errors.append(err)
        if callback is not None and callback(it, err, factors):
            break
        if len(errors) > 1 and abs(errors[-2] - errors[-1]) <= tol:
            break
    weights, factors = _normalize(factors, xp)
    return weights, factors, errors


# ----------------------------------------------------------------------------- Tucker


def nn_tucker_init(X, ranks, init, rng, xp, M=None):
    """Non-negative Tucker start: |HOSVD factors| and the clipped projected core, or uniform random."""
    if isinstance(init, tuple) and len(init) == 2 and not isinstance(init[1], (int, float)):
        return init[0], list(init[1])
    shape = [int(s) for s in X.shape]
    if init == "svd":
        factors = []
        for n, (size, r) in enumerate(zip(shape, ranks)):
            k = min(r, size)
            U, _ = leading_vectors(X, n, k, xp, mask=M)
            U = xp.abs(U)
            if k < r:
                U = xp.concat([U, to_backend(rng.random((size, r - k)) / math.sqrt(size), X)], axis=1)
            factors.append(U)
        core = multi_mode_dot(X, factors, list(range(X.ndim)), xp, transpose=True)
        core = xp.clip(core, 0, None) if not is_torch(core) else core.clamp(min=0)
    else:
        factors = [to_backend(rng.random((n, r)), X) for n, r in zip(shape, ranks)]
        core = to_backend(rng.random(tuple(ranks)), X)
    model = multi_mode_dot(core, factors, list(range(X.ndim)), xp)
    core = core * _scale_to_fit(X, model, xp, M)
    return core, factors


def _core_step(core, P, grams, n_steps, xp):
    """Projected (FISTA) gradient steps on the core of ``0.5 ||X - core x_m A_m||^2``, core >= 0.

    ``P = X x_m A_m^T``; the Hessian is the Kronecker product of the Grams, so its norm is the
    product of their largest eigenvalues.
    """
    K = core.ndim
    modes = list(range(K))
    lip = 1.0
    for G in grams:
        lip *= float(xp.linalg.eigvalsh(G)[-1])
    if lip <= 0:
        return core
    Y, prev, t = core, core, 1.0
    for _ in range(n_steps):
        grad = multi_mode_dot(Y, grams, modes, xp) - P
        new = Y - grad / lip
        new = xp.clip(new, 0, None) if not is_torch(new) else new.clamp(min=0)
        t_next = (1 + math.sqrt(1 + 4 * t * t)) / 2
        Y = new + ((t - 1) / t_next) * (new - prev)
        prev, t = new, t_next
    return prev


def nn_tucker_body(X, core, factors, n_iter_max, tol, fixed_modes, M, callback, xp, *, core_steps=20):
    """HALS factor updates and FISTA core updates for non-negative Tucker; returns ``(core, factors, errors)``."""
    K = X.ndim
    modes = list(range(K))
    factors = list(factors)
    norm_x2 = norm(X, xp) ** 2 or 1.0
    errors = []
    for it in range(n_iter_max):
        Xf = X if M is None else X + (1 - M) * multi_mode_dot(core, factors, modes, xp)
        grams = [F.T @ F for F in factors]
        for n in modes:
            if n in fixed_modes:
                continue
            Y = multi_mode_dot(Xf, factors, modes, xp, transpose=True, skip=n)  # mode n keeps I_n
            Gn = unfold(core, n, xp)
            W = unfold(Y, n, xp) @ Gn.T
            V = unfold(multi_mode_dot(core, grams, modes, xp, skip=n), n, xp) @ Gn.T
            factors[n] = hals_columns(factors[n], W, V, True, xp)
            grams[n] = factors[n].T @ factors[n]
        P = multi_mode_dot(Xf, factors, modes, xp, transpose=True)
        core = _core_step(core, P, grams, core_steps, xp)
        if M is not None:
            err = norm(M * (X - multi_mode_dot(core, factors, modes, xp)), xp) / math.sqrt(norm_x2)
        else:
            inner = float(xp.sum(P * core))
            model2 = float(xp.sum(multi_mode_dot(core, grams, modes, xp) * core))
            err = math.sqrt(max(norm_x2 - 2 * inner + model2, 0.0) / norm_x2)
        errors.append(err)
        if callback is not None and callback(it, err, factors):
            break
        if len(errors) > 1 and abs(errors[-2] - errors[-1]) <= tol:
            break
    return core, factors, errors

