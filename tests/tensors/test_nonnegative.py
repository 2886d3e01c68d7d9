"""Non-negative CP and Tucker (HALS) against TensorLy's non_negative_parafac_hals / non_negative_tucker_hals,
TensorLy's own test thresholds, and analytic cases."""

import numpy as np
import pytest
import tensorly as tl
from tensorly.decomposition import non_negative_parafac_hals, non_negative_tucker_hals
from tensorly.metrics import congruence_coefficient

from lowrank.tensors import NonNegativeCP, NonNegativeTucker, non_negative_cp, non_negative_tucker


def _rel(T, X):
    return float(np.linalg.norm(T.to_tensor() - X) / np.linalg.norm(X))


def _planted_nn_cp(shape, rank, seed, noise=0.0):
    rng = np.random.default_rng(seed)
    factors = [rng.random((n, rank)) for n in shape]
    X = tl.cp_to_tensor((np.ones(rank), factors))
    if noise:
        E = rng.standard_normal(X.shape)
        X = X + noise * np.linalg.norm(X) / np.linalg.norm(E) * E
    return X, factors


def test_rank_one_non_negative_recovered_exactly():
    a, b, c = np.arange(1.0, 6), np.linspace(0.5, 2, 4), np.array([3.0, 0.0, 1.0])
    X = np.einsum("i,j,k->ijk", a, b, c)
    cp = non_negative_cp(X, 1, tol=0, n_iter_max=50)
    assert _rel(cp, X) < 1e-12
    for f, v in zip(cp.factors, (a, b, c)):
        np.testing.assert_allclose(f[:, 0], v / np.linalg.norm(v), atol=1e-12)
    np.testing.assert_allclose(cp.weights[0], np.linalg.norm(a) * np.linalg.norm(b) * np.linalg.norm(c), rtol=1e-12)


def test_tensorly_test_one_unconstrained_mode():
    # Port of TensorLy's test_non_negative_parafac_hals_one_unconstrained, with its thresholds.
    rng = np.random.RandomState(1234)
    weights = rng.uniform(size=3)
    A, B, C = rng.uniform(size=(8, 3)), rng.standard_normal(size=(9, 3)), rng.uniform(0.1, 1.1, size=(10, 3))
    X = tl.cp_to_tensor((weights, (A, B, C)))
    cp = non_negative_cp(X, 3, n_iter_max=100, tol=0, init="svd", nn_modes={0, 2})
    assert np.linalg.norm(X - cp.to_tensor()) < 1e-3
    for true, est in zip((A, B, C), cp.factors):
        assert congruence_coefficient(true, est, absolute_value=True)[0] > 0.99
    assert cp.factors[0].min() > -1e-10 and cp.factors[2].min() > -1e-10
    assert cp.factors[1].min() < 0  # the unconstrained mode really is unconstrained


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cp_not_worse_than_tensorly_same_iterations(seed):
    X, _ = _planted_nn_cp((15, 16, 17), 4, seed, noise=0.05)
    X = np.maximum(X, 0)
    ours = non_negative_cp(X, 4, n_iter_max=60, tol=0, rng=seed)
    ref = non_negative_parafac_hals(X, 4, n_iter_max=60, tol=0, random_state=seed)
    assert min(f.min() for f in ours.factors) >= 0
    assert _rel(ours, X) <= _rel(tl.cp_tensor.CPTensor(ref), X) * 1.01 + 1e-6
    assert _rel(ours, X) < 0.07  # at the noise floor (0.05) up to the non-negativity bias


def test_cp_mask_recovers_missing_entries():
    X, _ = _planted_nn_cp((12, 13, 14), 3, 3)
    mask = np.random.default_rng(4).random(X.shape) > 0.3
    Xn = np.where(mask, X, np.nan)
    cp = non_negative_cp(Xn, 3, mask=mask, n_iter_max=500, tol=1e-12, rng=0)
    assert _rel(cp, X) < 1e-3  # error on every entry, the missing ones included


def test_cp_n_iter_max_zero_is_the_initialization_and_fixed_modes_are_kept():
    X, factors = _planted_nn_cp((6, 7, 8), 2, 5)
    start = [f + 0.1 for f in factors]
    cp0 = non_negative_cp(X, 2, init=start, n_iter_max=0)
    np.testing.assert_allclose(cp0.to_tensor(), tl.cp_to_tensor((np.ones(2), start)), rtol=1e-12)
    cp = non_negative_cp(X, 2, init=[factors[0], start[1], start[2]], fixed_modes=[0], n_iter_max=300, tol=0)
    F0 = factors[0] / np.linalg.norm(factors[0], axis=0)
    assert congruence_coefficient(F0, cp.factors[0])[0] > 1 - 1e-12  # the fixed factor, up to scale
    assert _rel(cp, X) < 1e-4


def test_cp_callback_logs_and_stops_early():
    X, _ = _planted_nn_cp((8, 9, 10), 3, 6, noise=0.01)
    seen = []

    def callback(it, err, factors):
        seen.append(err)
        return it == 4

    non_negative_cp(X, 3, callback=callback, tol=0, n_iter_max=100, rng=0)
    assert len(seen) == 5
    assert all(b <= a + 1e-12 for a, b in zip(seen, seen[1:]))  # HALS never increases the error


def test_tucker_tensorly_thresholds_and_not_worse_than_tensorly():
    # TensorLy's test_non_negative_tucker: random non-negative (3, 4, 3) Tucker of full rank,
    # thresholds 1.0 on the relative 2-norm and the max-abs error.
    core, factors = tl.random.random_tucker((3, 4, 3), rank=[3, 4, 3], non_negative=True, random_state=0)
    X = tl.tucker_to_tensor((core, factors))
    T = non_negative_tucker(X, [3, 4, 3], n_iter_max=40, rng=0)
    assert T.core.min() >= 0 and min(f.min() for f in T.factors) >= 0
    assert _rel(T, X) < 1.0 and np.abs(X - T.to_tensor()).max() < 1.0
    rng = np.random.default_rng(1)
    Y = tl.tucker_to_tensor((rng.random((3, 3, 2)), [rng.random((n, r)) for n, r in [(10, 3), (11, 3), (12, 2)]]))
    ours = non_negative_tucker(Y, [3, 3, 2], n_iter_max=60, tol=0, rng=0)
    ref = non_negative_tucker_hals(Y, [3, 3, 2], n_iter_max=60, tol=0, random_state=0)
    assert _rel(ours, Y) <= _rel(tl.tucker_tensor.TuckerTensor(ref), Y) * 1.05 + 1e-6


def test_tucker_rank_one_exact_and_full_rank_none():
    a, b, c = np.arange(1.0, 5), np.linspace(1, 2, 3), np.array([2.0, 1.0])
    X = np.einsum("i,j,k->ijk", a, b, c)
    T = non_negative_tucker(X, 1, n_iter_max=50, tol=0)
    assert _rel(T, X) < 1e-12
    full = non_negative_tucker(X, None, n_iter_max=5)
    assert full.core.shape == X.shape


def test_tucker_mask():
    rng = np.random.default_rng(2)
    X = tl.tucker_to_tensor((rng.random((2, 2, 2)), [rng.random((n, 2)) for n in (10, 11, 12)]))
    mask = rng.random(X.shape) > 0.25
    T = non_negative_tucker(np.where(mask, X, np.nan), 2, mask=mask, n_iter_max=400, tol=1e-12, init="random", rng=0)
    assert _rel(T, X) < 1e-2


def test_torch_in_torch_out():
    torch = pytest.importorskip("torch")
    X, _ = _planted_nn_cp((6, 7, 8), 2, 7)
    cp_t = non_negative_cp(torch.as_tensor(X), 2, n_iter_max=30, rng=0)
    cp_n = non_negative_cp(X, 2, n_iter_max=30, rng=0)
    assert isinstance(cp_t.factors[0], torch.Tensor)
    np.testing.assert_allclose(cp_t.weights.numpy(), cp_n.weights, rtol=1e-8)
    for ft, fn in zip(cp_t.factors, cp_n.factors):
        np.testing.assert_allclose(ft.numpy(), fn, rtol=1e-8, atol=1e-10)
    T = non_negative_tucker(torch.as_tensor(X), 2, n_iter_max=5, rng=0)
    assert isinstance(T.core, torch.Tensor) and float(T.core.min()) >= 0


def test_estimators_forward_arguments_to_functions():
    X, _ = _planted_nn_cp((6, 7, 8), 2, 9, noise=0.01)
    est = NonNegativeCP(rank=2, init="random", n_iter_max=7, tol=1e-3, nn_modes=[0, 1], random_state=3).fit(X)
    ref = non_negative_cp(X, 2, init="random", n_iter_max=7, tol=1e-3, nn_modes=[0, 1], rng=3)
    np.testing.assert_allclose(est.to_tensor(), ref.to_tensor())
    assert est.n_iter_ == len(est.errors_) <= 7
    assert est.reconstruction_error_ == pytest.approx(_rel(ref, X), rel=1e-6)
    est = NonNegativeTucker(rank=(2, 2, 2), init="random", n_iter_max=9, tol=1e-4, random_state=4)
    D = est.fit_transform(X)
    ref = non_negative_tucker(X, (2, 2, 2), init="random", n_iter_max=9, tol=1e-4, rng=4)
    np.testing.assert_allclose(D.to_tensor(), ref.to_tensor())
    assert est.reconstruction_error_ == pytest.approx(_rel(ref, X), rel=1e-6)


_X = np.random.default_rng(0).random((4, 5, 6))


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: non_negative_cp(_X, 0), ValueError, "rank"),
        (lambda: non_negative_cp(_X, 2, init="nndsvd"), ValueError, "init"),
        (lambda: non_negative_cp(_X, 2, init=[np.ones((4, 2))]), ValueError, "init"),
        (lambda: non_negative_cp(_X, 2, init=[np.ones((4, 3)), np.ones((5, 2)), np.ones((6, 2))]), ValueError, "shape"),
        (lambda: non_negative_cp(_X, 2, n_iter_max=-1), ValueError, "n_iter_max"),
        (lambda: non_negative_cp(_X, 2, nn_modes=[5]), ValueError, "nn_modes"),
        (lambda: non_negative_cp(_X, 2, nn_modes="some"), ValueError, "nn_modes"),
        (lambda: non_negative_cp(_X, 2, fixed_modes=[0]), ValueError, "fixed_modes"),
        (lambda: non_negative_cp(_X, 2, callback=3), TypeError, "callback"),
        (lambda: non_negative_cp(_X.astype(complex), 2), TypeError, "real"),
        (lambda: non_negative_cp(np.full((3, 3), np.nan), 1), ValueError, "NaN"),
        (lambda: non_negative_tucker(_X, 7), ValueError, "rank"),
        (lambda: non_negative_tucker(_X, 2, init=[np.ones((4, 2))] * 3), ValueError, "init"),
        (lambda: non_negative_tucker(_X, 2, fixed_modes=[1]), ValueError, "fixed_modes"),
        (lambda: non_negative_tucker(_X, 2, tol=-1.0), ValueError, "tol"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.gpu
def test_cuda_in_cuda_out():
    torch = pytest.importorskip("torch")
    X, _ = _planted_nn_cp((10, 11, 12), 3, 8)
    cp = non_negative_cp(torch.as_tensor(X, device="cuda"), 3, n_iter_max=300, tol=0, rng=0)
    assert cp.factors[0].device.type == "cuda" and float(min(f.min() for f in cp.factors)) >= 0
    ref = non_negative_cp(X, 3, n_iter_max=300, tol=0, rng=0)
    np.testing.assert_allclose(cp.weights.cpu().numpy(), ref.weights, rtol=1e-6)
    T = non_negative_tucker(torch.as_tensor(X, device="cuda"), 3, n_iter_max=20, rng=0)
    assert T.core.device.type == "cuda" and float(T.core.min()) >= 0
