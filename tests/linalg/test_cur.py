"""Column selection, interpolative decomposition and CUR against the optimal (SVD) error."""

import numpy as np
import pytest
import scipy.sparse as sp

from lowrank.linalg import cur, interpolative, select_columns


def _decaying(m, n, rng, rate=0.7):
    k = min(m, n)
    U, _ = np.linalg.qr(rng.standard_normal((m, k)))
    V, _ = np.linalg.qr(rng.standard_normal((n, k)))
    return (U * rate ** np.arange(k)) @ V.T


def _opt(A, k):
    return np.sqrt(np.sum(np.linalg.svd(A, compute_uv=False)[k:] ** 2))


@pytest.mark.parametrize("method", ["rrqr", "randomized"])
def test_interpolative_error_within_factor_of_optimum(method):
    A = _decaying(80, 60, np.random.default_rng(0))
    k = 10
    idx, proj = interpolative(A, k, method=method, rng=0)
    np.testing.assert_allclose(proj[:, idx], np.eye(k), atol=1e-12)
    err = np.linalg.norm(A - A[:, idx] @ proj)
    # ID theory: ||A - A_idx P|| <= sqrt(1 + f^2 k (n - k)) sigma_{k+1}; in practice within ~10x.
    assert err <= 10 * _opt(A, k)
    assert np.abs(proj).max() <= 2.0 + 1e-9 or method == "randomized"


@pytest.mark.parametrize("method", ["rrqr", "leverage", "random"])
def test_cur_exact_on_low_rank(method):
    rng = np.random.default_rng(1)
    A = rng.standard_normal((50, 5)) @ rng.standard_normal((5, 40))
    C, U, R, rows, cols = cur(A, 5, method=method, n_rows=10, n_cols=10, rng=0)
    np.testing.assert_array_equal(C, A[:, cols])
    np.testing.assert_array_equal(R, A[rows])
    np.testing.assert_allclose(C @ U @ R, A, atol=1e-8)


@pytest.mark.parametrize("core", ["projection", "intersection"])
def test_cur_near_optimal_with_rrqr(core):
    A = _decaying(100, 80, np.random.default_rng(2))
    C, U, R, _, _ = cur(A, 8, core=core)
    err = np.linalg.norm(A - C @ U @ R)
    assert err <= 20 * _opt(A, 8)


def test_cur_sparse_input():
    A = sp.random(200, 100, density=0.05, random_state=0, format="csr")
    C, U, R, rows, cols = cur(A, 5, rng=0)
    np.testing.assert_allclose(C, A[:, cols].toarray())
    err = np.linalg.norm(A.toarray() - C @ U @ R)
    assert err < np.linalg.norm(A.toarray())


def test_select_columns_finds_the_only_informative_columns():
    rng = np.random.default_rng(3)
    A = np.zeros((40, 30))
    A[:, [4, 17, 25]] = rng.standard_normal((40, 3))
    for method in ("rrqr", "leverage"):
        assert sorted(select_columns(A, 3, method=method, rng=0)) == [4, 17, 25]


def test_bad_input():
    with pytest.raises(ValueError, match="rank"):
        cur(np.ones((4, 4)), 5)
    with pytest.raises(ValueError, match="`method`"):
        cur(np.ones((4, 4)), 2, method="best")
    with pytest.raises(ValueError, match="`k`"):
        select_columns(np.ones((4, 4)), 0)
    with pytest.raises(ValueError, match="NaN"):
        interpolative(np.full((3, 3), np.nan), 1)
