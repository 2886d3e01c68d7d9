"""Tensor decompositions against TensorLy, and FunBaT per-epoch cost and accuracy.

Sizes: Tucker/HOSVD at 100^3 and 200^3 (rank 10), CP at 60^3 and 100^3 (rank 10), FunBaT at
N = 1,000 and 10,000 entries of the paper's synthetic function. The track_ ratios are measured in
the same process, so machine load affects both sides alike.
"""

import time

import numpy as np
import tensorly as tl
from tensorly.decomposition import (
    non_negative_parafac_hals,
    non_negative_tucker_hals,
    parafac,
    randomised_parafac,
    tucker as tl_tucker,
)

from lowrank.datasets import continuous_tensor
from lowrank.tensors import (
    FunBaT,
    cp_als,
    hosvd,
    non_negative_cp,
    non_negative_tucker,
    partial_tucker,
    randomized_cp,
    st_hosvd,
    tt_svd,
    tucker,
)
from lowrank.tensors._kalman import kalman_rts
from lowrank.tensors._statespace import stationary_covariance, transitions

RANK = 10


def planted_tucker(n, rank=RANK, noise=0.01, seed=0):
    rng = np.random.default_rng(seed)
    core = rng.standard_normal((rank,) * 3)
    U = [np.linalg.qr(rng.standard_normal((n, rank)))[0] for _ in range(3)]
    T = tl.tucker_to_tensor((core, U))
    E = rng.standard_normal(T.shape)
    return T + noise * np.linalg.norm(T) / np.linalg.norm(E) * E


def planted_cp(n, rank=RANK, noise=0.01, seed=0):
    """Uniform [0, 1) factors (TensorLy's random_cp law): collinear columns, the hard case for ALS."""
    rng = np.random.default_rng(seed)
    T = tl.cp_to_tensor((np.ones(rank), [rng.random((n, rank)) for _ in range(3)]))
    E = rng.standard_normal(T.shape)
    return T + noise * np.linalg.norm(T) / np.linalg.norm(E) * E


def rel_error(D, X):
    return float(np.linalg.norm(D.to_tensor() - X) / np.linalg.norm(X))


def _seconds(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


class TuckerSuite:
    params = [100, 200]
    param_names = ["n"]
    timeout = 600

    def setup(self, n):
        self.X = planted_tucker(n)

    def time_hosvd(self, n):
        hosvd(self.X, RANK)

    def time_st_hosvd(self, n):
        st_hosvd(self.X, RANK)

    def time_tucker(self, n):
        tucker(self.X, RANK)

    def time_partial_tucker(self, n):
        partial_tucker(self.X, RANK, modes=(0, 1))

    def time_tt_svd(self, n):
        tt_svd(self.X, RANK)

    def peakmem_tucker(self, n):
        tucker(self.X, RANK)

    def peakmem_hosvd(self, n):
        hosvd(self.X, RANK)


class TuckerVsTensorLy:
    """Speed-up of tucker over TensorLy's tucker(init="svd") at 200^3 rank 10 (same error to 1e-6)."""

    timeout = 1200

    def setup(self):
        self.X = planted_tucker(200)

    def track_speedup_vs_tensorly(self):
        ours, t_ours = _seconds(lambda: tucker(self.X, RANK))
        ref, t_ref = _seconds(lambda: tl_tucker(self.X, rank=[RANK] * 3, init="svd"))
        if rel_error(ours, self.X) > rel_error(tl.tucker_tensor.TuckerTensor(ref), self.X) + 1e-6:
            return 0.0
        return t_ref / t_ours

    track_speedup_vs_tensorly.unit = "x"


class CPSuite:
    params = [60, 100]
    param_names = ["n"]
    timeout = 600

    def setup(self, n):
        self.X = planted_cp(n)

    def time_cp_als(self, n):
        cp_als(self.X, RANK, rng=0)

    def peakmem_cp_als(self, n):
        cp_als(self.X, RANK, rng=0)

    def track_noise_floor_fraction(self, n):
        """Fraction of 10 seeds reaching relative error <= 0.0101 at 1% noise."""
        hits = 0
        for seed in range(10):
            X = planted_cp(n, seed=seed)
            hits += rel_error(cp_als(X, RANK, rng=seed), X) <= 0.0101
        return hits / 10

    def track_speedup_vs_tensorly_random_init(self, n):
        """parafac(init="random") time over ours (TensorLy's svd init is slower still)."""
        ours, t_ours = _seconds(lambda: cp_als(self.X, RANK, rng=0))
        _, t_ref = _seconds(lambda: parafac(self.X, RANK, init="random", random_state=0, tol=1e-8, n_iter_max=500))
        return t_ref / t_ours

    track_speedup_vs_tensorly_random_init.unit = "x"


class FunBaTSuite:
    """Per-epoch cost (numba Kalman, compiled in setup) at two N, and test RMSE on the synthetic function."""

    params = [1000, 10000]
    param_names = ["n_samples"]
    timeout = 900

    def setup(self, n_samples):
        self.data = continuous_tensor(n_samples, rng=0)
        # compile the numba Kalman kernel outside the timings (fits then always use it)
        P0 = stationary_covariance(1, 0.1, 1.0)
        A, Q = transitions(np.full(4, 0.1), 1, 0.1, 1.0, P0)
        kalman_rts(A, Q, P0, 1, np.ones((4, 1, 1)), np.ones((4, 1)), use_numba=True)

    def _fit(self, n_epochs):
        return FunBaT(rank=1, core="cp", lengthscale=0.1, n_epochs=n_epochs, tol=0, random_state=0).fit(
            self.data.coords, self.data.values
        )

    def time_five_epochs(self, n_samples):
        self._fit(5)

    def peakmem_five_epochs(self, n_samples):
        self._fit(5)

    def track_test_rmse(self, n_samples):
        model = FunBaT(rank=1, core="cp", lengthscale=0.1, n_epochs=100, random_state=0).fit(
            self.data.coords, self.data.values
        )
        X = np.random.default_rng(7).random((2000, 2))
        return float(np.sqrt(np.mean((model.predict(X) - self.data.function(X)) ** 2)))


def planted_nn_tucker(n, rank=5, noise=0.01, seed=0):
    rng = np.random.default_rng(seed)
    T = tl.tucker_to_tensor((rng.random((rank,) * 3), [rng.random((n, rank)) for _ in range(3)]))
    E = rng.standard_normal(T.shape)
    return np.maximum(T + noise * np.linalg.norm(T) / np.linalg.norm(E) * E, 0)


class _StopAfter:
    """A callback that stops at a wall time or once the error reaches a target."""

    def __init__(self, seconds=np.inf, target=-np.inf):
        self.seconds, self.target, self.start = seconds, target, time.perf_counter()

    def __call__(self, it, err, factors):
        return time.perf_counter() - self.start >= self.seconds or err <= self.target


class NonNegativeSuite:
    """non_negative_cp (rank 10, non-negative planted CP + 1% noise) and non_negative_tucker (rank 5)
    at n = 40 and 80 per mode, 50 sweeps each."""

    params = [40, 80]
    param_names = ["n"]
    timeout = 600

    def setup(self, n):
        self.X_cp = np.maximum(planted_cp(n), 0)
        self.X_tucker = planted_nn_tucker(n)

    def time_non_negative_cp(self, n):
        non_negative_cp(self.X_cp, RANK, n_iter_max=50, tol=0, rng=0)

    def peakmem_non_negative_cp(self, n):
        non_negative_cp(self.X_cp, RANK, n_iter_max=50, tol=0, rng=0)

    def time_non_negative_tucker(self, n):
        non_negative_tucker(self.X_tucker, 5, n_iter_max=50, tol=0, rng=0)

    def peakmem_non_negative_tucker(self, n):
        non_negative_tucker(self.X_tucker, 5, n_iter_max=50, tol=0, rng=0)


class NonNegativeVsTensorLy:
    """Same-process comparison with TensorLy's HALS (n = 60, 100 sweeps for TensorLy, tol=0).

    ``track_*_error_ratio_equal_time``: TensorLy's error / ours, ours stopped (callback) at TensorLy's
    wall time (> 1: ours is more accurate at equal time). ``track_*_speedup_equal_quality``: TensorLy's
    time / our time to reach TensorLy's final error (> 1: ours is faster), capped at 1,000 sweeps.
    """

    timeout = 900
    number = 1
    repeat = 1

    def setup(self):
        self.X_cp = np.maximum(planted_cp(60), 0)
        self.X_tucker = planted_nn_tucker(60)
        start = time.perf_counter()
        ref = non_negative_parafac_hals(self.X_cp, RANK, n_iter_max=100, tol=0, random_state=0)
        self.cp_ref = (time.perf_counter() - start, rel_error(tl.cp_tensor.CPTensor(ref), self.X_cp))
        start = time.perf_counter()
        ref = non_negative_tucker_hals(self.X_tucker, 5, n_iter_max=100, tol=0, random_state=0)
        self.tucker_ref = (time.perf_counter() - start, rel_error(tl.tucker_tensor.TuckerTensor(ref), self.X_tucker))

    def track_cp_error_ratio_equal_time(self):
        cp = non_negative_cp(self.X_cp, RANK, n_iter_max=100_000, tol=0, rng=0, callback=_StopAfter(seconds=self.cp_ref[0]))
        return self.cp_ref[1] / rel_error(cp, self.X_cp)

    def track_cp_speedup_equal_quality(self):
        _, seconds = _seconds(
            lambda: non_negative_cp(self.X_cp, RANK, n_iter_max=1000, tol=0, rng=0, callback=_StopAfter(target=self.cp_ref[1]))
        )
        return self.cp_ref[0] / seconds

    def track_tucker_error_ratio_equal_time(self):
        T = non_negative_tucker(self.X_tucker, 5, n_iter_max=100_000, tol=0, rng=0, callback=_StopAfter(seconds=self.tucker_ref[0]))
        return self.tucker_ref[1] / rel_error(T, self.X_tucker)

    def track_tucker_speedup_equal_quality(self):
        _, seconds = _seconds(
            lambda: non_negative_tucker(
                self.X_tucker, 5, n_iter_max=1000, tol=0, rng=0, callback=_StopAfter(target=self.tucker_ref[1])
            )
        )
        return self.tucker_ref[0] / seconds

    track_cp_error_ratio_equal_time.unit = "ratio"
    track_cp_speedup_equal_quality.unit = "x"
    track_tucker_error_ratio_equal_time.unit = "ratio"
    track_tucker_speedup_equal_quality.unit = "x"


class RandomizedCPSuite:
    """randomized_cp (rank 10, 100 samples per update, 50 sweeps) at n = 100 and 200 per mode, and
    same-process ratios against TensorLy's randomised_parafac with the same samples and sweeps."""

    params = [100, 200]
    param_names = ["n"]
    timeout = 900
    number = 1
    repeat = 1

    def setup(self, n):
        rng = np.random.default_rng(0)
        T = tl.cp_to_tensor((np.ones(RANK), [rng.standard_normal((n, RANK)) for _ in range(3)]))
        E = rng.standard_normal(T.shape)
        self.X = T + 0.01 * np.linalg.norm(T) / np.linalg.norm(E) * E

    def _ours(self):
        return randomized_cp(self.X, RANK, 10 * RANK, n_iter_max=50, tol=0, max_stagnation=0, rng=0)

    def _ref(self):
        return randomised_parafac(self.X, RANK, 10 * RANK, n_iter_max=50, tol=0, max_stagnation=0, init="svd", random_state=0)

    def time_randomized_cp(self, n):
        self._ours()

    def peakmem_randomized_cp(self, n):
        self._ours()

    def track_speedup_vs_tensorly(self, n):
        _, ours = _seconds(self._ours)
        _, ref = _seconds(self._ref)
        return ref / ours

    def track_error_ratio_vs_tensorly(self, n):
        """TensorLy's relative error / ours (> 1: ours is more accurate)."""
        ours = rel_error(self._ours(), self.X)
        ref = rel_error(tl.cp_tensor.CPTensor(self._ref()), self.X)
        return ref / ours

    track_speedup_vs_tensorly.unit = "x"
    track_error_ratio_vs_tensorly.unit = "ratio"
