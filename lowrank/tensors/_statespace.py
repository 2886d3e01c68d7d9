"""Matern Gaussian processes as linear state-space models (Hartikainen & Sarkka, 2010).

A Matern process with smoothness ``nu = p + 1/2`` is the first coordinate of the state
``z = (u, u', ..., u^(p))`` of the SDE ``dz = F z dt + L dW`` whose feedback matrix ``F`` has the single
eigenvalue ``-lam`` (``lam = sqrt(2 nu) / lengthscale``) with multiplicity ``p + 1``. Hence
``N = F + lam I`` is nilpotent and the transition over a gap ``delta`` has the closed form

    A(delta) = exp(-lam delta) * sum_{k=0}^{p} (N delta)^k / k!,

and the process noise of the gap is ``Q(delta) = Pinf - A Pinf A^T`` (stationary covariance ``Pinf``).
Both are evaluated for all gaps at once with array arithmetic; nothing calls a matrix exponential.
"""

import math

import numpy as np

KERNELS = {"matern12": 0, "matern32": 1, "matern52": 2}


def feedback_matrix(order, lengthscale):
    """Companion-form ``F`` of the Matern SDE with ``order = p`` (``nu = p + 1/2``)."""
    d = order + 1
    lam = math.sqrt(2 * order + 1) / lengthscale
    F = np.zeros((d, d))
    F[np.arange(d - 1), np.arange(1, d)] = 1.0
    # characteristic polynomial (s + lam)^d: last row holds -binom(d, i) lam^(d - i)
    F[-1, :] = [-math.comb(d, i) * lam ** (d - i) for i in range(d)]
    return F, lam


def stationary_covariance(order, lengthscale, variance):
    """``Pinf[i, j] = Cov(u^(i), u^(j))`` of the stationary Matern process, from the kernel's derivatives at 0.

    ``Cov(u^(i)(t), u^(j)(t)) = (-1)^j k^(i+j)(0)``, zero when ``i + j`` is odd.
    """
    d = order + 1
    lam = math.sqrt(2 * order + 1) / lengthscale
    # k(r) = variance * exp(-lam r) * poly(lam r); even derivatives at 0 from the spectral moments
    # m_{2k} = variance * lam^(2k) * c_k with c for p = 0, 1, 2 (Rasmussen & Williams, 2006, eq. 4.17)
    moments = {0: [1.0], 1: [1.0, 1.0], 2: [1.0, 1.0 / 3.0, 1.0]}[order]
    P = np.zeros((d, d))
    for i in range(d):
        for j in range(d):
            if (i + j) % 2 == 0:
                k = (i + j) // 2
                P[i, j] = (-1) ** ((i - j) // 2 % 2) * variance * lam ** (2 * k) * moments[k]
    return P


def transitions(gaps, order, lengthscale, variance, Pinf=None):
    """Transition matrices ``A`` (n, d, d) and process noises ``Q`` (n, d, d) for an array of gaps."""
    gaps = np.asarray(gaps, dtype=np.float64)
    F, lam = feedback_matrix(order, lengthscale)
    d = order + 1
    Nil = F + lam * np.eye(d)
    powers = [np.eye(d)]
    for _ in range(order):
        powers.append(powers[-1] @ Nil)
    A = np.zeros(gaps.shape + (d, d))
    term = np.ones_like(gaps)
    for k in range(d):
        A += term[..., None, None] * powers[k]
        term = term * gaps / (k + 1)
    A *= np.exp(-lam * gaps)[..., None, None]
    if Pinf is None:
        Pinf = stationary_covariance(order, lengthscale, variance)
    Q = Pinf - A @ Pinf @ np.swapaxes(A, -1, -2)
    Q = 0.5 * (Q + np.swapaxes(Q, -1, -2))
    return A, Q


def matern_kernel(r, order, lengthscale, variance):
    """The Matern covariance ``k(r)`` for ``nu = order + 1/2`` (reference for tests)."""
    r = np.abs(np.asarray(r, dtype=np.float64))
    x = math.sqrt(2 * order + 1) * r / lengthscale
    poly = {0: 1.0, 1: 1.0 + x, 2: 1.0 + x + x * x / 3.0}[order]
    return variance * poly * np.exp(-x)
