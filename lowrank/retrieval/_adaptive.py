"""Minimum-norm refits for adaptive anchor rounds, updated as the query's anchor set grows.

Each round needs ``w = s_A @ pinv(R[:, A])``: the minimum-norm solution of ``R[:, A]^T w = s_A``.
With ``R[:, A] = Q T`` (thin QR) it is ``w = Q T^{-T} s_A``. The anchor set only grows, so the QR is
extended by block Gram-Schmidt (applied twice, for orthogonality) instead of being recomputed: a
round costs O(k_q |A| b) for b new columns rather than O(k_q |A|^2). When the new columns are
(numerically) dependent on the old ones, or there are more columns than anchor queries, the solver
falls back to an SVD-based least-squares solve, which handles rank deficiency as ``pinv`` does.
"""

import numpy as np
import scipy.linalg


class GrowingMinNorm:
    """Minimum-norm ``w`` with ``w @ R[:, A] ≈ s_A`` while ``A`` grows by blocks of columns."""

    def __init__(self, R, capacity, rcond=None):
        self.R = R
        self.rcond = rcond
        self.cols = []
        self.n = 0
        self.exact_qr = rcond is None and capacity <= R.shape[0]
        if self.exact_qr:
            self.Q = np.empty((R.shape[0], capacity))
            self.T = np.zeros((capacity, capacity))
        self.scale = 0.0

    def copy(self, capacity):
        """A solver with the same columns, room for ``capacity`` in all."""
        other = GrowingMinNorm.__new__(GrowingMinNorm)
        other.R, other.rcond, other.cols, other.n, other.scale = self.R, self.rcond, list(self.cols), self.n, self.scale
        other.exact_qr = self.exact_qr and capacity <= self.R.shape[0]
        if other.exact_qr:
            other.Q = np.empty((self.R.shape[0], capacity))
            other.T = np.zeros((capacity, capacity))
            other.Q[:, : self.n] = self.Q[:, : self.n]
            other.T[: self.n, : self.n] = self.T[: self.n, : self.n]
        return other

    def add(self, cols):
        cols = np.asarray(cols, dtype=np.int64)
        self.cols.append(cols)
        if not self.exact_qr or cols.size == 0:
            return
        X = self.R[:, cols]
        n, b = self.n, cols.size
        self.scale = max(self.scale, float(np.sqrt((X**2).sum(axis=0)).max()))
        Qn = self.Q[:, :n]
        Y = Qn.T @ X
        X = X - Qn @ Y
        Y2 = Qn.T @ X
        X -= Qn @ Y2
        Y += Y2
        Q2, T2 = scipy.linalg.qr(X, mode="economic", check_finite=False)
        tol = max(self.R.shape[0], n + b) * np.finfo(np.float64).eps * self.scale
        if np.abs(np.diag(T2)).min() <= tol:  # dependent columns: let the SVD solver handle the rank
            self.exact_qr = False
            return
        self.Q[:, n : n + b] = Q2
        self.T[:n, n : n + b] = Y
        self.T[n : n + b, n : n + b] = T2
        self.n = n + b

    def solve(self, s):
        """``w`` (length ``k_q``) for the scores ``s`` of the columns added so far, in order."""
        if self.exact_qr:
            y = scipy.linalg.solve_triangular(self.T[: self.n, : self.n], s, trans="T", check_finite=False)
            return self.Q[:, : self.n] @ y
        RA = self.R[:, np.concatenate(self.cols)]
        cond = self.rcond if self.rcond is not None else max(RA.shape) * np.finfo(np.float64).eps
        return scipy.linalg.lstsq(RA.T, s, cond=cond, check_finite=False, lapack_driver="gelsd")[0]

    def predict(self, s):
        """Approximate scores of every item, ``w @ R``, from the scores ``s`` of the added columns."""
        return self.solve(s) @ self.R
