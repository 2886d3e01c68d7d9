"""Functional Bayesian Tucker decomposition (FunBaT) for continuous-indexed tensor data.

Each entry ``y`` sits at real coordinates ``(x_1, ..., x_K)`` and is modelled as
``y = W x_1 u^1(x_1) ... x_K u^K(x_K) + eps`` with a Tucker core ``W ~ N(0, I)`` (or a CP core),
latent functions ``u^k_r ~ GP(0, Matern)`` and noise precision ``tau ~ Gamma``. Every Matern GP is
an exact linear state-space model over the sorted unique coordinates of its mode (see
``_statespace``), so each mode's posterior is one Kalman filter + RTS smoother pass over pseudo-
observations: conditional expectation propagation turns the likelihood of every entry, given the
other modes and the core, into a Gaussian message on ``u^k(x_k)`` whose expected natural parameters
are summed per unique coordinate. The core gets a Gaussian posterior (Bayesian linear regression on
expected Kronecker features), the noise precision a Gamma posterior; messages are damped.
"""

import logging
import math

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from lowrank._utils.progress import progress
from lowrank._utils.rng import as_generator
from lowrank._utils.validation import check_choice, check_float, check_int, validate_data
from lowrank.tensors._funbat_core import CPCore, TuckerCore
from lowrank.tensors._kalman import interpolate_states, kalman_rts, numba_ready
from lowrank.tensors._statespace import KERNELS, stationary_covariance, transitions

__all__ = ["FunBaT"]

logger = logging.getLogger("lowrank.tensors")
_PY_SECONDS_PER_STEP = 75e-6
_NUMBA_WORTH_SECONDS = 10.0


class _Mode:
    """Per-mode state: unique coordinates, grouping of observations, chain parameters, posterior."""

    def __init__(self, coords, order, lengthscale, variance):
        self.uniq, self.inverse = np.unique(coords, return_inverse=True)
        self.order_obs = np.argsort(self.inverse, kind="stable")
        self.starts = np.searchsorted(self.inverse[self.order_obs], np.arange(self.uniq.size))
        self.order, self.lengthscale, self.variance = order, lengthscale, variance
        self.P0 = stationary_covariance(order, lengthscale, variance)
        gaps = np.diff(self.uniq, prepend=self.uniq[0])
        self.A, self.Q = transitions(gaps, order, lengthscale, variance, self.P0)
        self.lam = None  # damped messages (J, R, R), (J, R)
        self.eta = None

    def group_sum(self, values):
        """Sum per-observation values over observations sharing a unique coordinate."""
        return np.add.reduceat(values[self.order_obs], self.starts, axis=0)

    def transitions(self, gaps):
        return transitions(gaps, self.order, self.lengthscale, self.variance, self.P0)


def _binned_init(Xs, ys, modes, ranks, core_kind, variance, rng):
    """Starting factor means (at each mode's unique coordinates) and core mean from a discrete fit.

    Coordinates are cut into quantile bins (about ``(N / 2)^(1/K)`` per mode, each unique coordinate its
    own bin when there are few); the tensor of bin means, with empty cells masked, is decomposed by
    the masked Tucker (or CP) routine; factor columns are interpolated linearly between bin centres
    and rescaled to the prior's spread.
    """
    from lowrank.tensors._cp import cp_body
    from lowrank.tensors._tucker import hooi_body

    N, K = Xs.shape
    target = max(2, int(round((N / 2) ** (1.0 / K))))
    cells, centers, shape = np.zeros(N, dtype=np.int64), [], []
    for k, mode in enumerate(modes):
        J = mode.uniq.size
        B = int(min(J, min(64, max(ranks[k] + 1, target))))
        if B == J:
            b = mode.inverse
        else:
            edges = np.quantile(Xs[:, k], np.linspace(0, 1, B + 1)[1:-1])
            b = np.searchsorted(edges, Xs[:, k], side="right")
            B = int(b.max()) + 1
        counts = np.bincount(b, minlength=B)
        centers.append(np.bincount(b, weights=Xs[:, k], minlength=B) / np.maximum(counts, 1))
        cells = cells * B + b
        shape.append(B)
    size = math.prod(shape)
    counts = np.bincount(cells, minlength=size).reshape(shape)
    sums = np.bincount(cells, weights=ys, minlength=size).reshape(shape)
    M = (counts > 0).astype(np.float64)
    T = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
    r = [min(R, B) for R, B in zip(ranks, shape)]
    try:
        if core_kind == "cp":
            weights, factors, _, _ = cp_body(T, ranks[0], "svd", 0, False, False, 100, 1e-6, M, rng, np)
            core_mean = np.asarray(weights)
        else:
            core_mean, factors, _ = hooi_body(T, r, list(range(K)), "svd", 50, 1e-6, "gram", M, rng, np)
    except (np.linalg.LinAlgError, ValueError):
        return [rng.standard_normal((m.uniq.size, R)) * math.sqrt(variance) for m, R in zip(modes, ranks)], (
            rng.standard_normal(math.prod(ranks) if core_kind == "tucker" else ranks[0])
        )
    means, scales = [], []
    for k, mode in enumerate(modes):
        F = np.asarray(factors[k])
        # bins with no entry have no centre; interpolate over the others
        keep = np.bincount(cells // math.prod(shape[k + 1 :]) % shape[k], minlength=shape[k]) > 0
        m = np.column_stack([np.interp(mode.uniq, centers[k][keep], F[keep, j]) for j in range(F.shape[1])])
        if m.shape[1] < ranks[k]:  # more latent functions than bins: small random extra columns
            m = np.column_stack([m, 0.1 * rng.standard_normal((m.shape[0], ranks[k] - m.shape[1]))])
        scale = math.sqrt(variance) / max(float(np.sqrt(np.mean(m * m))), 1e-12)
        means.append(m * scale)
        scales.append(scale)
    if core_kind == "cp":
        mu = core_mean / math.prod(scales)
    else:
        full = np.zeros(ranks)
        full[tuple(slice(0, x) for x in r)] = np.asarray(core_mean)
        mu = full.reshape(-1) / math.prod(scales)
    return means, mu


def _marginals(m, P, R, d):
    obs = np.arange(R) * d
    mean = m[:, obs]
    cov = P[:, obs][:, :, obs]
    return mean, cov + mean[:, :, None] * mean[:, None, :]


class FunBaT(RegressorMixin, BaseEstimator):
    """Functional Bayesian Tucker decomposition of continuous-indexed tensor data.

    Parameters
    ----------
    rank : int or sequence of int, default=2
        Number of latent functions per mode (one int for all modes, or one per mode; ``core="cp"``
        needs a single int).
    kernel : {"matern12", "matern32", "matern52"}, default="matern32"
        Matern smoothness 1/2, 3/2 or 5/2 of the GP prior on every latent function.
    lengthscale : float or sequence of float, default=0.1
        Kernel lengthscale per mode, in units of the mode's training range (coordinates are scaled
        to [0, 1] with the training minimum and maximum; new coordinates use the same map).
    variance : float, default=1.0
        Prior variance of the latent functions.
    core : {"tucker", "cp"}, default="tucker"
        Dense Tucker core (``prod(rank)`` weights) or a diagonal CP core (``rank`` weights).
    init : {"binned", "random"}, default="binned"
        ``"binned"``: bin every mode's coordinates, decompose the tensor of bin means with the masked
        :func:`~lowrank.tensors.tucker` (or :func:`~lowrank.tensors.cp_als`) and interpolate its factors
        to start the posterior means (far fewer bad local optima); ``"random"``: Gaussian means.
    n_epochs : int, default=100
        Maximum number of sweeps (all modes, then the core, then the noise).
    damping : float, default=0.7
        Step size in (0, 1] on the natural parameters of the messages (1 = no damping).
    tol : float, default=1e-6
        Stop when the training RMSE changes by less than ``tol`` times itself between sweeps.
    noise_prior : tuple of float, default=(1e-3, 1e-3)
        Shape and rate of the Gamma prior on the noise precision (of the standardized values).
    verbose : bool, default=False
        Show a progress bar over sweeps.
    random_state : None, int or numpy.random.Generator, default=None
        Initialization of the latent function means and the core.

    Attributes
    ----------
    n_features_in_ : int
        Number of modes K (columns of the coordinates).
    core_mean_ : ndarray
        Posterior mean of the core (shape ``rank`` per mode for Tucker, ``(rank,)`` for CP), for the
        standardized values.
    core_cov_ : ndarray of shape (P, P)
        Posterior covariance of the vectorized core (P = ``prod(rank)`` or ``rank``).
    noise_precision_ : float
        Posterior mean of the noise precision (in the original units of the values).
    train_rmse_ : list of float
        Training RMSE of the posterior mean after each sweep (the learning curve).
    n_iter_ : int
        Number of sweeps run.

    References
    ----------
    Fang, Yu, Li, Wang, Kirby, Zhe, "Functional Bayesian Tucker Decomposition for Continuous-indexed
    Tensor Data", ICLR 2024, arXiv:2311.04829. Hartikainen and Sarkka, "Kalman filtering and smoothing
    solutions to temporal Gaussian process regression models", MLSP 2010.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.tensors import FunBaT
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((300, 2))
    >>> y = np.sin(2 * np.pi * X[:, 0]) * np.cos(np.pi * X[:, 1])
    >>> model = FunBaT(rank=1, core="cp", lengthscale=0.3, n_epochs=30, random_state=0).fit(X, y)
    >>> mean, std = model.predict(rng.random((5, 2)), return_std=True)
    >>> bool(model.train_rmse_[-1] < 0.05), mean.shape, bool((std > 0).all())
    (True, (5,), True)
    """

    def __init__(
        self,
        rank=2,
        *,
        kernel="matern32",
        lengthscale=0.1,
        variance=1.0,
        core="tucker",
        init="binned",
        n_epochs=100,
        damping=0.7,
        tol=1e-6,
        noise_prior=(1e-3, 1e-3),
        verbose=False,
        random_state=None,
    ):
        self.rank = rank
        self.kernel = kernel
        self.lengthscale = lengthscale
        self.variance = variance
        self.core = core
        self.init = init
        self.n_epochs = n_epochs
        self.damping = damping
        self.tol = tol
        self.noise_prior = noise_prior
        self.verbose = verbose
        self.random_state = random_state

    # ------------------------------------------------------------------ validation

    def _iv(self, K):
        check_choice(self.kernel, "kernel", tuple(KERNELS))
        check_choice(self.core, "core", ("tucker", "cp"))
        check_choice(self.init, "init", ("binned", "random"))
        if self.core == "cp":
            ranks = [check_int(self.rank, "rank", low=1)] * K
        elif isinstance(self.rank, (int, np.integer)) and not isinstance(self.rank, bool):
            ranks = [check_int(self.rank, "rank", low=1)] * K
        else:
            ranks = [check_int(r, "rank", low=1) for r in self.rank]
            if len(ranks) != K:
                raise ValueError(f"`rank` must give one rank per mode ({K}), got {len(ranks)}")
        if np.ndim(self.lengthscale) == 0:
            scales = [check_float(self.lengthscale, "lengthscale", low=0, low_inclusive=False)] * K
        else:
            scales = [check_float(s, "lengthscale", low=0, low_inclusive=False) for s in self.lengthscale]
            if len(scales) != K:
                raise ValueError(f"`lengthscale` must give one value per mode ({K}), got {len(scales)}")
        variance = check_float(self.variance, "variance", low=0, low_inclusive=False)
        n_epochs = check_int(self.n_epochs, "n_epochs", low=1)
        damping = check_float(self.damping, "damping", low=0, high=1, low_inclusive=False)
        tol = check_float(self.tol, "tol", low=0)
        try:
            a0, b0 = (check_float(v, "noise_prior", low=0, low_inclusive=False) for v in self.noise_prior)
        except TypeError:
            raise TypeError("`noise_prior` must be a pair (shape, rate) of positive floats") from None
        return ranks, scales, variance, n_epochs, damping, tol, a0, b0

    # ------------------------------------------------------------------ fitting

    def fit(self, X, y):
        """Fit to entries ``y`` at coordinates ``X`` (n_entries, n_modes). Returns self."""
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        N, K = X.shape
        ranks, scales, variance, n_epochs, damping, tol, a0, b0 = self._iv(K)
        rng = as_generator(self.random_state, name="random_state")
        order = KERNELS[self.kernel]
        d = order + 1

        self._lo = X.min(axis=0)
        span = X.max(axis=0) - self._lo
        self._span = np.where(span > 0, span, 1.0)
        Xs = (X - self._lo) / self._span
        self._y_mean = float(y.mean())
        y_std = float(y.std())
        self._y_std = y_std if y_std > 0 else 1.0
        ys = (y - self._y_mean) / self._y_std

        modes = [_Mode(Xs[:, k], order, scales[k], variance) for k in range(K)]
        # numba pays a one-off compile (tens of seconds on a busy machine): small fits run the same
        # Kalman code uncompiled when that is cheaper
        use_numba = numba_ready() or n_epochs * sum(m.uniq.size for m in modes) * _PY_SECONDS_PER_STEP > _NUMBA_WORTH_SECONDS
        core = CPCore(ranks[0], K) if self.core == "cp" else TuckerCore(ranks)
        self._core_model = core
        if self.init == "binned" and N >= 8 and float(ys @ ys) > 0:
            init_means, mu = _binned_init(Xs, ys, modes, ranks, self.core, variance, rng)
        else:  # random means with prior-scale spread break the symmetry of the factors
            init_means = [rng.standard_normal((m.uniq.size, R)) * math.sqrt(variance) for m, R in zip(modes, ranks)]
            mu = rng.standard_normal(core.size)
        means, seconds = [], []
        for k, mode in enumerate(modes):
            m = init_means[k]
            S = 0.1 * variance * np.eye(ranks[k]) + m[:, :, None] * m[:, None, :]
            means.append(m[mode.inverse])
            seconds.append(S[mode.inverse])
        M2 = np.outer(mu, mu) + 0.1 * np.eye(core.size)
        core_prec = core_nat = None
        tau = 10.0
        a_post = a0 + 0.5 * N
        y2 = float(ys @ ys)

        self.train_rmse_ = []
        self._chains = [None] * K
        bar = progress(range(n_epochs), desc="FunBaT", verbose=self.verbose, unit="epoch")
        for _ in bar:
            for k, mode in enumerate(modes):
                Ebb, Eb = core.mode_messages(k, means, seconds, mu, M2)
                lam = tau * mode.group_sum(Ebb)
                eta = tau * mode.group_sum(ys[:, None] * Eb)
                if mode.lam is not None:
                    lam = damping * lam + (1 - damping) * mode.lam
                    eta = damping * eta + (1 - damping) * mode.eta
                mode.lam, mode.eta = lam, eta
                m_f, P_f, m_s, P_s = kalman_rts(mode.A, mode.Q, mode.P0, ranks[k], lam, eta, use_numba=use_numba)
                self._chains[k] = (m_f, P_f, m_s, P_s)
                m_u, S_u = _marginals(m_s, P_s, ranks[k], d)
                means[k], seconds[k] = m_u[mode.inverse], S_u[mode.inverse]
            SH = core.sum_second(seconds)
            prec = np.eye(core.size) + tau * SH
            nat = tau * core.sum_y_features(ys, means)
            if core_prec is not None:
                prec = damping * prec + (1 - damping) * core_prec
                nat = damping * nat + (1 - damping) * core_nat
            core_prec, core_nat = prec, nat
            cov = np.linalg.inv(prec)
            cov = 0.5 * (cov + cov.T)
            mu = cov @ nat
            M2 = cov + np.outer(mu, mu)
            Ef = core.mean_f(means, mu)
            sq = y2 - 2 * float(ys @ Ef) + float(np.sum(M2 * SH))
            tau = a_post / (b0 + 0.5 * max(sq, 1e-12 * N))
            rmse = float(np.sqrt(np.mean((ys - Ef) ** 2))) * self._y_std
            self.train_rmse_.append(rmse)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(rmse=rmse)
            if len(self.train_rmse_) > 1 and abs(self.train_rmse_[-2] - rmse) <= tol * max(self.train_rmse_[-2], 1e-300):
                break
        logger.debug("FunBaT: %d sweeps, train RMSE %.4g", len(self.train_rmse_), self.train_rmse_[-1])
        self._modes = modes
        self._d, self._ranks = d, ranks
        self._mu, self._M2, self._tau = mu, M2, tau
        self.core_mean_ = mu.reshape(ranks) if self.core == "tucker" else mu.copy()
        self.core_cov_ = cov
        self.noise_precision_ = tau / self._y_std**2
        self.n_iter_ = len(self.train_rmse_)
        return self

    # ------------------------------------------------------------------ prediction

    def latent_functions(self, mode, coords):
        """Posterior mean and standard deviation of mode ``mode``'s latent functions at ``coords``.

        Returns ``(mean, std)`` of shape (n, rank of the mode), in the model's internal scaling.
        """
        check_is_fitted(self)
        mode = check_int(mode, "mode", low=0, high=self.n_features_in_ - 1)
        t = (np.asarray(coords, dtype=np.float64).reshape(-1) - self._lo[mode]) / self._span[mode]
        if not np.isfinite(t).all():
            raise ValueError("`coords` must not contain NaN or infinity")
        m, S = self._mode_moments(mode, t)
        var = np.clip(np.einsum("nii->ni", S) - m * m, 0, None)
        return m, np.sqrt(var)

    def _mode_moments(self, k, t):
        mode = self._modes[k]
        m_f, P_f, m_s, P_s = self._chains[k]
        mean, cov = interpolate_states(mode.uniq, t, m_f, P_f, m_s, P_s, mode.transitions, self._ranks[k], mode.P0)
        return _marginals(mean, cov, self._ranks[k], self._d)

    def predict(self, X, return_std=False):
        """Predictive mean (and standard deviation of a new noisy entry) at coordinates ``X``.

        Works at unseen coordinates: between training coordinates (interpolation) and beyond
        them (extrapolation, where the latent functions relax to their prior).
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        Xs = (X - self._lo) / self._span
        means, seconds = [], []
        for k in range(X.shape[1]):
            m, S = self._mode_moments(k, Xs[:, k])
            means.append(m)
            seconds.append(S)
        Ef = self._core_model.mean_f(means, self._mu)
        mean = Ef * self._y_std + self._y_mean
        if not return_std:
            return mean
        var_f = np.clip(self._core_model.second_f(seconds, self._M2) - Ef**2, 0, None)
        std = np.sqrt(var_f + 1.0 / self._tau) * self._y_std
        return mean, std

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        # a low-rank multilinear model of per-coordinate functions: generic regression data need not fit it
        tags.regressor_tags.poor_score = True
        return tags

    @classmethod
    def _sklearn_check_instances(cls):
        return [cls(rank=1, n_epochs=5, lengthscale=0.5, random_state=0)]
