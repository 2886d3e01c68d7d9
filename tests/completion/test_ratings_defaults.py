"""Completion on ratings-like data: cold-start rows/columns against the analytic bias fit,
``alpha="auto"`` / ``rank="auto"`` against planted truth and pure noise, fold-in of a new user."""

import numpy as np
import pytest
import scipy.sparse as sp

from lowrank.completion import AltMin, RobustAltMin, complete_matrix
from lowrank.datasets import planted_low_rank


def _additive_ratings(m=40, n=30, cold_row=True, cold_col=True, seed=0):
    """Fully observed ``mean + item effect`` block (all users alike), plus an unrated user and an
    unrated item."""
    rng = np.random.default_rng(seed)
    item = rng.normal(0.0, 0.8, n)
    M = 3.5 + np.broadcast_to(item, (m, n)).copy()
    X = M.copy()
    if cold_row:
        X[-1] = np.nan
    if cold_col:
        X[:, -1] = np.nan
    return X, M


@pytest.mark.parametrize("method", ["altmin", "robust_altmin"])
def test_cold_user_gets_global_mean_plus_shrunken_item_bias(method):
    # All warm users rate every warm item, and their ratings differ by item only: the joint ridge
    # fit has row biases 0, item biases e_j * m / (m + beta) with e_j = colmean_j - mean (see the
    # fixed point in complete_matrix's docs), and factors 0. So a cold user gets
    # mean + e_j * m / (m + beta), a cold item mean + row bias = mean, and both cold: mean.
    X, _ = _additive_ratings()
    beta = 4.0
    warm = X[:-1, :-1]
    m_warm = warm.shape[0]
    mean = warm.mean()
    expected_item_bias = (warm.mean(axis=0) - mean) * m_warm / (m_warm + beta)
    result = complete_matrix(X, 2, method=method, alpha=beta, bias=True, tol=1e-12, max_iter=100, rng=0)
    assert result.global_mean == pytest.approx(mean, rel=1e-12)
    np.testing.assert_allclose(result.col_bias[:-1], expected_item_bias, atol=1e-8)
    np.testing.assert_allclose(result.row_bias[:-1], 0.0, atol=1e-8)
    cold_user = result.predict(np.full(29, 39), np.arange(29))
    np.testing.assert_allclose(cold_user, mean + expected_item_bias, atol=1e-8)
    cold_item = result.predict(np.arange(39), np.full(39, 29))
    np.testing.assert_allclose(cold_item, mean, atol=1e-8)
    assert result.predict([39], [29])[0] == pytest.approx(mean, abs=1e-8)
    # cold rows and columns hold exact zeros, not small numbers
    assert not result.U[-1].any() and not result.V[-1].any()
    assert result.row_bias[-1] == 0.0 and result.col_bias[-1] == 0.0


def test_cold_start_unpenalized_bias_is_the_item_mean():
    X, M = _additive_ratings(cold_col=False)
    result = complete_matrix(X, 1, alpha=0.0, bias=True, tol=1e-12, max_iter=50, rng=0)
    np.testing.assert_allclose(result.predict(np.full(30, 39), np.arange(30)), X[:-1].mean(axis=0), atol=1e-8)
    np.testing.assert_allclose(result.to_dense()[:-1], M[:-1], atol=1e-8)


def test_cold_start_without_biases_predicts_zero_and_can_be_refused():
    planted = planted_low_rank(60, 50, 2, 0.5, rng=1)
    X = planted.observed.toarray()
    X[planted.observed.toarray() == 0] = np.nan
    X[5] = np.nan
    result = complete_matrix(X, 2, alpha=0.0, bias=False, tol=1e-12, max_iter=200, rng=0)
    assert not result.U[5].any() and np.all(result.to_dense()[5] == 0.0)
    keep = np.arange(60) != 5
    np.testing.assert_allclose(result.to_dense()[keep], planted.to_dense()[keep], atol=1e-6)
    with pytest.raises(ValueError, match="row"):
        complete_matrix(X, 2, cold_start="raise")


def _noise_matrix(m, n, fraction, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n))
    X[rng.random((m, n)) > fraction] = np.nan
    return X


def test_alpha_auto_is_strong_on_pure_noise_and_weak_on_an_exact_low_rank_matrix():
    noise = complete_matrix(_noise_matrix(150, 120, 0.4, 0), 4, rng=0)
    top = noise.selection["path"]
    alphas = sorted({row[1] for row in top})
    assert noise.alpha == pytest.approx(max(alphas))  # the largest penalty tried: everything shrunk
    # that is alpha_max, the top singular value of the searched part (at or above it the penalized
    # solution is 0): the completion of pure noise is shrunk almost to nothing (entries have std 1)
    assert np.sqrt(np.mean(noise.to_dense() ** 2)) < 0.05
    planted = planted_low_rank(150, 120, 4, 0.4, rng=0)
    exact = complete_matrix(planted.observed, 4, tol=1e-13, max_iter=200, rng=0)
    assert exact.alpha == 0.0
    assert planted.relative_error(exact) < 1e-8


def test_alpha_auto_on_noisy_low_rank_beats_no_penalty():
    # a planted rank-3 matrix, 15% observed, noise as large as the signal: the penalty must help
    planted = planted_low_rank(200, 150, 3, 0.15, noise=1.0, rng=2)
    auto = complete_matrix(planted.observed, 8, rng=0)
    plain = complete_matrix(planted.observed, 8, alpha=0.0, rng=0)
    assert 0.0 < auto.alpha
    assert planted.relative_error(auto) < 0.7 * planted.relative_error(plain)


@pytest.mark.parametrize("true_rank", [2, 5])
def test_rank_auto_recovers_a_planted_rank(true_rank):
    planted = planted_low_rank(200, 160, true_rank, 0.35, noise=0.01, rng=true_rank)
    result = complete_matrix(planted.observed, rng=0)
    assert result.rank == true_rank
    assert result.selection["rank"] == true_rank
    assert planted.relative_error(result) < 0.01


def test_bias_auto_turns_on_for_ratings_and_off_for_centred_data():
    planted = planted_low_rank(80, 60, 2, 0.5, noise=0.1, rng=4)
    centred = complete_matrix(planted.observed, 2, alpha=0.0, rng=0)
    assert centred.global_mean == 0.0 and not centred.row_bias.any()
    ratings = planted.observed.copy()
    ratings.data = np.clip(np.round(3.5 + ratings.data), 1, 5)
    rated = complete_matrix(ratings, 2, alpha=1.0, rng=0)
    assert rated.global_mean == pytest.approx(ratings.data.mean())


@pytest.mark.parametrize("cls", [RobustAltMin, AltMin])
def test_estimator_defaults_and_fold_in_of_a_new_user(cls):
    # ratings = 3 + item effect + a rank-2 taste; a new user with a few ratings is folded in
    rng = np.random.default_rng(7)
    m, n = 150, 80
    taste = rng.standard_normal((m + 1, 2)) @ rng.standard_normal((2, n)) * 0.5
    M = 3.0 + rng.normal(0, 0.7, n)[None, :] + taste
    observed = rng.random((m + 1, n)) < 0.4
    X = np.where(observed, M, np.nan)
    train, new_user = X[:m], X[m:]
    est = cls(random_state=0, tol=1e-8).fit(train)
    result = est.result_
    assert result.global_mean != 0.0  # bias="auto" saw ratings
    folded = est.transform(new_user)[0]
    # the fold-in is the exact penalized least-squares fit of the new user's row against the
    # fitted item factors and biases: solve it densely here
    V = result.V
    seen = ~np.isnan(new_user[0])
    c = np.sqrt(result.alpha / result.bias_alpha) if result.alpha > 0 and result.bias_alpha > 0 else 1.0
    A = np.hstack([V[seen], np.full((seen.sum(), 1), c)])
    b = new_user[0, seen] - result.global_mean - result.col_bias[seen]
    x = np.linalg.solve(A.T @ A + result.alpha * np.eye(A.shape[1]), A.T @ b)
    expected = np.hstack([V, np.full((n, 1), c)]) @ x + result.global_mean + result.col_bias
    np.testing.assert_allclose(folded[~seen], expected[~seen], rtol=1e-8, atol=1e-8)
    np.testing.assert_array_equal(folded[seen], new_user[0, seen])
    # the new user's missing ratings are predicted better than by the item baseline
    baseline = result.global_mean + result.col_bias
    truth = M[m]
    assert np.sqrt(np.mean((folded - truth)[~seen] ** 2)) < 0.8 * np.sqrt(np.mean((baseline - truth)[~seen] ** 2))
    # a new user with no rating at all gets the baseline
    np.testing.assert_allclose(est.transform(np.full((1, n), np.nan))[0], baseline, atol=1e-12)


def test_sparse_ratings_with_empty_rows_fit():
    rng = np.random.default_rng(3)
    M = sp.random_array((50, 40), density=0.1, format="csr", rng=rng)
    M.data = np.round(rng.uniform(1, 5, M.nnz))
    empty_rows = np.flatnonzero(np.diff(M.indptr) == 0)
    est = RobustAltMin(random_state=0).fit(M)
    if empty_rows.size:
        filled = est.result_.to_dense()
        np.testing.assert_allclose(filled[empty_rows], est.result_.global_mean + est.result_.col_bias[None, :] +
                                   np.zeros((empty_rows.size, 1)), atol=1e-12)


def test_result_keeps_the_selection_through_save_and_load(tmp_path):
    from lowrank.completion import CompletionResult

    planted = planted_low_rank(60, 50, 2, 0.4, noise=0.05, rng=3)
    result = complete_matrix(planted.observed, rng=0)
    path = tmp_path / "r.npz"
    result.save(path)
    loaded = CompletionResult.load(path)
    assert loaded.selection == result.selection and loaded.alpha == result.alpha
    assert loaded.rank == result.selection["rank"]


def test_same_seed_same_auto_result():
    planted = planted_low_rank(80, 60, 3, 0.3, noise=0.1, rng=5)
    first = complete_matrix(planted.observed, rng=11)
    second = complete_matrix(planted.observed, rng=11)
    assert first.selection == second.selection
    np.testing.assert_array_equal(first.U, second.U)
