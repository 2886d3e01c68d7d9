"""complete_matrix and the estimators against planted truth, analytic error levels, a dense
SoftImpute written here from the paper's formula, and each other."""

import numpy as np
import pytest
import scipy.sparse as sp

from lowrank.completion import AltMin, CompletionResult, RobustAltMin, SoftImpute, complete_matrix
from lowrank.datasets import planted_low_rank

ALTERNATING = [
    pytest.param(dict(method="altmin"), id="altmin"),
    pytest.param(dict(method="robust_altmin"), id="robust-gram"),
    pytest.param(dict(method="robust_altmin", preconditioner="sketch"), id="robust-sketch"),
]


@pytest.fixture(scope="module")
def planted():
    return planted_low_rank(300, 200, 3, 0.3, rng=1)


def _dense_with_nan(planted):
    X = np.full(planted.shape, np.nan)
    coo = planted.observed.tocoo()
    X[coo.row, coo.col] = coo.data
    return X


@pytest.mark.parametrize("kwargs", ALTERNATING)
def test_exact_recovery_of_planted_incoherent_matrix(planted, kwargs):
    result = complete_matrix(planted.observed, 3, tol=1e-13, max_iter=100, rng=0, **kwargs)
    assert planted.relative_error(result) <= 1e-6
    assert result.converged
    # the reported training RMSE is the true one
    coo = planted.observed.tocoo()
    rmse = np.sqrt(np.mean((result.predict(coo.row, coo.col) - coo.data) ** 2))
    assert result.history["train_rmse"][-1] == pytest.approx(rmse, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("kwargs", ALTERNATING[:2])
def test_exact_recovery_rectangular_rank_five(kwargs):
    planted = planted_low_rank(150, 400, 5, 0.25, rng=3)
    result = complete_matrix(planted.observed, 5, tol=1e-13, max_iter=200, rng=1, **kwargs)
    assert planted.relative_error(result) <= 1e-6


@pytest.mark.parametrize("noise", [1e-3, 1e-2, 1e-1])
@pytest.mark.parametrize("method", ["altmin", "robust_altmin"])
def test_error_is_proportional_to_noise(noise, method):
    # Least squares over the (m + n - k) k dimensional manifold of rank-k matrices: the
    # Frobenius error of the fit is about noise * rms(M) * sqrt(k (m + n - k) / |Omega|).
    m, n, k = 300, 200, 3
    planted = planted_low_rank(m, n, k, 0.3, noise=noise, rng=1)
    result = complete_matrix(planted.observed, k, method=method, tol=1e-12, max_iter=200, rng=0)
    predicted = noise * np.sqrt(k * (m + n - k) / planted.observed.nnz)
    assert 0.8 * predicted <= planted.relative_error(result) <= 1.25 * predicted


def test_altmin_and_robust_altmin_agree_on_noisy_data():
    planted = planted_low_rank(300, 200, 3, 0.3, noise=0.1, rng=1)
    exact = complete_matrix(planted.observed, 3, method="altmin", tol=1e-14, max_iter=300, rng=0)
    for kwargs in ({}, {"preconditioner": "sketch"}):
        robust = complete_matrix(planted.observed, 3, method="robust_altmin", tol=1e-14, max_iter=300, rng=0, **kwargs)
        np.testing.assert_allclose(robust.to_dense(), exact.to_dense(), atol=1e-6)


def _dense_soft_impute(M, observed_mask, shrinkage, rank, n_steps):
    """SoftImpute exactly as in Mazumder, Hastie & Tibshirani (2010), Algorithm 1, with a full SVD."""
    Z = np.zeros_like(M)
    for _ in range(n_steps):
        U, s, Vt = np.linalg.svd(np.where(observed_mask, M, Z), full_matrices=False)
        s = np.maximum(s - shrinkage, 0.0)[:rank]
        Z = (U[:, :rank] * s) @ Vt[:rank]
    return Z


def test_softimpute_matches_a_dense_implementation():
    rng = np.random.default_rng(5)
    m, n = 30, 25
    M = rng.standard_normal((m, 4)) @ rng.standard_normal((4, n)) + 0.05 * rng.standard_normal((m, n))
    mask = rng.random((m, n)) < 0.6
    X = np.where(mask, M, np.nan)
    # rank + oversampling >= min(m, n): the randomized SVD spans the whole range, so it is exact
    result = complete_matrix(X, 15, method="softimpute", shrinkage=1.0, tol=0.0, max_iter=40, rng=0)
    expected = _dense_soft_impute(M, mask, 1.0, 15, 40)
    np.testing.assert_allclose(result.to_dense(), expected, atol=1e-9)


def test_softimpute_default_shrinkage_is_top_singular_value_over_50():
    rng = np.random.default_rng(6)
    M = rng.standard_normal((20, 3)) @ rng.standard_normal((3, 18))
    mask = rng.random(M.shape) < 0.7
    X = np.where(mask, M, np.nan)
    top = np.linalg.svd(np.where(mask, M, 0.0), compute_uv=False)[0]
    result = complete_matrix(X, 18, method="softimpute", tol=0.0, max_iter=10, rng=0, svd_n_iter=6)
    np.testing.assert_allclose(result.to_dense(), _dense_soft_impute(M, mask, top / 50, 18, 10), atol=1e-8)


def test_dense_nan_sparse_and_mask_inputs_agree(planted):
    sparse_result = complete_matrix(planted.observed, 3, rng=0, tol=1e-8)
    dense = _dense_with_nan(planted)
    dense_result = complete_matrix(dense, 3, rng=0, tol=1e-8)
    filled = np.where(np.isnan(dense), 123.0, dense)
    mask_result = complete_matrix(filled, 3, mask=~np.isnan(dense), rng=0, tol=1e-8)
    sparse_mask_result = complete_matrix(sp.csr_array(filled), 3, mask=sp.csr_array(~np.isnan(dense)), rng=0, tol=1e-8)
    for other in (dense_result, mask_result, sparse_mask_result):
        np.testing.assert_array_equal(other.U, sparse_result.U)
        np.testing.assert_array_equal(other.V, sparse_result.V)


def test_explicit_zeros_of_sparse_input_are_observed():
    rng = np.random.default_rng(0)
    M = np.outer(rng.standard_normal(40), rng.standard_normal(30))
    M[:, 0] = 0.0  # a whole column of true zeros, stored explicitly
    mask = rng.random(M.shape) < 0.5
    mask[:, 0] = True
    rows, cols = np.nonzero(mask)
    observed = sp.coo_array((M[rows, cols], (rows, cols)), shape=M.shape)
    result = complete_matrix(observed, 1, tol=1e-13, rng=0)
    np.testing.assert_allclose(result.to_dense(), M, atol=1e-8)


@pytest.mark.parametrize("method", ["altmin", "robust_altmin", "softimpute"])
def test_same_seed_same_result(planted, method):
    first = complete_matrix(planted.observed, 3, method=method, rng=7, max_iter=5, validation_fraction=0.1)
    second = complete_matrix(planted.observed, 3, method=method, rng=7, max_iter=5, validation_fraction=0.1)
    np.testing.assert_array_equal(first.U, second.U)
    np.testing.assert_array_equal(first.V, second.V)
    assert first.history == second.history or np.allclose(first.history["train_rmse"], second.history["train_rmse"])


def test_bias_terms_recover_an_additive_matrix():
    rng = np.random.default_rng(2)
    m, n = 120, 90
    row, col = rng.standard_normal(m), rng.standard_normal(n)
    additive = 3.0 + row[:, None] + col[None, :]
    mask = rng.random((m, n)) < 0.4
    result = complete_matrix(np.where(mask, additive, np.nan), 1, bias=True, tol=1e-12, max_iter=50, rng=0)
    assert result.global_mean == pytest.approx(additive[mask].mean())
    # the additive model is identified from a connected sample: held-out entries are exact
    np.testing.assert_allclose(result.to_dense()[~mask], additive[~mask], atol=1e-6)
    A, B = result.full_factors()
    np.testing.assert_allclose(A @ B.T, result.to_dense(), atol=1e-10)
    # with a rank-1 part on top, the bias terms help a rank-1 completion a lot
    M = additive + 0.5 * np.outer(rng.standard_normal(m), rng.standard_normal(n))
    errors = []
    for bias in (True, False):
        fit = complete_matrix(np.where(mask, M, np.nan), 1, bias=bias, tol=1e-10, max_iter=100, rng=0)
        errors.append(np.linalg.norm((fit.to_dense() - M)[~mask]) / np.linalg.norm(M[~mask]))
    assert errors[0] < 0.25 * errors[1]


def test_validation_early_stopping_returns_the_best_sweep():
    planted = planted_low_rank(200, 150, 3, 0.2, noise=0.5, rng=4)
    result = complete_matrix(planted.observed, 8, validation_fraction=0.2, max_iter=40, tol=0.0, alpha=0.0, rng=0)
    history = result.history["validation_rmse"]
    assert len(history) == result.n_iter >= 2
    assert result.converged  # stopped by the validation rule, well before max_iter
    assert result.n_iter < 40
    best = int(np.argmin(history))
    assert best < len(history) - 1
    # the returned factors are those of the best sweep: the same run stopped right after that sweep
    # (same seed, so the same held-out split and the same sweeps) ends on it
    stopped = complete_matrix(planted.observed, 8, validation_fraction=0.2, max_iter=best + 1, tol=0.0, alpha=0.0,
                              rng=0)
    assert stopped.n_iter == best + 1
    np.testing.assert_array_equal(result.U, stopped.U)
    np.testing.assert_array_equal(result.V, stopped.V)


def test_result_unpacks_predicts_and_round_trips(planted, tmp_path):
    result = complete_matrix(planted.observed, 3, rng=0, bias=True, max_iter=3)
    U, V = result
    assert len(result) == 2 and result[0] is U and result[1] is V
    rows, cols = np.array([0, 5, 299]), np.array([1, 0, 199])
    np.testing.assert_allclose(result.predict(rows, cols), result.to_dense()[rows, cols], rtol=1e-12)
    # balanced factors: U^T U = V^T V, diagonal
    np.testing.assert_allclose(U.T @ U, V.T @ V, atol=1e-8 * np.abs(U).max() ** 2 * 300)
    path = tmp_path / "factors.npz"
    result.save(path)
    loaded = CompletionResult.load(path)
    for name in ("U", "V", "row_bias", "col_bias"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(result, name))
    assert loaded.global_mean == result.global_mean
    assert loaded.history == result.history and loaded.n_iter == result.n_iter and loaded.method == result.method
    with pytest.raises(ValueError, match="rows"):
        result.predict([300], [0])
    with pytest.raises(TypeError, match="integers"):
        result.predict([0.5], [0])


def test_to_dense_refuses_huge_shapes():
    result = CompletionResult(np.zeros((100_000, 1)), np.zeros((100_000, 1)))
    with pytest.raises(ValueError, match="predict"):
        result.to_dense()


@pytest.mark.parametrize(
    ("observed", "kwargs", "error", "match"),
    [
        (np.ones((5, 4)), {"rank": 5}, ValueError, "rank"),
        (np.ones((5, 4)), {"rank": 0}, ValueError, "rank"),
        (np.ones((5, 4)), {"rank": 1.5}, TypeError, "rank"),
        # empty rows/columns are cold starts by default; the exact-recovery setting refuses them
        (np.vstack([np.ones((4, 4)), np.full((1, 4), np.nan)]), {"cold_start": "raise"}, ValueError, "row"),
        (np.hstack([np.ones((5, 3)), np.full((5, 1), np.nan)]), {"cold_start": "raise"}, ValueError, "column"),
        (np.ones((5, 4)), {"cold_start": "ignore"}, ValueError, "cold_start"),
        (np.ones((5, 4)), {"alpha": "big"}, TypeError, "alpha"),
        (np.ones((5, 4)), {"alpha": -1.0}, ValueError, "alpha"),
        (np.ones((5, 4)), {"rank": "best"}, TypeError, "rank"),
        (np.ones((5, 4)), {"bias": "maybe"}, TypeError, "bias"),
        (np.ones((5, 4)), {"bias_alpha": -2.0}, ValueError, "bias_alpha"),
        (np.full((3, 3), np.nan), {}, ValueError, "no observed entry"),
        (sp.csr_array(np.array([[1.0, np.nan], [2.0, 3.0]])), {}, ValueError, "NaN"),
        (np.array([[1.0, np.inf], [2.0, 3.0]]), {}, ValueError, "infinity"),
        (np.ones((5, 4)), {"mask": np.ones((4, 5), dtype=bool)}, ValueError, "mask"),
        (np.full((2, 2), np.nan), {"mask": np.ones((2, 2), dtype=bool)}, ValueError, "NaN"),
        (np.ones((5, 4)), {"mask": np.full((5, 4), 0.5)}, TypeError, "mask"),
        (np.ones((5, 4)), {"method": "svt"}, ValueError, "method"),
        (np.ones((5, 4)), {"tol": -1.0}, ValueError, "tol"),
        (np.ones((5, 4)), {"max_iter": 0}, ValueError, "max_iter"),
        (np.ones((5, 4)), {"preconditioner": "jacobi"}, ValueError, "preconditioner"),
        (np.ones((5, 4)), {"validation_fraction": 0.7}, ValueError, "validation_fraction"),
        (np.ones((5, 4)), {"bias": "yes"}, TypeError, "bias"),
        (np.ones((5, 4)) + 1j, {}, TypeError, "real"),
        (np.ones(4), {}, ValueError, "2-dimensional"),
        (np.ones((5, 4)), {"method": "softimpute", "client": object()}, ValueError, "client"),
    ],
)
def test_bad_input_raises_clear_errors(observed, kwargs, error, match):
    kwargs = {"rank": 2, **kwargs}
    with pytest.raises(error, match=match):
        complete_matrix(observed, **kwargs)


def test_estimators_fill_missing_entries_and_fold_in_new_rows():
    planted = planted_low_rank(240, 120, 3, 0.35, rng=8)
    truth = planted.to_dense()
    X = _dense_with_nan(planted)
    train, new = X[:200], X[200:]
    for est in (RobustAltMin(rank=3, tol=1e-12, random_state=0), AltMin(rank=3, tol=1e-12, random_state=0)):
        filled = est.fit_transform(train)
        np.testing.assert_allclose(filled, truth[:200], atol=1e-6)
        assert est.components_.shape == (3, 120) and est.row_factors_.shape == (200, 3) and est.n_iter_ >= 1
        # fold-in: rows never seen in fit are completed from their observed entries
        np.testing.assert_allclose(est.transform(new), truth[200:], atol=1e-6)
        np.testing.assert_allclose(est.predict([0, 10], [5, 7]), truth[[0, 10], [5, 7]], atol=1e-6)
        test_entries = np.where(np.isnan(train), truth[:200], np.nan)
        assert -1e-6 < est.score(test_entries) <= 0.0
    soft = SoftImpute(rank=3, shrinkage=0.5, random_state=0).fit(train)
    assert soft.score(np.where(np.isnan(train), truth[:200], np.nan)) > -0.1


def test_estimator_forwards_every_parameter_to_complete_matrix(planted):
    params = dict(alpha=0.01, bias=True, bias_alpha=0.5, cold_start="raise", max_iter=4, tol=1e-9, n_inner=3,
                  preconditioner="sketch", sketch_size=20, incoherence=2.0, svd_n_iter=1, validation_fraction=0.1,
                  n_iter_no_change=2)
    est = RobustAltMin(rank=3, random_state=3, **params).fit(_dense_with_nan(planted))
    direct = complete_matrix(_dense_with_nan(planted), 3, method="robust_altmin", rng=3, **params)
    np.testing.assert_array_equal(est.result_.U, direct.U)
    assert set(RobustAltMin().get_params()) - {"rank", "random_state", "verbose"} == set(params)
    soft_params = dict(shrinkage=0.3, bias=True, bias_alpha=2.0, max_iter=3, tol=1e-7, svd_n_iter=1)
    est = SoftImpute(rank=3, random_state=3, **soft_params).fit(_dense_with_nan(planted))
    direct = complete_matrix(_dense_with_nan(planted), 3, method="softimpute", rng=3, **soft_params)
    np.testing.assert_array_equal(est.result_.U, direct.U)


def test_rows_with_fewer_entries_than_rank_are_handled():
    rng = np.random.default_rng(3)
    M = rng.standard_normal((50, 4)) @ rng.standard_normal((4, 40))
    mask = rng.random(M.shape) < 0.6
    mask[0] = False
    mask[0, :2] = True  # two observations for a rank-4 row
    for method in ("altmin", "robust_altmin"):
        result = complete_matrix(np.where(mask, M, np.nan), 4, method=method, max_iter=30, rng=0)
        assert np.isfinite(result.U).all() and np.isfinite(result.V).all()
        # the under-determined row still fits its own observations
        np.testing.assert_allclose(result.to_dense()[0, :2], M[0, :2], atol=1e-4)


def test_memory_stays_linear_in_observed_entries():
    # a dense 20,000 x 20,000 float64 matrix would take 3.2 GB; 200k observed entries need a few MB
    import tracemalloc

    planted = planted_low_rank(20_000, 20_000, 2, 0.0005, rng=0)
    complete_matrix(planted.observed, 2, max_iter=1, rng=0)  # compile outside the measurement
    tracemalloc.start()
    result = complete_matrix(planted.observed, 2, max_iter=3, rng=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 100e6
    assert result.U.shape == (20_000, 2)


def test_verbose_reports_progress(planted, caplog):
    import logging

    with caplog.at_level(logging.DEBUG, logger="lowrank.completion"):
        result = complete_matrix(planted.observed, 3, max_iter=3, tol=0.0, rng=0, verbose=True)
    assert result.n_iter == 3
    assert sum("sweep" in record.getMessage() for record in caplog.records) == 3
