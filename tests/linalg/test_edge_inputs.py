"""Issue #26 section 4: edge inputs of the linalg core that used to crash or answer silently."""

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp

from lowrank.linalg import (
    interpolative,
    nystrom,
    rank_by_energy,
    rank_by_knee,
    rrqr,
    sparse_random_projection,
    strong_rrqr_bounds,
    svd_flip,
)


@pytest.mark.parametrize("method", ["rrqr", "randomized"])
def test_interpolative_on_zero_matrix_is_exact(method):
    A = np.zeros((6, 5))
    idx, proj = interpolative(A, 2, method=method, rng=0)
    assert len(set(idx.tolist())) == 2
    np.testing.assert_array_equal(A[:, idx] @ proj, A)
    np.testing.assert_array_equal(proj[:, idx], np.eye(2))  # the chosen columns reproduce themselves


def test_strong_rrqr_on_zero_and_rank_deficient_matrix():
    _, R, perm = rrqr(np.zeros((3, 5)), 2, strong=True)
    assert sorted(perm.tolist()) == list(range(5)) and np.all(R == 0)
    A = np.outer(np.arange(1.0, 5), np.arange(1.0, 7))  # rank 1, asked for 2
    Q, R, perm = rrqr(A, 2, strong=True)
    np.testing.assert_allclose(Q @ R, A[:, perm], atol=1e-12)


def test_strong_rrqr_bounds_inputs():
    A = np.random.default_rng(0).standard_normal((5, 8))
    _, R = scipy.linalg.qr(A, mode="economic")
    W = np.linalg.solve(R[:3, :3], R[:3, 3:])
    w, g = strong_rrqr_bounds(R.tolist(), 3)  # a list works like the array
    assert w == pytest.approx(np.abs(W).max(), rel=1e-12)
    inv_rows = np.linalg.norm(np.linalg.inv(R[:3, :3]), axis=1)
    assert g == pytest.approx(np.max(np.outer(inv_rows, np.linalg.norm(R[3:, 3:], axis=0))), rel=1e-12)
    assert strong_rrqr_bounds(np.zeros((3, 5)), 2) == (float("inf"), float("inf"))
    with pytest.raises(ValueError, match="`R` must be 2-dimensional"):
        strong_rrqr_bounds(np.ones(4), 1)
    with pytest.raises(TypeError, match="`R`"):
        strong_rrqr_bounds(None, 1)
    with pytest.raises(ValueError, match="`k`"):
        strong_rrqr_bounds(R, 6)
    with pytest.raises(TypeError, match="`k`"):
        strong_rrqr_bounds(R, 1.5)


def test_svd_flip_rejects_1d_and_mismatched():
    with pytest.raises(ValueError, match="2-D"):
        svd_flip(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="one row per column"):
        svd_flip(np.ones((3, 2)), np.ones((3, 4)))
    U, s, Vh = np.linalg.svd(np.random.default_rng(1).standard_normal((5, 4)), full_matrices=False)
    U2, Vh2 = svd_flip(-U, -Vh)
    np.testing.assert_allclose((U2 * s) @ Vh2, (U * s) @ Vh, atol=1e-12)


def test_sparse_random_projection_dtype():
    with pytest.raises(ValueError, match="`dtype` must be a real floating dtype"):
        sparse_random_projection(100, 5, dtype=np.int32, rng=0)
    with pytest.raises(ValueError, match="`dtype`"):
        sparse_random_projection(100, 5, dtype=bool, rng=0)
    with pytest.raises(TypeError, match="`dtype`"):
        sparse_random_projection(100, 5, dtype="not-a-dtype", rng=0)
    P64 = sparse_random_projection(100, 5, rng=0)
    P32 = sparse_random_projection(100, 5, dtype=np.float32, rng=0)
    assert P32.dtype == np.float32
    np.testing.assert_allclose(P32.toarray(), P64.toarray(), rtol=1e-7)


def test_nystrom_rejects_indefinite_matrix():
    X = np.random.default_rng(2).standard_normal((30, 30))
    with pytest.raises(ValueError, match="positive semidefinite"):
        nystrom(X + X.T, 5, rng=0)  # symmetric, clearly indefinite
    with pytest.raises(ValueError, match="positive semidefinite"):
        nystrom(-np.eye(10), 2, rng=0)  # negative diagonal


def test_nystrom_zero_and_low_rank_psd():
    U, s = nystrom(np.zeros((10, 10)), 3, rng=0)
    np.testing.assert_array_equal(s, np.zeros(3))
    np.testing.assert_allclose(U.T @ U, np.eye(3), atol=1e-12)
    _, s = nystrom(sp.csr_matrix((10, 10)), 3, rng=0)
    np.testing.assert_array_equal(s, np.zeros(3))
    Z = np.random.default_rng(3).standard_normal((30, 4))
    U, s = nystrom(Z @ Z.T, 6, rng=0)
    np.testing.assert_allclose(s[:4], np.linalg.eigvalsh(Z @ Z.T)[::-1][:4], rtol=1e-10)
    assert np.all(s >= 0)


def test_rank_rules_on_zero_spectrum():
    assert rank_by_energy(np.zeros(5)) == 1
    assert rank_by_knee(np.zeros(5)) == 1
    assert rank_by_knee(np.array([3.0, 2.0, 0.0, 0.0, 0.0])) == 2  # exact zeros after a head
    assert rank_by_energy(np.array([3.0, 0.0, 0.0]), 0.99) == 1
