"""Expected sufficient statistics of the FunBaT likelihood for a Tucker or a CP core.

For observation n the model is ``y_n = <W, u^1_n o ... o u^K_n> + noise``. Everything the updates need
are expectations under the factorized posterior, built from per-observation factor moments
``means[k]`` (N, R_k) and ``seconds[k] = E[u u^T]`` (N, R_k, R_k) and the core's mean ``mu`` and second
moment ``M2 = E[w w^T]``. Sums over observations are accumulated in chunks so memory stays
O(N R^2 + R^(2K)); nothing of size N x R^(2K) is ever formed.
"""

import math

import numpy as np

_CHUNK_ELEMS = 1 << 21


def _chunks(N, per_row):
    step = max(1, _CHUNK_ELEMS // max(per_row, 1))
    for start in range(0, N, step):
        yield slice(start, min(N, start + step))


def _kron_rows(mats, sl, N):
    """Row-wise Kronecker products of ``mats[i][sl]`` ((n, R_i) vectors -> (n, prod R_i))."""
    n = len(range(*sl.indices(N)))
    out = np.ones((n, 1))
    for M in mats:
        Ms = M[sl]
        out = (out[:, :, None] * Ms[:, None, :]).reshape(n, -1)
    return out


def _kron_mats(mats, sl, N):
    """Row-wise Kronecker products of matrices ``mats[i][sl]`` ((n, R_i, R_i) -> (n, P, P))."""
    n = len(range(*sl.indices(N)))
    out = np.ones((n, 1, 1))
    for M in mats:
        Ms = M[sl]
        a, b = out.shape[1], Ms.shape[1]
        out = (out[:, :, None, :, None] * Ms[:, None, :, None, :]).reshape(n, a * b, a * b)
    return out


class TuckerCore:
    """Dense core ``W`` of shape ``ranks`` (vectorized in C order), prior N(0, I)."""

    def __init__(self, ranks):
        self.ranks = list(ranks)
        self.size = math.prod(self.ranks)

    def mode_messages(self, k, means, seconds, mu, M2):
        """``E[b_n b_n^T]`` (N, R_k, R_k) and ``E[b_n]`` (N, R_k) with ``b_n = W_(k) kron_{m != k} u^m_n``."""
        K = len(self.ranks)
        N = means[0].shape[0]
        Rk = self.ranks[k]
        others = [m for m in range(K) if m != k]
        Q = self.size // Rk
        W = mu.reshape(self.ranks)
        Wk = np.moveaxis(W, k, 0).reshape(Rk, Q)
        T2 = M2.reshape(self.ranks + self.ranks)
        perm = [k, K + k] + others + [K + m for m in others]
        M2k = np.transpose(T2, perm).reshape(Rk * Rk, Q * Q)
        Ebb = np.empty((N, Rk, Rk))
        Eb = np.empty((N, Rk))
        for sl in _chunks(N, Q * Q):
            H = _kron_mats([seconds[m] for m in others], sl, N)
            Ebb[sl] = (H.reshape(H.shape[0], -1) @ M2k.T).reshape(-1, Rk, Rk)
            Eb[sl] = _kron_rows([means[m] for m in others], sl, N) @ Wk.T
        return Ebb, Eb

    def sum_second(self, seconds):
        """``sum_n kron_m E[u^m_n u^m_n^T]`` (P, P)."""
        N = seconds[0].shape[0]
        first, last = seconds[:-1], seconds[-1]
        Qf = self.size // self.ranks[-1]
        RK = self.ranks[-1]
        acc = np.zeros((Qf * Qf, RK * RK))
        for sl in _chunks(N, Qf * Qf):
            H = _kron_mats(first, sl, N)
            acc += H.reshape(H.shape[0], -1).T @ last[sl].reshape(-1, RK * RK)
        return acc.reshape(Qf, Qf, RK, RK).transpose(0, 2, 1, 3).reshape(self.size, self.size)

    def sum_y_features(self, y, means):
        N = y.shape[0]
        acc = np.zeros(self.size)
        for sl in _chunks(N, self.size):
            acc += y[sl] @ _kron_rows(means, sl, N)
        return acc

    def mean_f(self, means, mu):
        N = means[0].shape[0]
        out = np.empty(N)
        for sl in _chunks(N, self.size):
            out[sl] = _kron_rows(means, sl, N) @ mu
        return out

    def second_f(self, seconds, M2):
        """``E[f_n^2] = <M2, kron_m E[u u^T]>`` per observation."""
        N = seconds[0].shape[0]
        out = np.empty(N)
        flat = M2.reshape(-1)
        for sl in _chunks(N, self.size * self.size):
            H = _kron_mats(seconds, sl, N)
            out[sl] = H.reshape(H.shape[0], -1) @ flat
        return out


class CPCore:
    """Diagonal core: ``f = sum_r w_r prod_k u^k_r``, weights ``w`` with prior N(0, I)."""

    def __init__(self, rank, n_modes):
        self.ranks = [rank] * n_modes
        self.size = rank

    @staticmethod
    def _prod(arrs, skip=None):
        out = None
        for m, a in enumerate(arrs):
            if m != skip:
                out = a.copy() if out is None else out * a
        return out

    def mode_messages(self, k, means, seconds, mu, M2):
        N = means[0].shape[0]
        R = self.size
        if len(means) == 1:
            return np.broadcast_to(M2, (N, R, R)).copy(), np.broadcast_to(mu, (N, R)).copy()
        return M2[None] * self._prod(seconds, k), mu[None] * self._prod(means, k)

    def sum_second(self, seconds):
        return self._prod(seconds).sum(axis=0)

    def sum_y_features(self, y, means):
        return y @ self._prod(means)

    def mean_f(self, means, mu):
        return self._prod(means) @ mu

    def second_f(self, seconds, M2):
        return np.einsum("nab,ab->n", self._prod(seconds), M2)
