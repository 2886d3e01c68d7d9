"""Nyström, sparse random projections, weighted SVD, DCT basis, norm estimate, rank selection."""

import numpy as np
import pytest
import scipy.fft
import scipy.sparse as sp

from lowrank.linalg import (
    dct_basis,
    nuclear_norm_estimate,
    nystrom,
    rank_by_energy,
    rank_by_knee,
    sparse_random_projection,
    weighted_svd,
)


def test_nystrom_matches_eigh_on_psd():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 40)) * (0.6 ** np.arange(40))
    K = X @ X.T
    U, s = nystrom(K, 8, n_oversamples=20, rng=0)
    w = np.linalg.eigh(K)[0][::-1]
    np.testing.assert_allclose(s, w[:8], rtol=1e-3)
    np.testing.assert_allclose(U.T @ U, np.eye(8), atol=1e-10)
    assert np.linalg.norm(K - U * s @ U.T) <= 1.5 * np.sqrt(np.sum(w[8:] ** 2)) + 1e-10


def test_nystrom_rejects_non_symmetric():
    with pytest.raises(ValueError, match="symmetric"):
        nystrom(np.triu(np.ones((5, 5))), 2)


class TestSparseRandomProjection:
    def test_rows_reproducible_in_any_partition(self):
        P = sparse_random_projection(500, 32, rng=11)
        parts = [sparse_random_projection(500, 32, rng=11, rows=np.arange(a, min(a + 77, 500))) for a in range(0, 500, 77)]
        assert (sp.vstack(parts) != P).nnz == 0
        shuffled = np.random.default_rng(0).permutation(500)
        assert (sparse_random_projection(500, 32, rng=11, rows=shuffled) != P[shuffled]).nnz == 0

    def test_distribution(self):
        n, k, density = 4000, 200, 0.05
        P = sparse_random_projection(n, k, density=density, rng=1)
        frac = P.nnz / (n * k)
        assert abs(frac - density) < 4 * np.sqrt(density / (n * k))
        values = np.unique(P.data)
        np.testing.assert_allclose(np.abs(values), 1 / np.sqrt(density * k))
        assert abs(np.mean(P.data > 0) - 0.5) < 0.02
        # E[P P^T] = I: norms of projected unit vectors concentrate around 1 (JL property).
        x = np.random.default_rng(2).standard_normal(n)
        ratio = np.linalg.norm(P.T @ x) ** 2 / np.linalg.norm(x) ** 2
        assert 0.6 < ratio < 1.4

    def test_auto_and_integer_density(self):
        P = sparse_random_projection(10000, 50, rng=0)
        assert abs(P.nnz / (10000 * 50) - 0.01) < 0.002
        Q = sparse_random_projection(1000, 50, density=3, rng=0)
        assert abs(Q.nnz / (1000 * 50) - 1 / 3) < 0.02

    def test_different_seeds_differ(self):
        assert (sparse_random_projection(100, 20, rng=1) != sparse_random_projection(100, 20, rng=2)).nnz > 0

    @pytest.mark.parametrize(
        "kwargs, msg",
        [({"density": 0.0}, "density"), ({"density": "dense"}, "density"), ({"rows": [0, 100]}, "rows")],
    )
    def test_bad_input(self, kwargs, msg):
        with pytest.raises(ValueError, match=msg):
            sparse_random_projection(100, 10, **kwargs)


def _weighted_als(A, k, r, c, iters=500, seed=0):
    """Independent reference: alternating weighted least squares for W_ij = r_i c_j."""
    rng = np.random.default_rng(seed)
    m, n = A.shape
    V = rng.standard_normal((n, k))
    for _ in range(iters):
        U = np.linalg.solve((V.T * c) @ V, (V.T * c) @ A.T).T
        V = np.linalg.solve((U.T * r) @ U, (U.T * r) @ A).T
    return U @ V.T


def test_weighted_svd_is_the_weighted_optimum():
    rng = np.random.default_rng(4)
    A = rng.standard_normal((30, 20))
    r, c = rng.uniform(0.2, 5, 30), rng.uniform(0.2, 5, 20)
    U, s, Vh = weighted_svd(A, 4, row_weights=r, col_weights=c)
    B = U * s @ Vh

    def werr(X):
        return np.sum(r[:, None] * c[None, :] * (A - X) ** 2)

    assert werr(B) <= werr(_weighted_als(A, 4, r, c)) * (1 + 1e-6)
    np.testing.assert_allclose(U.T @ (r[:, None] * U), np.eye(4), atol=1e-10)
    assert werr(B) < werr(_truncated(A, 4))


def _truncated(A, k):
    U, s, Vh = np.linalg.svd(A, full_matrices=False)
    return U[:, :k] * s[:k] @ Vh[:k]


def test_weighted_svd_bad_weights():
    with pytest.raises(ValueError, match="row_weights"):
        weighted_svd(np.ones((3, 3)), 1, row_weights=[1, -1, 1])
    with pytest.raises(ValueError, match="col_weights"):
        weighted_svd(np.ones((3, 3)), 1, col_weights=[1, 1])


def test_dct_basis_matches_scipy():
    x = np.random.default_rng(0).standard_normal(16)
    D = dct_basis(16, 6)
    np.testing.assert_allclose(D.T @ x, scipy.fft.dct(x, norm="ortho")[:6], atol=1e-12)
    np.testing.assert_allclose(dct_basis(16).T @ dct_basis(16), np.eye(16), atol=1e-12)


def test_nuclear_norm_estimate():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((60, 5)) @ rng.standard_normal((5, 40))
    exact = np.linalg.svd(A, compute_uv=False).sum()
    assert abs(nuclear_norm_estimate(A, rank=10, rng=0) - exact) < 1e-8 * exact
    B = rng.standard_normal((60, 40))
    est, true = nuclear_norm_estimate(B, rank=10, rng=0), np.linalg.svd(B, compute_uv=False).sum()
    assert est <= true * (1 + 1e-9)  # documented lower bound
    assert est >= 0.7 * true


def test_rank_selection():
    s = np.array([5.0, 4.0, 3.0, 0.1, 0.05])
    manual = int(np.argmax(np.cumsum(s**2) / np.sum(s**2) >= 0.99) + 1)
    assert rank_by_energy(s, 0.99) == manual == 3
    assert rank_by_energy(s, 1.0) == 5
    planted = np.concatenate([np.linspace(10, 8, 7), 1e-4 * 0.9 ** np.arange(30)])
    assert rank_by_knee(planted) == 7
    with pytest.raises(ValueError, match="descending"):
        rank_by_knee([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="energy"):
        rank_by_energy(s, 1.5)


def test_sparse_projection_numba_kernel_matches_numpy_twin():
    from lowrank.linalg._sparse_projection import _projection_rows, _projection_rows_numpy

    rows = np.array([0, 5, 17, 999, 3], dtype=np.int64)
    for density, dtype in ((0.1, np.float64), (0.5, np.float32)):
        a = _projection_rows(rows, 64, density, 2**62 + 7, np.dtype(dtype))
        b = _projection_rows_numpy(rows, 64, density, 2**62 + 7, np.dtype(dtype))
        assert a.dtype == b.dtype == dtype
        assert (a != b).nnz == 0
        np.testing.assert_array_equal(a.indptr, b.indptr)
