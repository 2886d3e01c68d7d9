"""Body of randomized (sampled) CP-ALS, CPRAND (Battaglino, Ballard & Kolda 2018): every mode update
solves the least-squares problem on a random subset of the Khatri-Rao rows (uniform, or by products of
the factors' leverage scores), reading only the sampled fibres of the tensor."""

import math

import numpy as np

from lowrank.tensors._cp import _normalize


def _leverage_probabilities(F):
    """Row leverage scores of ``F`` (sum = rank), normalized to a distribution."""
    Q, _ = np.linalg.qr(F)
    lev = np.sum(Q * Q, axis=1)
    total = lev.sum()
    return lev / total if total > 0 else np.full(F.shape[0], 1.0 / F.shape[0])


def _sample_rows(factors, mode, n_samples, sampling, rng):
    """Index tuples over the modes other than ``mode`` and the least-squares row weights."""
    others = [m for m in range(len(factors)) if m != mode]
    idx, weight = [], np.ones(n_samples)
    for m in others:
        size = factors[m].shape[0]
        if sampling == "uniform":
            idx.append(rng.integers(0, size, n_samples))
        else:
            p = _leverage_probabilities(factors[m])
            i = rng.choice(size, n_samples, p=p)
            idx.append(i)
            weight = weight / (size * p[i])  # importance weight relative to uniform sampling
    return others, idx, np.sqrt(weight)


def _sampled_error(X, factors, fit_idx, norm_x):
    """Relative error estimated from the entries at ``fit_idx`` (one index array per mode)."""
    model = np.ones((fit_idx[0].size, factors[0].shape[1]))
    for F, i in zip(factors, fit_idx):
        model = model * F[i]
    resid = X[tuple(fit_idx)] - model.sum(axis=1)
    return math.sqrt(np.mean(resid**2) * X.size) / norm_x


def randomized_cp_body(X, factors, n_samples, n_iter_max, tol, sampling, n_samples_fit, max_stagnation, callback, rng):
    """Sampled ALS from ``factors`` (numpy); returns ``(weights, factors, errors)``, the best sweep kept.

    ``errors`` are estimates from ``n_samples_fit`` fixed random entries (exact when that covers the
    tensor). Stops after ``max_stagnation`` sweeps without a new best, when the estimate changes by at
    most ``tol``, or when ``callback`` returns True.
    """
    K = X.ndim
    factors = [np.array(F, dtype=np.float64) for F in factors]
    norm_x = float(np.linalg.norm(X)) or 1.0
    if n_samples_fit >= X.size:
        fit_idx = [i.ravel() for i in np.indices(X.shape)]
    else:
        fit_idx = [rng.integers(0, s, n_samples_fit) for s in X.shape]
    moved = [np.moveaxis(X, n, 0) for n in range(K)]
    errors = []
    best = (_sampled_error(X, factors, fit_idx, norm_x), [F.copy() for F in factors])
    stagnation = 0
    if n_iter_max == 0:
        errors.append(best[0])
    for it in range(n_iter_max):
        for n in range(K):
            others, idx, w = _sample_rows(factors, n, n_samples, sampling, rng)
            Z = np.ones((n_samples, factors[n].shape[1]))
            for m, i in zip(others, idx):
                Z = Z * factors[m][i]
            Z = Z * w[:, None]
            XS = moved[n][(slice(None), *idx)] * w[None, :]  # (I_n, n_samples): the sampled fibres
            sol, *_ = np.linalg.lstsq(Z, XS.T, rcond=None)
            factors[n] = sol.T
        err = _sampled_error(X, factors, fit_idx, norm_x)
        errors.append(err)
        if err < best[0]:
            best, stagnation = (err, [F.copy() for F in factors]), 0
        else:
            stagnation += 1
        if callback is not None and callback(it, err, factors):
            break
        if max_stagnation and stagnation >= max_stagnation:
            break
        if len(errors) > 1 and abs(errors[-2] - errors[-1]) <= tol:
            break
    weights, out = _normalize(best[1], np)
    return weights, out, errors
