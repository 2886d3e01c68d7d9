"""numba per-row kernels against the plain-numpy reference and LAPACK least squares."""

import numpy as np
import pytest
import scipy.sparse as sp

from lowrank.completion import _kernels, _reference
from lowrank.completion._input import Layout


def _problem(seed, m=40, n=30, k=5, density=0.4):
    rng = np.random.default_rng(seed)
    M = sp.random_array((m, n), density=density, format="csr", rng=rng)
    M.data = rng.standard_normal(M.nnz)
    # a few rows with fewer observations than the rank, and one with many
    lil = M.tolil()
    lil[0, :] = 0
    lil[0, 3] = 1.5
    lil[1, :] = 0
    M = sp.csr_array(lil)
    M.eliminate_zeros()
    M.sort_indices()
    Y = rng.standard_normal((n, k))
    X0 = rng.standard_normal((m, k))
    return M.indptr.astype(np.int64), M.indices.astype(np.int32), M.data, Y, X0


@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_exact_kernel_matches_reference_and_lstsq(alpha):
    indptr, indices, data, Y, X0 = _problem(0)
    X, resid = X0.copy(), np.empty(X0.shape[0])
    _kernels.run_rows(_kernels.solve_rows_exact, indptr, indptr, indices, data, Y, X, alpha, resid)
    X_ref, resid_ref = X0.copy(), np.empty(X0.shape[0])
    _reference.solve_rows_exact(indptr, indices, data, Y, X_ref, alpha, resid_ref)
    k = Y.shape[1]
    for i in range(2, X.shape[0]):  # rows 0-1 are under-determined without alpha
        sl = slice(indptr[i], indptr[i + 1])
        A = np.vstack([Y[indices[sl]], np.sqrt(alpha) * np.eye(k)])
        b = np.concatenate([data[sl], np.zeros(k)])
        np.testing.assert_allclose(X[i], np.linalg.lstsq(A, b, rcond=None)[0], rtol=1e-9, atol=1e-10)
    if alpha > 0:
        np.testing.assert_allclose(X, X_ref, rtol=1e-9, atol=1e-10)
    else:
        np.testing.assert_allclose(X[2:], X_ref[2:], rtol=1e-9, atol=1e-10)
    assert np.isfinite(X[:2]).all()
    # an empty row (fold-in of a row with no observation) gives 0
    np.testing.assert_allclose(resid[2:], resid_ref[2:], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("use_sketch", [False, True], ids=["gram", "sketch"])
@pytest.mark.parametrize("alpha", [0.0, 0.2])
@pytest.mark.parametrize("n_inner", [1, 3])
def test_pcg_kernels_match_reference(use_sketch, alpha, n_inner):
    # rows of ~50 observations, sketched to 20 rows (4 x rank, the default): a well-conditioned
    # preconditioned system, so rounding differences between the two QR codes stay tiny
    indptr, indices, data, Y, X0 = _problem(1, n=120, density=0.4)
    lam, Q = np.linalg.eigh(Y.T @ Y)
    n_total, sketch_rows, seed, offset = float(Y.shape[0]), 20, np.uint64(99), 13
    X, resid = X0.copy(), np.empty(X0.shape[0])
    if use_sketch:
        _kernels.run_rows(_kernels.solve_rows_pcg_sketch, indptr, indptr, indices, data, Y, X, alpha, n_inner,
                          sketch_rows, seed, offset, resid)
    else:
        _kernels.run_rows(_kernels.solve_rows_pcg_gram, indptr, indptr, indices, data, Y, X, alpha, n_inner, Q, lam,
                          n_total, resid)
    X_ref, resid_ref = X0.copy(), np.empty(X0.shape[0])
    _reference.solve_rows_pcg(indptr, indices, data, Y, X_ref, alpha, n_inner, use_sketch, Q, lam, n_total, sketch_rows,
                              seed, offset, resid_ref)
    # rows 0-1 have fewer observations than the rank: without alpha their preconditioner carries a
    # 1e-12 ridge, so rounding differences are amplified; compare those rows' fits only
    tight = np.ones(X.shape[0], dtype=bool) if alpha > 0 else np.diff(indptr) > Y.shape[1]
    np.testing.assert_allclose(X[tight], X_ref[tight], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(resid[tight], resid_ref[tight], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(resid, resid_ref, rtol=1e-3, atol=1e-8)
    # resid is the true squared residual at the new X
    for i in range(X.shape[0]):
        sl = slice(indptr[i], indptr[i + 1])
        assert resid[i] == pytest.approx(np.sum((data[sl] - Y[indices[sl]] @ X[i]) ** 2), rel=1e-8, abs=1e-12)


@pytest.mark.parametrize("use_sketch", [False, True], ids=["gram", "sketch"])
def test_pcg_with_k_steps_solves_least_squares(use_sketch):
    # CG terminates in at most k steps in exact arithmetic: with k steps it is the exact solve
    indptr, indices, data, Y, X0 = _problem(2, m=20, n=60, k=4, density=0.5)
    alpha = 0.1
    lam, Q = np.linalg.eigh(Y.T @ Y)
    X, resid = X0.copy(), np.empty(X0.shape[0])
    if use_sketch:
        _kernels.solve_rows_pcg_sketch(0, X.shape[0], indptr, indices, data, Y, X, alpha, 6, 8, np.uint64(1), 0, resid)
    else:
        _kernels.solve_rows_pcg_gram(0, X.shape[0], indptr, indices, data, Y, X, alpha, 6, Q, lam, 60.0, resid)
    X_exact, resid_exact = X0.copy(), np.empty(X0.shape[0])
    _reference.solve_rows_exact(indptr, indices, data, Y, X_exact, alpha, resid_exact)
    np.testing.assert_allclose(X, X_exact, rtol=1e-7, atol=1e-9)


def test_sketch_preconditioner_is_a_good_one():
    # the R factor of a CountSketch of an incoherent block makes it well conditioned
    rng = np.random.default_rng(4)
    A = rng.standard_normal((400, 6)) * np.array([1e3, 10, 1, 1, 0.1, 1e-2])
    R = _reference.sketch_r_factor(A, 0.0, 24, np.uint64(3), 5)
    cond = np.linalg.cond(A @ np.linalg.inv(R))
    assert np.linalg.cond(A) > 1e4 and cond < 10
    np.testing.assert_allclose(np.abs(_kernels._sketch_r_factor(A, 0.0, 24, np.uint64(3), 5)), np.abs(R), rtol=1e-9)


def test_matmat_transpose_and_pair_products_match_scipy():
    indptr, indices, data, Y, _ = _problem(3)
    M = sp.csr_array((data, indices, indptr), shape=(40, 30))
    B = np.random.default_rng(0).standard_normal((30, 3))
    out = np.empty((40, 3))
    _kernels.csr_matmat(0, 40, indptr, indices, data, B, out)
    np.testing.assert_allclose(out, M @ B, rtol=1e-12, atol=1e-12)
    ref = np.empty((40, 3))
    _reference.csr_matmat(indptr, indices, data, B, ref)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    coo = M.tocoo()
    rows, cols = coo.row.astype(np.int64), coo.col.astype(np.int64)
    row_layout, col_layout = Layout.build(rows, cols, coo.data, M.shape)
    T = sp.csr_array((col_layout.data, col_layout.indices, col_layout.indptr), shape=(30, 40))
    np.testing.assert_array_equal(T.toarray(), M.T.toarray())
    np.testing.assert_array_equal(col_layout.data, coo.data[col_layout.perm])
    U, V = np.random.default_rng(1).standard_normal((40, 3)), np.random.default_rng(2).standard_normal((30, 3))
    np.testing.assert_allclose(_kernels.pair_values(rows, cols, U, V), np.sum(U[rows] * V[cols], axis=1), rtol=1e-12)


def test_threaded_ranges_equal_one_range():
    rng = np.random.default_rng(5)
    M = sp.random_array((3000, 200), density=0.05, format="csr", rng=rng)
    M.data = rng.standard_normal(M.nnz)
    indptr, indices = M.indptr.astype(np.int64), M.indices
    Y = rng.standard_normal((200, 4))
    lam, Q = np.linalg.eigh(Y.T @ Y)
    X0 = rng.standard_normal((3000, 4))
    one, threads = X0.copy(), X0.copy()
    r1, r2 = np.empty(3000), np.empty(3000)
    _kernels.solve_rows_pcg_gram(0, 3000, indptr, indices, M.data, Y, one, 0.0, 2, Q, lam, 200.0, r1)
    _kernels.run_rows(_kernels.solve_rows_pcg_gram, indptr, indptr, indices, M.data, Y, threads, 0.0, 2, Q, lam, 200.0,
                      r2, n_threads=3)
    np.testing.assert_array_equal(one, threads)
    np.testing.assert_array_equal(r1, r2)
