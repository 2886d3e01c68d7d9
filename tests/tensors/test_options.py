"""TensorLy-parity options of tucker / partial_tucker / cp_als: rank=None, fixed factors/modes, init as a
plain list, n_iter_max=0, normalize_factors, orthogonalise, sparsity, callback; against TensorLy and exact
computations."""

import numpy as np
import pytest
import tensorly as tl
from tensorly.decomposition import parafac
from tensorly.decomposition import tucker as tl_tucker
from tensorly.metrics import congruence_coefficient

from lowrank.tensors import CP, cp_als, partial_tucker, tucker


def _planted_tucker(seed, shape=(6, 7, 8), ranks=(2, 3, 2)):
    rng = np.random.default_rng(seed)
    core = rng.standard_normal(ranks)
    factors = [rng.standard_normal((n, r)) for n, r in zip(shape, ranks)]
    return tl.tucker_to_tensor((core, factors)), core, factors


def _planted_cp(seed, shape=(8, 9, 10), rank=3):
    rng = np.random.default_rng(seed)
    factors = [rng.standard_normal((n, rank)) for n in shape]
    return tl.cp_to_tensor((np.ones(rank), factors)), factors


def _rel(T, X):
    return float(np.linalg.norm(T.to_tensor() - X) / np.linalg.norm(X))


def test_tucker_rank_none_is_full_rank_and_exact():
    X = np.random.default_rng(0).standard_normal((4, 5, 6))
    T = tucker(X)
    assert T.core.shape == X.shape and _rel(T, X) < 1e-13
    core, factors = partial_tucker(X, modes=[0, 2])
    assert core.shape == X.shape and [f.shape for f in factors] == [(4, 4), (6, 6)]
    np.testing.assert_allclose(tl.tenalg.multi_mode_dot(core, factors, modes=[0, 2]), X, atol=1e-12)


def test_tucker_init_plain_list_equals_tuckertensor_init():
    X, core, factors = _planted_tucker(1)
    Y = X + 0.05 * np.random.default_rng(2).standard_normal(X.shape)
    a = tucker(Y, (2, 3, 2), init=factors, n_iter_max=3)
    b = tucker(Y, (2, 3, 2), init=tl.tucker_tensor.TuckerTensor((core, factors)), n_iter_max=3)
    np.testing.assert_allclose(a.to_tensor(), b.to_tensor(), atol=1e-12)


def test_tucker_n_iter_max_zero_is_the_initialization():
    X, _, factors = _planted_tucker(3)
    Y = X + 0.1 * np.random.default_rng(4).standard_normal(X.shape)
    start = [f + 0.3 for f in factors]
    T = tucker(Y, (2, 3, 2), init=start, n_iter_max=0)
    Q = [np.linalg.qr(f)[0] for f in start]
    expected = np.einsum("ijk,ia,jb,kc->abc", Y, *Q)  # the least-squares core for orthonormal factors
    np.testing.assert_allclose(T.to_tensor(), tl.tucker_to_tensor((expected, Q)), atol=1e-12)


def test_tucker_fixed_factors_against_tensorly_and_exact_with_non_orthonormal_factor():
    X, core, factors = _planted_tucker(5)
    Y = X + 0.1 * np.random.default_rng(6).standard_normal(X.shape)
    Q = [np.linalg.qr(f)[0] for f in factors]
    ours = tucker(Y, (2, 3, 2), init=Q, fixed_factors=[0, 2])
    ref = tl_tucker(Y, (2, 3, 2), init=tl.tucker_tensor.TuckerTensor((core, Q)), fixed_factors=[0, 2], tol=1e-10)
    np.testing.assert_array_equal(ours.factors[0], Q[0])
    np.testing.assert_array_equal(ours.factors[2], Q[2])
    assert _rel(ours, Y) <= _rel(tl.tucker_tensor.TuckerTensor(ref), Y) + 1e-8
    # A fixed factor that is not orthonormal is kept exactly and the planted tensor is still exact.
    T = tucker(X, (2, 3, 2), init=[factors[0], Q[1] + 0.5, Q[2] + 0.5], fixed_factors=[0])
    np.testing.assert_array_equal(T.factors[0], factors[0])
    assert _rel(T, X) < 1e-10


def test_cp_n_iter_max_zero_and_normalize_factors():
    X, factors = _planted_cp(7)
    start = [f + 0.2 for f in factors]
    cp0 = cp_als(X, 3, init=start, n_iter_max=0)
    np.testing.assert_allclose(cp0.to_tensor(), tl.cp_to_tensor((np.ones(3), start)), atol=1e-12)
    a = cp_als(X, 3, rng=0)
    b = cp_als(X, 3, rng=0, normalize_factors=False)
    np.testing.assert_array_equal(b.weights, np.ones(3))
    np.testing.assert_allclose(a.to_tensor(), b.to_tensor(), atol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(a.factors[0], axis=0), 1.0)
    norms = np.array([np.linalg.norm(f, axis=0) for f in b.factors])
    np.testing.assert_allclose(norms, norms[[0]].repeat(3, axis=0), rtol=1e-12)  # scale shared evenly


def test_cp_orthogonalise_reaches_tensorlys_error():
    X, _ = _planted_cp(8)
    Y = X + 0.05 * np.linalg.norm(X) / np.sqrt(X.size) * np.random.default_rng(9).standard_normal(X.shape)
    ours = cp_als(Y, 3, orthogonalise=5, compress=False, rng=0)
    ref = parafac(Y, 3, orthogonalise=5, n_iter_max=500, tol=1e-10, init="svd")
    assert _rel(ours, Y) <= _rel(tl.cp_tensor.CPTensor(ref), Y) * (1 + 1e-4)
    assert _rel(ours, Y) < 0.06


@pytest.mark.parametrize("seed", [10, 11, 12])
def test_cp_sparsity_recovers_low_rank_under_outliers(seed):
    X, _ = _planted_cp(seed)
    rng = np.random.default_rng(seed + 1)
    idx = rng.choice(X.size, 20, replace=False)
    Y = X.copy()
    Y.flat[idx] += rng.choice([-1.0, 1.0], 20) * 10
    robust = cp_als(Y, 3, sparsity=30, n_restarts=3, rng=0)
    assert _rel(robust, X) < 1e-8  # the clean tensor, although 20 entries are grossly wrong
    assert set(idx) <= set(np.flatnonzero(robust.sparse_component))
    assert robust.sparse_component.shape == X.shape and np.count_nonzero(robust.sparse_component) <= 30
    plain = cp_als(Y, 3, rng=0)
    assert plain.sparse_component is None and _rel(plain, X) > 0.1
    ref_cp, _ = parafac(Y, 3, sparsity=30, init="svd", n_iter_max=200)
    assert _rel(robust, X) < _rel(tl.cp_tensor.CPTensor(ref_cp), X)  # TensorLy only sparsifies the final residual
    frac = cp_als(Y, 3, sparsity=30 / X.size + 1e-9, n_restarts=3, rng=0)
    np.testing.assert_allclose(frac.to_tensor(), robust.to_tensor(), atol=1e-8)


def test_cp_callback_and_fixed_modes():
    X, factors = _planted_cp(12)
    Y = X + 0.01 * np.random.default_rng(13).standard_normal(X.shape)
    seen = []
    cp_als(Y, 3, init="random", compress=False, tol=0, n_iter_max=100, rng=0, callback=lambda it, err, f: seen.append((it, err)) or it == 6)
    assert [it for it, _ in seen] == list(range(7))
    cp = cp_als(Y, 3, init=[factors[0], factors[1] + 0.3, factors[2] + 0.3], fixed_modes=[0])
    # The fixed factor comes back as given, up to column scale and order (weights sort the components).
    assert congruence_coefficient(factors[0], cp.factors[0])[0] > 1 - 1e-12
    ref = parafac(Y, 3, init=tl.cp_tensor.CPTensor((np.ones(3), [factors[0], factors[1] + 0.3, factors[2] + 0.3])),
                  fixed_modes=[0], n_iter_max=500, tol=1e-12)
    assert _rel(cp, Y) <= _rel(tl.cp_tensor.CPTensor(ref), Y) * (1 + 1e-6)


def test_cp_estimator_forwards_the_new_options():
    X, _ = _planted_cp(14)
    Y = X.copy()
    Y.flat[[3, 50, 400]] += 8.0
    kwargs = dict(normalize_factors=False, orthogonalise=2, sparsity=5, n_restarts=1, compress=False)
    est = CP(rank=3, random_state=0, **kwargs).fit(Y)
    ref = cp_als(Y, 3, rng=0, **kwargs)
    np.testing.assert_allclose(est.to_tensor(), ref.to_tensor())
    np.testing.assert_array_equal(est.sparse_component_, ref.sparse_component)
    np.testing.assert_array_equal(est.weights_, np.ones(3))


_X = np.random.default_rng(0).standard_normal((4, 5, 6))


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: tucker(_X, 2, fixed_factors=[0]), ValueError, "fixed_factors"),
        (lambda: tucker(_X, 2, init=[np.ones((4, 2))] * 3, fixed_factors=[7]), ValueError, "fixed_factors"),
        (lambda: partial_tucker(_X, 2, modes=[1, 2], init=[np.ones((5, 2)), np.ones((6, 2))], fixed_factors=[0]),
         ValueError, "fixed_factors"),
        (lambda: tucker(_X, 2, init=[np.ones((4, 2))]), ValueError, "init"),
        (lambda: tucker(_X, 2, init=[np.ones((4, 3)), np.ones((5, 2)), np.ones((6, 2))]), ValueError, "shape"),
        (lambda: cp_als(_X, 2, normalize_factors="yes"), TypeError, "normalize_factors"),
        (lambda: cp_als(_X, 2, orthogonalise=-1), ValueError, "orthogonalise"),
        (lambda: cp_als(_X, 2, sparsity=1.5), ValueError, "sparsity"),
        (lambda: cp_als(_X, 2, sparsity=-2), ValueError, "sparsity"),
        (lambda: cp_als(_X, 2, sparsity=3, mask=np.ones(_X.shape, bool)), ValueError, "sparsity"),
        (lambda: cp_als(_X, 2, fixed_modes=[0]), ValueError, "fixed_modes"),
        (lambda: cp_als(_X, 2, init=[np.ones((n, 2)) for n in _X.shape], fixed_modes=[0, 1, 2]), ValueError, "free"),
        (lambda: cp_als(_X, 2, callback="print"), TypeError, "callback"),
        (lambda: cp_als(_X, 2, n_iter_max=-1), ValueError, "n_iter_max"),
    ],
)
def test_bad_options(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
