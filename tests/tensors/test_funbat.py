"""FunBaT: state-space GPs vs the Matern kernel and dense GP posteriors, core posterior vs Bayesian
linear regression, planted latent functions, bad input."""

import numpy as np
import pytest
import scipy.linalg

from lowrank.datasets import continuous_tensor
from lowrank.tensors import FunBaT
from lowrank.tensors import _funbat_core
from lowrank.tensors._funbat_core import CPCore, TuckerCore
from lowrank.tensors._kalman import interpolate_states, kalman_rts
from lowrank.tensors._statespace import feedback_matrix, matern_kernel, stationary_covariance, transitions

ORDERS = [0, 1, 2]


# ----------------------------------------------------------------------------- state space


@pytest.mark.parametrize("order", ORDERS)
def test_state_space_covariance_is_the_matern_kernel(order):
    ell, var = 0.3, 1.7
    P0 = stationary_covariance(order, ell, var)
    gaps = np.array([0.0, 0.01, 0.1, 0.5, 2.0])
    A, Q = transitions(gaps, order, ell, var, P0)
    # Cov(u(t + delta), u(t)) = [A(delta) Pinf]_00 must equal k(delta)
    np.testing.assert_allclose((A @ P0)[:, 0, 0], matern_kernel(gaps, order, ell, var), rtol=1e-12, atol=1e-15)
    # closed-form transition = matrix exponential of the SDE's feedback matrix
    F, _ = feedback_matrix(order, ell)
    for g, Ag in zip(gaps, A):
        np.testing.assert_allclose(Ag, scipy.linalg.expm(F * g), rtol=1e-10, atol=1e-12)
    # Pinf solves the Lyapunov equation: F P + P F^T is zero except the white-noise corner
    lyap = F @ P0 + P0 @ F.T
    lyap[-1, -1] = 0.0
    np.testing.assert_allclose(lyap, 0.0, atol=1e-9 * np.abs(P0).max())
    assert np.linalg.eigvalsh(Q[1:]).min() > -1e-12


def _dense_posterior(t, Lam, eta, order, ell, var):
    """Posterior of R independent GPs at t observed through joint Gaussian messages (dense algebra)."""
    J, R = eta.shape
    K = matern_kernel(t[:, None] - t[None, :], order, ell, var)
    Kbig = np.kron(np.eye(R), K)  # function-major ordering
    L = np.zeros((R * J, R * J))
    for j in range(J):
        idx = np.arange(R) * J + j
        L[np.ix_(idx, idx)] = Lam[j]
    cov = np.linalg.inv(np.linalg.inv(Kbig) + L)
    mean = cov @ eta.T.reshape(-1)
    return mean.reshape(R, J).T, cov


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("R", [1, 2])
def test_kalman_rts_equals_dense_gp_posterior(order, R):
    rng = np.random.default_rng(order * 10 + R)
    J, ell, var = 25, 0.25, 1.3
    t = np.sort(rng.random(J))
    B = rng.standard_normal((J, R, R))
    Lam = B @ np.swapaxes(B, 1, 2) * 5.0  # coupled, some nearly singular precisions
    Lam[3] = 0.0  # a coordinate with no information at all
    eta = rng.standard_normal((J, R)) * 3
    A, Q = transitions(np.diff(t, prepend=t[0]), order, ell, var)
    P0 = stationary_covariance(order, ell, var)
    m_f, P_f, m_s, P_s = kalman_rts(A, Q, P0, R, Lam, eta, use_numba=False)
    d = order + 1
    obs = np.arange(R) * d
    mean, cov = _dense_posterior(t, Lam, eta, order, ell, var)
    np.testing.assert_allclose(m_s[:, obs], mean, atol=1e-8)
    for j in range(J):
        idx = np.arange(R) * J + j
        np.testing.assert_allclose(P_s[j][np.ix_(obs, obs)], cov[np.ix_(idx, idx)], atol=1e-8)

    # interpolation and extrapolation at new coordinates = the dense GP's predictive distribution
    t_new = np.array([-0.3, t[0] - 0.01, 0.5 * (t[4] + t[5]), t[7], t[-1] + 0.2, 1.5])
    mean_new, cov_new = interpolate_states(t, t_new, m_f, P_f, m_s, P_s, lambda g: transitions(g, order, ell, var, P0), R, P0)
    K = matern_kernel(t[:, None] - t[None, :], order, ell, var)
    Ks = matern_kernel(t_new[:, None] - t[None, :], order, ell, var)
    Kinv = np.linalg.inv(K)
    for r in range(R):
        # E[u_r(t*)] = Ks K^{-1} E[u_r(t)];  Var = k** - Ks K^{-1} Ks^T + Ks K^{-1} Cov K^{-1} Ks^T
        sl = slice(r * J, (r + 1) * J)
        C = Ks @ Kinv
        ref_mean = C @ mean[:, r]
        ref_var = var - np.einsum("ij,ij->i", C, Ks) + np.einsum("ij,jk,ik->i", C, cov[sl, sl], C)
        np.testing.assert_allclose(mean_new[:, r * d], ref_mean, atol=1e-8)
        np.testing.assert_allclose(cov_new[:, r * d, r * d], ref_var, atol=1e-8)


@pytest.mark.slow
def test_numba_kalman_matches_python():
    rng = np.random.default_rng(1)
    J, R = 40, 2
    t = np.sort(rng.random(J))
    B = rng.standard_normal((J, R, R))
    Lam, eta = B @ np.swapaxes(B, 1, 2), rng.standard_normal((J, R))
    A, Q = transitions(np.diff(t, prepend=t[0]), 1, 0.2, 1.0)
    P0 = stationary_covariance(1, 0.2, 1.0)
    a = kalman_rts(A, Q, P0, R, Lam, eta, use_numba=False)
    b = kalman_rts(A, Q, P0, R, Lam, eta, use_numba=True)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- core statistics


def _random_moments(rng, N, ranks):
    means, seconds = [], []
    for R in ranks:
        m = rng.standard_normal((N, R))
        B = rng.standard_normal((N, R, R)) * 0.3
        means.append(m)
        seconds.append(B @ np.swapaxes(B, 1, 2) + m[:, :, None] * m[:, None, :])
    return means, seconds


def _kron_all(vs):
    out = np.ones(1)
    for v in vs:
        out = np.kron(out, v)
    return out


def _kron_all_mats(ms):
    out = np.ones((1, 1))
    for M in ms:
        out = np.kron(out, M)
    return out


def test_tucker_core_posterior_is_bayesian_linear_regression():
    """With point-mass factors the core update is BLR on Kronecker features Phi_n = kron_k u^k_n."""
    rng = np.random.default_rng(2)
    N, ranks, tau = 60, [2, 3, 2], 4.0
    means = [rng.standard_normal((N, R)) for R in ranks]
    seconds = [m[:, :, None] * m[:, None, :] for m in means]
    y = rng.standard_normal(N)
    core = TuckerCore(ranks)
    prec = np.eye(core.size) + tau * core.sum_second(seconds)
    mu = np.linalg.solve(prec, tau * core.sum_y_features(y, means))
    Phi = np.stack([_kron_all([m[n] for m in means]) for n in range(N)])
    cov_ref = np.linalg.inv(np.eye(core.size) + tau * Phi.T @ Phi)  # N(0, I) prior, noise 1/tau
    mu_ref = tau * cov_ref @ Phi.T @ y
    np.testing.assert_allclose(mu, mu_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.linalg.inv(prec), cov_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(core.mean_f(means, mu), Phi @ mu, rtol=1e-12)


def test_tucker_core_statistics_against_explicit_kronecker_products(monkeypatch):
    rng = np.random.default_rng(3)
    N, ranks = 7, [2, 3, 2]
    means, seconds = _random_moments(rng, N, ranks)
    core = TuckerCore(ranks)
    P = core.size
    B = rng.standard_normal((P, P))
    mu = rng.standard_normal(P)
    M2 = B @ B.T + np.outer(mu, mu)
    H = [_kron_all_mats([s[n] for s in seconds]) for n in range(N)]
    ref_sum = sum(H)
    for chunk in (1 << 21, 5):  # the default and a tiny chunk give the same sums
        monkeypatch.setattr(_funbat_core, "_CHUNK_ELEMS", chunk)
        np.testing.assert_allclose(core.sum_second(seconds), ref_sum, rtol=1e-12)
        np.testing.assert_allclose(core.second_f(seconds, M2), [np.sum(M2 * h) for h in H], rtol=1e-12)
        for k in range(3):
            Ebb, Eb = core.mode_messages(k, means, seconds, mu, M2)
            W = mu.reshape(ranks)
            for n in range(N):
                # b_n = W_(k) h_n with h_n = kron of the other modes; E[b b^T] = sum_cd E[W_ac W_bd] E[h_c h_d]
                others = [m for m in range(3) if m != k]
                Hk = _kron_all_mats([seconds[m][n] for m in others])
                hk = _kron_all([means[m][n] for m in others])
                T2 = M2.reshape(ranks + ranks)
                perm = [k] + others + [3 + k] + [3 + m for m in others]
                M2k = np.transpose(T2, perm).reshape(ranks[k], -1, ranks[k], Hk.shape[0])
                ref = np.einsum("acbd,cd->ab", M2k, Hk)
                np.testing.assert_allclose(Ebb[n], ref, rtol=1e-10, atol=1e-12)
                np.testing.assert_allclose(Eb[n], np.moveaxis(W, k, 0).reshape(ranks[k], -1) @ hk, rtol=1e-12)


def test_cp_core_equals_tucker_core_with_superdiagonal_weights():
    rng = np.random.default_rng(4)
    N, R, K = 6, 3, 3
    means, seconds = _random_moments(rng, N, [R] * K)
    B = rng.standard_normal((R, R))
    mu = rng.standard_normal(R)
    M2 = B @ B.T + np.outer(mu, mu)
    # embed the R weights on the superdiagonal of an R x R x R core
    E = np.zeros((R**K, R))
    for r in range(R):
        E[np.ravel_multi_index((r,) * K, (R,) * K), r] = 1.0
    cp, tk = CPCore(R, K), TuckerCore([R] * K)
    np.testing.assert_allclose(cp.sum_second(seconds), E.T @ tk.sum_second(seconds) @ E, rtol=1e-12)
    np.testing.assert_allclose(cp.second_f(seconds, M2), tk.second_f(seconds, E @ M2 @ E.T), rtol=1e-12)
    np.testing.assert_allclose(cp.mean_f(means, mu), tk.mean_f(means, E @ mu), rtol=1e-12)
    for k in range(K):
        a, b = cp.mode_messages(k, means, seconds, mu, M2), tk.mode_messages(k, means, seconds, E @ mu, E @ M2 @ E.T)
        np.testing.assert_allclose(a[0], b[0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(a[1], b[1], rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------- end to end


def _rmse(a, b):
    return float(np.sqrt(np.mean((a - b) ** 2)))


@pytest.mark.parametrize("core", ["cp", "tucker"])
def test_recovers_the_paper_synthetic_function(core):
    data = continuous_tensor(250, noise=0.001, rng=0)
    model = FunBaT(rank=1, core=core, lengthscale=0.1, n_epochs=25, random_state=0).fit(data.coords, data.values)
    X_test = np.random.default_rng(1).random((300, 2))
    mean, std = model.predict(X_test, return_std=True)
    truth = data.function(X_test)
    assert _rmse(mean, truth) < 0.01 * np.std(truth) / 0.07  # ~ 0.01 for a signal spread of ~0.07
    assert np.mean(np.abs(mean - truth) < 3 * std) > 0.9
    assert model.train_rmse_[-1] < model.train_rmse_[0]
    # the fitted noise level recovers the planted 0.001 within a factor of a few
    assert 1e-4 < 1 / np.sqrt(model.noise_precision_) < 5e-3


def test_recovers_three_mode_tucker_and_extrapolation_widens_uncertainty():
    # (mean-field posteriors have local optima: some seeds stall at ~0.06, see docs/tensors.md)
    data = continuous_tensor(400, kind="tucker3", noise=0.01, rng=0)
    model = FunBaT(rank=2, lengthscale=0.15, n_epochs=25, random_state=0).fit(data.coords, data.values)
    X_test = np.random.default_rng(3).random((300, 3))
    truth = data.function(X_test)
    assert _rmse(model.predict(X_test), truth) < 0.2 * np.std(truth)
    # outside [0, 1] the latent functions relax to the prior: wider predictive std
    _, std_in = model.predict(np.full((1, 3), 0.5), return_std=True)
    _, std_out = model.predict(np.array([[0.5, 0.5, 3.0]]), return_std=True)
    assert std_out[0] > std_in[0]


def test_latent_functions_track_planted_function_up_to_scale():
    data = continuous_tensor(250, noise=0.001, rng=5)
    model = FunBaT(rank=1, core="cp", lengthscale=0.1, n_epochs=25, random_state=1).fit(data.coords, data.values)
    t = np.linspace(0.05, 0.95, 50)
    est, std = model.latent_functions(0, t)
    truth = np.sin(2 * np.pi * t) ** 2 * np.cos(2 * np.pi * t)
    corr = abs(np.corrcoef(est[:, 0], truth)[0, 1])
    assert corr > 0.99
    assert std.shape == (50, 1) and (std >= 0).all()


@pytest.mark.slow
def test_binned_start_avoids_the_local_optimum_of_a_random_start():
    data = continuous_tensor(600, kind="tucker3", noise=0.01, rng=1)
    X_test = np.random.default_rng(99).random((500, 3))
    truth = data.function(X_test)
    errors = {}
    for init in ("random", "binned"):
        model = FunBaT(rank=2, lengthscale=0.15, init=init, n_epochs=100, random_state=1).fit(data.coords, data.values)
        errors[init] = _rmse(model.predict(X_test), truth)
    assert errors["binned"] < 0.02 < errors["random"]  # measured: 0.0078 vs 0.060


def test_same_seed_same_fit_and_matern_kernels_run():
    data = continuous_tensor(150, kind="cp3", noise=0.01, rng=6)
    for kernel in ("matern12", "matern52"):
        a = FunBaT(rank=2, core="cp", kernel=kernel, n_epochs=5, random_state=3).fit(data.coords, data.values)
        b = FunBaT(rank=2, core="cp", kernel=kernel, n_epochs=5, random_state=3).fit(data.coords, data.values)
        np.testing.assert_array_equal(a.predict(data.coords), b.predict(data.coords))


@pytest.mark.parametrize(
    "params, X, y, exc, match",
    [
        ({}, np.zeros((5, 2)), np.zeros(4), ValueError, "inconsistent numbers of samples"),
        ({}, np.array([[0.0, np.nan], [1.0, 2.0]]), np.zeros(2), ValueError, "NaN"),
        ({}, np.zeros((3, 2)), np.array([0.0, np.inf, 1.0]), ValueError, "infinity|NaN"),
        ({"kernel": "rbf"}, np.random.rand(5, 2), np.zeros(5), ValueError, "kernel"),
        ({"core": "dense"}, np.random.rand(5, 2), np.zeros(5), ValueError, "core"),
        ({"rank": (1, 2, 3)}, np.random.rand(5, 2), np.zeros(5), ValueError, "one rank per mode"),
        ({"rank": 0}, np.random.rand(5, 2), np.zeros(5), ValueError, "rank"),
        ({"core": "cp", "rank": (1, 2)}, np.random.rand(5, 2), np.zeros(5), TypeError, "rank"),
        ({"lengthscale": -1.0}, np.random.rand(5, 2), np.zeros(5), ValueError, "lengthscale"),
        ({"lengthscale": (0.1, 0.2, 0.3)}, np.random.rand(5, 2), np.zeros(5), ValueError, "lengthscale"),
        ({"damping": 0.0}, np.random.rand(5, 2), np.zeros(5), ValueError, "damping"),
        ({"init": "kmeans"}, np.random.rand(5, 2), np.zeros(5), ValueError, "init"),
        ({"noise_prior": 1.0}, np.random.rand(5, 2), np.zeros(5), TypeError, "noise_prior"),
    ],
)
def test_bad_input(params, X, y, exc, match):
    with pytest.raises(exc, match=match):
        FunBaT(n_epochs=1, **params).fit(X, y)


def test_memory_stays_below_one_entry_by_core_squared_array():
    """Peak memory of a Tucker fit is far below the N x R^(2K) array the reference code builds."""
    import tracemalloc

    rng = np.random.default_rng(0)
    N, K, R = 20000, 3, 3
    X = rng.integers(0, 30, size=(N, K)) / 29.0  # 30 unique coordinates per mode: cheap Kalman passes
    y = np.sin(3 * X[:, 0]) * np.cos(2 * X[:, 1]) + X[:, 2]
    tracemalloc.start()
    FunBaT(rank=R, init="random", n_epochs=1, random_state=0).fit(X, y)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 0.4 * N * R ** (2 * K) * 8  # 117 MB for the reference layout


def test_predict_checks_number_of_modes():
    data = continuous_tensor(50, rng=0)
    model = FunBaT(rank=1, n_epochs=2).fit(data.coords, data.values)
    with pytest.raises(ValueError, match="features"):
        model.predict(np.zeros((3, 3)))
