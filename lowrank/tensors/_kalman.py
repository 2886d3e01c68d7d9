"""Kalman filter + Rauch-Tung-Striebel smoother for R independent Matern chains observed jointly.

The state at coordinate ``t_j`` stacks R copies of the per-function state (``d = p + 1`` entries each),
so it has ``D = R d`` entries; the transition and process noise are block diagonal (``I_R kron a_j``,
``I_R kron q_j``). The observations are Gaussian messages on the function values in information form,
precision ``Lam_j`` (R x R, possibly singular) and precision-mean ``eta_j``, added with the Woodbury form
``P+ = P - P H^T (I + Lam H P H^T)^{-1} Lam H P`` so ``Lam_j`` never needs inverting.

:func:`kalman_rts` is plain numpy-compatible Python compiled by numba on first use;
``kalman_rts_py`` is the same function uncompiled (the reference the tests cross-check).
"""

import numpy as np


def _kalman_rts(A, Q, P0, R, Lam, eta):
    J = Lam.shape[0]
    d = P0.shape[0]
    D = R * d
    obs = np.arange(R) * d
    m_f = np.zeros((J, D))
    P_f = np.zeros((J, D, D))
    m_p = np.zeros((J, D))
    P_p = np.zeros((J, D, D))
    m = np.zeros(D)
    P = np.zeros((D, D))
    for r in range(R):
        P[r * d : (r + 1) * d, r * d : (r + 1) * d] = P0
    eye_r = np.eye(R)
    Aj = np.zeros((D, D))
    Qj = np.zeros((D, D))
    for j in range(J):
        if j > 0:
            for r in range(R):
                Aj[r * d : (r + 1) * d, r * d : (r + 1) * d] = A[j]
                Qj[r * d : (r + 1) * d, r * d : (r + 1) * d] = Q[j]
            m = Aj @ m
            P = Aj @ P @ Aj.T + Qj
        m_p[j] = m
        P_p[j] = P
        PH = np.ascontiguousarray(P[:, obs])
        HPH = np.ascontiguousarray(PH[obs, :])
        L = np.ascontiguousarray(Lam[j])
        S = eye_r + L @ HPH
        # P+ = P - PH S^{-1} Lam PH^T
        KL = np.linalg.solve(S, L)
        P = P - PH @ KL @ PH.T
        P = 0.5 * (P + P.T)
        resid = eta[j] - L @ np.ascontiguousarray(m[obs])
        m = m + np.ascontiguousarray(P[:, obs]) @ resid
        m_f[j] = m
        P_f[j] = P
    m_s = m_f.copy()
    P_s = P_f.copy()
    for j in range(J - 2, -1, -1):
        for r in range(R):
            Aj[r * d : (r + 1) * d, r * d : (r + 1) * d] = A[j + 1]
        # G = P_f A^T P_p^{-1}  (P_p symmetric): G^T = solve(P_p, A P_f)
        Gt = np.linalg.solve(P_p[j + 1], Aj @ P_f[j])
        G = np.ascontiguousarray(Gt.T)
        m_s[j] = m_f[j] + G @ (m_s[j + 1] - m_p[j + 1])
        Ps = P_f[j] + G @ (P_s[j + 1] - P_p[j + 1]) @ Gt
        P_s[j] = 0.5 * (Ps + Ps.T)
    return m_f, P_f, m_s, P_s


kalman_rts_py = _kalman_rts
_compiled = {}


def numba_ready():
    """True once the numba kernel is compiled in this process (no compile cost left to pay)."""
    return "kalman" in _compiled


def kalman_rts(A, Q, P0, R, Lam, eta, *, use_numba=True):
    """Filtered and smoothed means/covariances ``(m_f, P_f, m_s, P_s)`` of the stacked chain.

    Parameters
    ----------
    A, Q : arrays (J, d, d)
        Per-gap transition and process noise of one function (entry 0 unused: the chain starts stationary).
    P0 : array (d, d)
        Stationary covariance of one function's state.
    R : int
        Number of functions sharing the coordinates.
    Lam : array (J, R, R)
        Precision of the Gaussian message on the R function values at each coordinate.
    eta : array (J, R)
        Precision-weighted mean of the messages.
    """
    args = (
        np.ascontiguousarray(A, dtype=np.float64),
        np.ascontiguousarray(Q, dtype=np.float64),
        np.ascontiguousarray(P0, dtype=np.float64),
        int(R),
        np.ascontiguousarray(Lam, dtype=np.float64),
        np.ascontiguousarray(eta, dtype=np.float64),
    )
    if not use_numba:
        return _kalman_rts(*args)
    fn = _compiled.get("kalman")
    if fn is None:
        from lowrank._utils.jit import njit

        fn = _compiled["kalman"] = njit(_kalman_rts)
    return fn(*args)


def interpolate_states(t_train, t_new, m_f, P_f, m_s, P_s, A_fn, R, P0):
    """Posterior state moments at new coordinates from the smoothed chain (no re-filtering).

    Between two training coordinates the new state is predicted from the left filtered state and
    corrected by the right smoothed state (one RTS step through the inserted point); before the first
    coordinate the left "filtered" state is the stationary prior; after the last the smoothed state is
    propagated forward. ``A_fn(gaps) -> (A, Q)`` gives per-gap transitions of one function.
    Returns ``(mean (M, D), cov (M, D, D))``.
    """
    t_new = np.asarray(t_new, dtype=np.float64)
    M = t_new.shape[0]
    D = m_f.shape[1]
    J = t_train.shape[0]
    right = np.searchsorted(t_train, t_new, side="left")  # first training coordinate >= t_new
    mean = np.zeros((M, D))
    cov = np.zeros((M, D, D))
    Pinf = _block_batch(P0[None], R)[0]
    exact = (right < J) & (t_train[np.minimum(right, J - 1)] == t_new)
    mean[exact] = m_s[right[exact]]
    cov[exact] = P_s[right[exact]]
    after = (~exact) & (right == J)
    if after.any():
        A, Q = A_fn(t_new[after] - t_train[-1])
        Ab = _block_batch(A, R)
        Qb = _block_batch(Q, R)
        mean[after] = np.einsum("mij,j->mi", Ab, m_s[-1])
        cov[after] = Ab @ P_s[-1] @ np.swapaxes(Ab, 1, 2) + Qb
    inner = (~exact) & (right < J)
    if inner.any():
        idx = right[inner]
        has_left = idx > 0
        left = np.maximum(idx - 1, 0)
        t_left = np.where(has_left, t_train[left], -np.inf)
        gap1 = np.where(has_left, t_new[inner] - t_left, 0.0)
        gap2 = t_train[idx] - t_new[inner]
        A1, Q1 = A_fn(gap1)
        A2, Q2 = A_fn(gap2)
        A1b, Q1b, A2b, Q2b = (_block_batch(x, R) for x in (A1, Q1, A2, Q2))
        m_left = np.where(has_left[:, None], m_f[left], 0.0)
        P_left = np.where(has_left[:, None, None], P_f[left], Pinf[None])
        # before the first coordinate the "left" state is the stationary prior itself
        m_pred = np.where(has_left[:, None], np.einsum("mij,mj->mi", A1b, m_left), 0.0)
        P_pred = np.where(has_left[:, None, None], A1b @ P_left @ np.swapaxes(A1b, 1, 2) + Q1b, Pinf[None])
        # predicted state at the right coordinate through the inserted point
        m_next = np.einsum("mij,mj->mi", A2b, m_pred)
        P_next = A2b @ P_pred @ np.swapaxes(A2b, 1, 2) + Q2b
        Gt = np.linalg.solve(P_next, A2b @ P_pred)
        G = np.swapaxes(Gt, 1, 2)
        mean[inner] = m_pred + np.einsum("mij,mj->mi", G, m_s[idx] - m_next)
        C = P_pred + G @ (P_s[idx] - P_next) @ Gt
        cov[inner] = 0.5 * (C + np.swapaxes(C, 1, 2))
    return mean, cov


def _block_batch(a, R):
    """``I_R kron a[m]`` for each ``m``: (M, d, d) -> (M, R d, R d) block diagonals."""
    M, d, _ = a.shape
    out = np.zeros((M, R * d, R * d))
    for r in range(R):
        out[:, r * d : (r + 1) * d, r * d : (r + 1) * d] = a
    return out
