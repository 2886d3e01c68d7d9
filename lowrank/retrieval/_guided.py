"""Refits for prior-guided adaptive rounds: a cheap prior, affinely calibrated, plus a ridge CUR correction.

After some items of a query are scored exactly (scores ``s`` on the set ``A``), every item's score
is predicted as ``a + b * prior + w @ R``: ``a`` and ``b`` calibrate the prior (e.g. dual-encoder
similarities) and are not penalised; ``w`` (one weight per anchor query) is a ridge-penalised CUR
correction of what the prior gets wrong. With few scored items an unpenalised correction would
interpolate them exactly and extrapolate badly, so its penalty ``lam`` is chosen per refit by the
exact leave-one-out error over a grid, ``lam = inf`` (no correction) included: the correction is
kept only as far as it predicts held-out scored items.

In kernel form, with ``K = R_A^T R_A`` and ``Z = [1, prior_A]``, the solution satisfies
``(K + lam I) alpha + Z beta = s`` and ``Z^T alpha = 0``; writing ``alpha = Q gamma`` with ``Q``
an orthonormal basis of the complement of ``range(Z)`` and ``Q^T K Q = U diag(g) U^T``,
``lam * alpha = (s - fitted)`` and the leave-one-out residuals are
``lam * alpha_i / (I - H)_ii`` with ``I - H = Q U diag(lam / (g + lam)) U^T Q^T``.
"""

import numpy as np
import scipy.linalg

# penalties relative to the mean squared norm of the scored items' columns of R
_RELATIVE_PENALTIES = 10.0 ** np.arange(-6.0, 4.0)


class PriorGuidedFit:
    """Predictions ``a + b * prior + w @ R`` for one query while its scored set grows."""

    def __init__(self, R, prior, capacity):
        self.R = R
        self.prior = prior
        self.cols = np.empty(capacity, dtype=np.int64)
        self.RA = np.empty((R.shape[0], capacity), order="F")  # R[:, cols], gathered once per column
        self.K = np.empty((capacity, capacity))
        self.n = 0

    def add(self, cols):
        """Append the columns of newly scored items (their Gram block is computed once)."""
        cols = np.asarray(cols, dtype=np.int64)
        n, b = self.n, cols.size
        new = self.RA[:, n : n + b]
        new[:] = self.R[:, cols]
        if n:
            cross = self.RA[:, :n].T @ new
            self.K[:n, n : n + b] = cross
            self.K[n : n + b, :n] = cross.T
        self.K[n : n + b, n : n + b] = new.T @ new
        self.cols[n : n + b] = cols
        self.n = n + b

    def predict(self, s):
        """Predicted scores of every item from the exact scores ``s`` of the items added so far."""
        n = self.n
        s = np.asarray(s, dtype=np.float64)
        cols = self.cols[:n]
        Z = np.column_stack([np.ones(n), self.prior[cols]])
        Qz, Rz = scipy.linalg.qr(Z, mode="full", check_finite=False)
        rank = int(np.sum(np.abs(np.diag(Rz)) > max(Z.shape) * np.finfo(np.float64).eps * np.abs(Rz).max()))
        Q = Qz[:, rank:]  # complement of range(Z): where the correction lives
        K = self.K[:n, :n]
        lam, alpha = _loo_ridge(K, Q, s)
        # beta from the first optimality condition: Z beta = s - K alpha - lam alpha
        rhs = s - K @ alpha - (0.0 if np.isinf(lam) else lam * alpha)
        beta = np.linalg.lstsq(Z, rhs, rcond=None)[0]
        out = beta[0] + beta[1] * self.prior
        if np.any(alpha):
            out = out + (self.RA[:, :n] @ alpha) @ self.R
        return out


def _loo_ridge(K, Q, s):
    """Penalty with the smallest leave-one-out error, and the matching ``alpha`` (0 for ``inf``)."""
    n = K.shape[0]
    if Q.shape[1] == 0:  # no more scored items than calibration parameters: no correction
        return np.inf, np.zeros(n)
    g, U = np.linalg.eigh(Q.T @ K @ Q)
    g = np.maximum(g, 0.0)
    V = Q @ U
    Vs = V.T @ s
    scale = np.trace(K) / n
    # strongest first: no correction (lam = inf), then decreasing penalties
    lams = np.concatenate([[np.inf], scale * _RELATIVE_PENALTIES[::-1]]) if scale > 0 else np.array([np.inf])
    with np.errstate(invalid="ignore"):
        shrink = np.where(np.isinf(lams)[:, None], 1.0, lams[:, None] / (g[None, :] + lams[:, None]))
    residuals = (shrink * Vs) @ V.T  # row p: s - fitted = lam_p * alpha_p
    leverage_complement = shrink @ (V**2).T  # row p: diag(I - H_p)
    with np.errstate(divide="ignore", invalid="ignore"):
        loo = np.where(leverage_complement > 1e-12, residuals / leverage_complement, 0.0)
    err = np.einsum("pi,pi->p", loo, loo)
    best = int(np.flatnonzero(err <= err.min() * (1 + 1e-9))[0])  # near-ties keep the stronger penalty
    lam = float(lams[best])
    alpha = np.zeros(n) if np.isinf(lam) else residuals[best] / lam
    return lam, alpha
