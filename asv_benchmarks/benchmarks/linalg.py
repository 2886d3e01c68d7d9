"""The shared core: randomized SVD against scikit-learn and scipy, on dense and sparse input; the other
core routines timed on one dense matrix."""


import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds
from sklearn.utils.extmath import randomized_svd as sk_randomized_svd

from lowrank.linalg import (
    LowRankApproximation,
    cur,
    interpolative,
    nuclear_norm_estimate,
    nystrom,
    randomized_svd,
    rrqr,
    select_columns,
    sparse_random_projection,
    truncated_svd,
    weighted_svd,
)

from ._common import best_of

RANK = 20


def _dense(n):
    rng = np.random.default_rng(0)
    # Decaying spectrum, like real data: rank-200 signal plus noise.
    return (rng.standard_normal((n, 200)) * 0.97 ** np.arange(200)) @ rng.standard_normal((200, n)) / np.sqrt(n)


def _sparse(m, n, density):
    return sp.random(m, n, density=density, random_state=0, format="csr", dtype=np.float64)


class RandomizedSVD:
    """time_/peakmem_ at two sizes per input kind (dense 2000^2 and 4000^2; sparse 1e4x1e3 and 1e5x1e4)."""

    params = (["dense", "sparse"], ["small", "large"])
    param_names = ["kind", "size"]
    timeout = 300

    def setup(self, kind, size):
        if kind == "dense":
            self.A = _dense(2000 if size == "small" else 4000)
        else:
            self.A = _sparse(10_000, 1_000, 1e-3) if size == "small" else _sparse(100_000, 10_000, 1e-4)

    def time_lowrank(self, kind, size):
        randomized_svd(self.A, RANK, rng=0)

    def peakmem_lowrank(self, kind, size):
        randomized_svd(self.A, RANK, rng=0)

    def time_sklearn(self, kind, size):
        sk_randomized_svd(self.A, RANK, random_state=0)


class RandomizedSVDRatios:
    """Speed ratios against peers measured in one process (> 1 means lowrank is faster)."""

    params = ["dense", "sparse"]
    param_names = ["kind"]
    timeout = 600
    number = 1
    repeat = 1

    def setup(self, kind):
        self.A = _dense(2000) if kind == "dense" else _sparse(100_000, 10_000, 1e-4)
        randomized_svd(self.A, RANK, rng=0)

    def track_speedup_vs_sklearn(self, kind):
        ours = best_of(lambda: randomized_svd(self.A, RANK, rng=0))
        ref = best_of(lambda: sk_randomized_svd(self.A, RANK, random_state=0))
        return ref / ours

    def track_speedup_vs_scipy_svds(self, kind):
        ours = best_of(lambda: randomized_svd(self.A, RANK, rng=0))
        ref = best_of(lambda: svds(self.A, RANK, random_state=0), repeat=1)
        return ref / ours

    def track_relative_error_vs_svds(self, kind):
        _, s, _ = randomized_svd(self.A, RANK, rng=0)
        s_ref = np.sort(svds(self.A, RANK, random_state=0)[1])[::-1]
        return float(np.max(np.abs(s - s_ref) / s_ref))

    track_speedup_vs_sklearn.unit = "ratio"
    track_speedup_vs_scipy_svds.unit = "ratio"
    track_relative_error_vs_svds.unit = "relative error"


class StrongRRQR:
    params = [31, 200]
    param_names = ["n_bands"]

    def setup(self, n):
        self.V = np.random.default_rng(0).standard_normal((3, n))

    def time_strong_rrqr(self, n):
        rrqr(self.V, 3, strong=True)


class SparseProjection:
    params = [10_000, 100_000]
    param_names = ["n_features"]

    def time_projection(self, n):
        sparse_random_projection(n, 128, rng=0)

    def peakmem_projection(self, n):
        sparse_random_projection(n, 128, rng=0)


class CoreRoutines:
    """The other public core routines at rank 20 on the dense 2000 x 2000 matrix (``_dense``)."""

    timeout = 300

    def setup(self):
        self.A = _dense(2000)
        self.K = self.A @ self.A.T
        g = np.random.default_rng(1)
        self.r, self.c = g.uniform(0.5, 2.0, 2000), g.uniform(0.5, 2.0, 2000)

    def time_select_columns_rrqr(self):
        select_columns(self.A, RANK, rng=0)

    def time_select_columns_leverage(self):
        select_columns(self.A, RANK, method="leverage", rng=0)

    def time_interpolative_randomized(self):
        interpolative(self.A, RANK, method="randomized", rng=0)

    def time_cur(self):
        cur(self.A, RANK, rng=0)

    def time_nystrom(self):
        nystrom(self.K, RANK, rng=0)

    def time_weighted_svd(self):
        weighted_svd(self.A, RANK, row_weights=self.r, col_weights=self.c)

    def time_nuclear_norm_estimate(self):
        nuclear_norm_estimate(self.A, rank=RANK, rng=0)

    def time_lowrank_approximation_fit(self):
        LowRankApproximation(RANK, random_state=0).fit(self.A)


def _spectrum(m, n, decay):
    """'flat' (Gaussian), 'slow' (1/sqrt(i)) or 'fast' (0.8**i) singular values, seeded."""
    rng = np.random.default_rng(0)
    if decay == "flat":
        return rng.standard_normal((m, n))
    k = min(m, n)
    U, _ = np.linalg.qr(rng.standard_normal((m, k)))
    V, _ = np.linalg.qr(rng.standard_normal((n, k)))
    i = np.arange(1, k + 1)
    return (U * (1 / np.sqrt(i) if decay == "slow" else 0.8**i)) @ V.T


def _svds_sorted_values(A, k, solver):
    return np.sort(svds(A, k, solver=solver, random_state=0)[1])[::-1]


class TruncatedSVD:
    """truncated_svd (tol=0: machine precision) at two sizes, flat and slowly decaying spectra."""

    params = (["flat", "slow"], ["small", "large"])
    param_names = ["decay", "size"]
    timeout = 300

    def setup(self, decay, size):
        self.A = _spectrum(500, 300, decay) if size == "small" else _spectrum(2000, 1000, decay)

    def time_truncated_svd(self, decay, size):
        truncated_svd(self.A, RANK, rng=0)

    def peakmem_truncated_svd(self, decay, size):
        truncated_svd(self.A, RANK, rng=0)


class TruncatedSVDRatios:
    """Same-process ratios (> 1: lowrank is faster) on 2000 x 1000 matrices, rank 20.

    ``track_speedup_vs_arpack`` / ``_propack``: both at their default tol=0 (machine precision);
    ``track_speedup_at_svds_accuracy``: truncated_svd with the loosest tol in 1e-4..1e-12 whose singular
    values are at least as accurate (vs LAPACK) as ARPACK's, against ARPACK;
    ``track_speedup_vs_sklearn_fast_decay``: fast decay, truncated_svd at tol=0 vs sklearn's randomized_svd.
    The sparse case is a 2000 x 1000 random matrix of density 1%.
    """

    params = ["flat", "slow", "sparse"]
    param_names = ["kind"]
    timeout = 900
    number = 1
    repeat = 1

    def setup(self, kind):
        if kind == "sparse":
            self.A = sp.random(2000, 1000, density=0.01, random_state=0, format="csr")
            dense = self.A.toarray()
        else:
            self.A = dense = _spectrum(2000, 1000, kind)
        self.exact = np.linalg.svd(dense, compute_uv=False)[:RANK]
        truncated_svd(self.A, RANK, rng=0)

    def _speedup(self, solver, **kwargs):
        ours = best_of(lambda: truncated_svd(self.A, RANK, rng=0, **kwargs), repeat=2)
        ref = best_of(lambda: svds(self.A, RANK, solver=solver, random_state=0), repeat=2)
        return ref / ours

    def track_speedup_vs_arpack(self, kind):
        return self._speedup("arpack")

    def track_speedup_vs_propack(self, kind):
        return self._speedup("propack")

    def track_speedup_at_svds_accuracy(self, kind):
        target = np.max(np.abs(_svds_sorted_values(self.A, RANK, "arpack") - self.exact) / self.exact)
        for tol in (1e-4, 1e-6, 1e-8, 1e-10, 1e-12, 0.0):
            s = truncated_svd(self.A, RANK, tol=tol, rng=0).s
            if np.max(np.abs(s - self.exact) / self.exact) <= max(target, 4 * np.finfo(float).eps):
                break
        return self._speedup("arpack", tol=tol)

    def track_speedup_vs_sklearn_fast_decay(self, kind):
        if kind != "flat":
            raise NotImplementedError("one fast-decay case is enough (measured under kind='flat')")
        A = _spectrum(2000, 1000, "fast")
        ours = best_of(lambda: truncated_svd(A, RANK, rng=0), repeat=2)
        ref = best_of(lambda: sk_randomized_svd(A, RANK, random_state=0), repeat=2)
        return ref / ours

    track_speedup_vs_arpack.unit = "ratio"
    track_speedup_vs_propack.unit = "ratio"
    track_speedup_at_svds_accuracy.unit = "ratio"
    track_speedup_vs_sklearn_fast_decay.unit = "ratio"
