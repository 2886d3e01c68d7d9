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
