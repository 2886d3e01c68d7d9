"""Random-order streams: heavy rows kept exactly, light rows used in a block power method (Kacham & Woodruff).

The state runs power iteration on ``A^T A`` where step ``t`` reads a fresh contiguous block of
the stream. In a uniformly random order a block of ``m`` light rows is a uniform sample of
all light rows, so ``(n_light / m) B^T B`` is an unbiased estimate of their Gram matrix ``L^T L``
(and a spectrally accurate one, by matrix concentration, precisely because the rows are light).
Heavy rows (``||a||^2 >= ||A||_F^2 / (c d)``, ``c = log2 d`` by default) break that concentration, so they are never
sampled: they are kept exactly, ``h`` rows of ``d`` numbers, and ``H^T H`` enters every step
exactly. Each step ends with a Rayleigh-Ritz on

    M = Nys(L^T L) + rho (I - P_Y) + H^T H,

the Nystrom approximation ``Y (Z^T Y)^+ Y^T`` of the light Gram from ``Y ~ L^T L Z``, an isotropic
remainder ``rho`` that keeps its trace exact, and the heavy rows exactly. Its top eigenvectors
lie in ``span([Y, H^T])``, a ``(p + h)``-dimensional problem, so memory stays ``O((p + h) d)``.

Block lengths double (each block is as long as the stream read so far), so a stream of ``n`` rows
gets ``log2(n / min_block)`` power steps and the last estimate uses a third to a half of the
stream; no length has to be known in advance.
"""

import numpy as np
import scipy.sparse as sp

from lowrank.streaming._kernels import _gram_rows_csr, _gram_rows_dense


class _BadRow(Exception):
    def __init__(self, row):
        super().__init__(row)
        self.row = row


def flip_signs(V):
    """Make the largest-magnitude entry of each column positive (deterministic signs)."""
    V = np.array(V, copy=True)
    rows = np.argmax(np.abs(V), axis=0)
    signs = np.sign(V[rows, np.arange(V.shape[1])])
    signs[signs == 0] = 1.0
    return V * signs


def _orth(Y):
    Q, _ = np.linalg.qr(Y)
    return Q


class RandomOrderState:
    """The running state of the random-order method (no input validation: batches are pre-checked)."""

    def __init__(self, n_features, dtype, *, n_vectors, max_heavy, heavy_threshold, min_block_rows, rng):
        d = n_features
        self.n_features = d
        self.dtype = np.dtype(dtype)
        self.p = min(n_vectors, d)
        self.max_heavy = max_heavy
        c = heavy_threshold if heavy_threshold is not None else max(1.0, np.log2(d))
        self.inv_cd = 1.0 / (c * d)
        self.min_block = min_block_rows if min_block_rows is not None else max(2 * d, 256)
        self.Z = _orth(rng.standard_normal((d, self.p)))
        self.YT = np.zeros((self.p, d))
        self.block_rows = 0  # rows (light or heavy) read in the current block
        self.block_light = 0  # light rows added into YT in the current block
        self.block_target = self.min_block
        self.last = None  # (Z, Y, n_light) of the last completed block
        self.n_rows = 0
        self.n_light = 0
        self.light_sq = 0.0  # exact trace of L^T L
        self.frob = 0.0  # ||A||_F^2 so far
        self.H = np.zeros((0, d), dtype=self.dtype)
        self.H_norms = np.zeros(0)
        self.n_blocks = 0

    # -- reading rows ------------------------------------------------------------------------
    def _apply(self, X, heavy, force_light):
        """Run the kernel on ``X``; returns the heavy flags; raises on NaN/inf (``update`` rolls back)."""
        if sp.issparse(X):
            out = _gram_rows_csr(X.data, X.indices, X.indptr, self.ZT, self.YT, self.frob, self.inv_cd, heavy, force_light)
        else:
            out = _gram_rows_dense(X, self.ZT, self.YT, self.frob, self.inv_cd, heavy, force_light)
        frob, light_sq, n_light, bad = out
        if bad >= 0:
            raise _BadRow(bad)
        self.frob = frob
        self.light_sq += light_sq
        self.n_light += n_light
        self.block_light += n_light
        return heavy

    @property
    def ZT(self):
        return self._ZT

    @property
    def Z(self):
        return self._Z

    @Z.setter
    def Z(self, value):
        self._Z = value
        self._ZT = np.ascontiguousarray(value.T)

    def update(self, X):
        """Read a checked batch (C-contiguous ndarray or CSR of ``self.dtype``); all or nothing."""
        # the state is O((p + h) d): a snapshot makes a batch with a bad row leave no trace
        snapshot = dict(self.__dict__)
        snapshot["YT"] = self.YT.copy()
        try:
            self._update(X)
        except ValueError:
            self.__dict__.clear()
            self.__dict__.update(snapshot)
            raise

    def _update(self, X):
        start = 0
        n = X.shape[0]
        while start < n:
            stop = min(n, start + max(self.block_target - self.block_rows, 1))
            try:
                self._update_piece(X[start:stop])
            except _BadRow as bad:
                row = start + bad.row
                raise ValueError(f"the batch contains NaN or infinity (row {row}); nothing from it was used") from None
            self.block_rows += stop - start
            self.n_rows += stop - start
            start = stop
            if self.block_rows >= self.block_target:
                self._end_block()

    def _update_piece(self, X):
        heavy = np.zeros(X.shape[0], dtype=np.bool_)
        force = self.max_heavy == 0
        self._apply(X, heavy, force)
        if not heavy.any() and not self.H.shape[0]:
            return
        flagged = np.flatnonzero(heavy)
        if flagged.size:
            rows = X[flagged]
            rows = rows.toarray() if sp.issparse(rows) else np.array(rows)
            self.H = np.vstack([self.H, rows.astype(self.dtype, copy=False)])
            self.H_norms = np.concatenate([self.H_norms, np.einsum("ij,ij->i", rows, rows, dtype=np.float64)])
        # A row is heavy relative to the whole stream read so far; rows that stopped being heavy
        # (or overflow the budget, lightest first) rejoin the light rows in the current block.
        threshold = self.inv_cd * self.frob
        order = np.argsort(-self.H_norms, kind="stable")
        keep = order[: self.max_heavy]
        keep = keep[self.H_norms[keep] >= threshold]
        if keep.size < self.H.shape[0]:
            mask = np.ones(self.H.shape[0], dtype=bool)
            mask[keep] = False
            demoted = np.ascontiguousarray(self.H[mask])
            self.frob -= float(self.H_norms[mask].sum())  # the kernel adds them back
            self._apply(demoted, np.zeros(demoted.shape[0], dtype=np.bool_), True)
            keep = np.sort(keep)
            self.H, self.H_norms = self.H[keep], self.H_norms[keep]

    # -- power steps -------------------------------------------------------------------------
    def _ritz(self, Z, Y, k):
        """Top-``k`` eigenpairs of ``Nys(Z, Y) + rho (I - P_Y) + H^T H`` (see the module docstring)."""
        d = self.n_features
        H = self.H.astype(np.float64, copy=False)
        C = Z.T @ Y
        C = 0.5 * (C + C.T)
        w, U = np.linalg.eigh(C)
        tol = max(float(w[-1]), 0.0) * 1e-10
        good = w > tol
        if good.any():
            Ci = (U[:, good] / w[good]) @ U[:, good].T
            QY = _orth(Y @ U[:, good])
        else:
            Ci = np.zeros_like(C)
            QY = np.zeros((d, 0))
        Q = _orth(np.hstack([QY, H.T])) if H.shape[0] else QY
        q_y = QY.shape[1]
        if Q.shape[1] == 0:
            return Z[:, :k], np.zeros(k)
        YQ = Y.T @ Q
        T = YQ.T @ Ci @ YQ
        if H.shape[0]:
            trace_nys = float(np.trace(Ci @ (Y.T @ Y)))
            rho = max(self.light_sq - trace_nys, 0.0) / max(d - q_y, 1)
            idx = np.arange(q_y, Q.shape[1])
            T[idx, idx] += rho
            HQ = H @ Q
            T += HQ.T @ HQ
        T = 0.5 * (T + T.T)
        ev, EV = np.linalg.eigh(T)
        ev, EV = ev[::-1], EV[:, ::-1]
        V = Q @ EV[:, :k]
        if V.shape[1] < k:  # fewer directions than asked for: pad with the previous iterate
            V = _orth(np.hstack([V, Z]))[:, :k]
            ev = np.concatenate([ev, np.zeros(k - ev.shape[0])])
        return V, ev[:k]

    def _end_block(self):
        Y = self.YT.T.copy()
        if self.block_light:
            self.last = (self.Z.copy(), Y, self.block_light)
            scaled = Y * (self.n_light / self.block_light)
        else:
            scaled = Y
        self.Z, _ = self._ritz(self.Z, scaled, self.p)
        self.YT = np.zeros_like(self.YT)
        self.block_rows = 0
        self.block_light = 0
        self.block_target = max(self.min_block, self.n_rows)
        self.n_blocks += 1

    def result(self, k=1):
        """``(V, eigenvalues)``: the top-``k`` (``k <= p``) Ritz vectors ``(d, k)`` and their eigenvalues."""
        candidates = []
        if self.last is not None:
            candidates.append(self.last)
        if self.block_light:
            candidates.append((self.Z, self.YT.T.copy(), self.block_light))
        if candidates:
            # the block with more light rows has the smaller sampling error
            Z, Y, m = max(candidates, key=lambda c: c[2])
            Y = Y * (self.n_light / m)
        else:
            Z, Y = self.Z, np.zeros_like(self.Z)
        V, ev = self._ritz(Z, Y, k)
        return flip_signs(V), np.maximum(ev, 0.0)

    @property
    def nbytes(self):
        arrays = [self._Z, self._ZT, self.YT, self.H, self.H_norms]
        if self.last is not None:
            arrays += [self.last[0], self.last[1]]
        return int(sum(a.nbytes for a in arrays))
