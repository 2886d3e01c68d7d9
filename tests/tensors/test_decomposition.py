"""HOSVD / Tucker / CP / TT against dense SVDs, TensorLy and planted truth."""

import numpy as np
import pytest

tl = pytest.importorskip("tensorly")

from lowrank.tensors import CP, Tucker, cp_als, hosvd, partial_tucker, st_hosvd, tt_svd, tucker  # noqa: E402


def _rel(A, B):
    return np.linalg.norm(np.asarray(A) - np.asarray(B)) / np.linalg.norm(np.asarray(B))


def _planted_tucker(shape, ranks, noise, seed):
    rng = np.random.default_rng(seed)
    core = rng.standard_normal(ranks)
    U = [np.linalg.qr(rng.standard_normal((n, r)))[0] for n, r in zip(shape, ranks)]
    T = tl.tucker_to_tensor((core, U))
    E = rng.standard_normal(shape)
    return T, T + noise * np.linalg.norm(T) / np.linalg.norm(E) * E


def _planted_cp(shape, rank, noise, seed, dist="normal"):
    rng = np.random.default_rng(seed)
    A = [rng.standard_normal((n, rank)) if dist == "normal" else rng.random((n, rank)) for n in shape]
    T = tl.cp_to_tensor((np.ones(rank), A))
    E = rng.standard_normal(shape)
    return A, T, T + noise * np.linalg.norm(T) / np.linalg.norm(E) * E


def _dense(D):
    """Dense numpy reconstruction of a TensorLy decomposition holding torch (or numpy) arrays."""
    from lowrank._utils.backend import to_numpy as np_
    if isinstance(D, tl.tucker_tensor.TuckerTensor):
        return tl.tucker_to_tensor((np_(D.core), [np_(f) for f in D.factors]))
    if isinstance(D, tl.cp_tensor.CPTensor):
        return tl.cp_to_tensor((np_(D.weights), [np_(f) for f in D.factors]))
    return tl.tt_to_tensor([np_(f) for f in D.factors])


def _unfold(X, n):
    return np.moveaxis(X, n, 0).reshape(X.shape[n], -1)


def _projector(U):
    return U @ U.T


# ----------------------------------------------------------------------------- HOSVD family


def test_hosvd_factors_are_leading_singular_subspaces():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((7, 8, 9))
    T = hosvd(X, rank=(3, 4, 5))
    for n, r in enumerate((3, 4, 5)):
        U_ref = np.linalg.svd(_unfold(X, n), full_matrices=False)[0][:, :r]
        np.testing.assert_allclose(np.abs(T.factors[n]), np.abs(U_ref), atol=1e-8)
        np.testing.assert_allclose(T.factors[n].T @ T.factors[n], np.eye(r), atol=1e-12)
    core_ref = tl.tenalg.multi_mode_dot(X, T.factors, transpose=True)
    np.testing.assert_allclose(T.core, core_ref, atol=1e-12)


def test_hosvd_exact_on_planted_tucker_and_tall_unfolding():
    T, _ = _planted_tucker((30, 4, 5), (3, 2, 2), 0.0, 1)
    for fn in (hosvd, st_hosvd):
        assert _rel(fn(T, rank=(3, 2, 2)).to_tensor(), T) < 1e-10
    # mode 0 is taller (30) than the rest of its unfolding (20): the other-side Gram is used
    X = np.random.default_rng(2).standard_normal((30, 4, 5))
    U = hosvd(X, rank=(12, 2, 2)).factors[0]
    U_ref = np.linalg.svd(_unfold(X, 0), full_matrices=False)[0][:, :12]
    np.testing.assert_allclose(_projector(U), _projector(U_ref), atol=1e-8)


def test_randomized_svd_option_matches_gram():
    _, X = _planted_tucker((40, 30, 20), (4, 3, 2), 0.01, 3)
    a = hosvd(X, rank=(4, 3, 2)).to_tensor()
    b = hosvd(X, rank=(4, 3, 2), svd="randomized", rng=0).to_tensor()
    assert _rel(a, b) < 1e-6


def test_tol_chooses_ranks_within_error_bound():
    _, X = _planted_tucker((20, 21, 22), (3, 4, 5), 0.01, 4)
    for fn in (hosvd, st_hosvd):
        T = fn(X, tol=0.05)
        assert tuple(T.core.shape) == (3, 4, 5)
        assert _rel(T.to_tensor(), X) <= 0.05
    assert tuple(hosvd(X, tol=0.05, rank=2).core.shape) == (2, 2, 2)


def test_st_hosvd_no_worse_than_hosvd_and_hooi_no_worse_than_both():
    _, X = _planted_tucker((25, 26, 27), (5, 5, 5), 0.3, 5)
    e_h = _rel(hosvd(X, rank=3).to_tensor(), X)
    e_st = _rel(st_hosvd(X, rank=3).to_tensor(), X)
    e_hooi = _rel(tucker(X, rank=3).to_tensor(), X)
    assert e_hooi <= min(e_h, e_st) + 1e-12


def test_tucker_matches_tensorly_error():
    _, X = _planted_tucker((20, 22, 24), (4, 4, 4), 0.5, 6)
    ours = _rel(tucker(X, rank=(3, 4, 2)).to_tensor(), X)
    ref = tl.decomposition.tucker(X, rank=[3, 4, 2], init="svd", tol=1e-10, n_iter_max=500)
    assert ours <= _rel(tl.tucker_to_tensor(ref), X) + 1e-8


def test_partial_tucker_matches_tensorly():
    X = np.random.default_rng(7).standard_normal((6, 7, 8))
    core, factors = partial_tucker(X, rank=(3, 4), modes=(0, 2), tol=1e-12)
    assert core.shape == (3, 7, 4)
    (core_ref, _), _ = tl.decomposition.partial_tucker(X, rank=[3, 4], modes=[0, 2], tol=1e-12, n_iter_max=500)
    np.testing.assert_allclose(np.linalg.norm(core), np.linalg.norm(core_ref), rtol=1e-6)


def test_tucker_init_given_and_random():
    T, X = _planted_tucker((15, 16, 17), (2, 3, 2), 0.01, 8)
    ref = tucker(X, rank=(2, 3, 2))
    warm = tucker(X, rank=(2, 3, 2), init=ref, n_iter_max=2)
    rnd = tucker(X, rank=(2, 3, 2), init="random", rng=np.random.default_rng(0))
    for D in (warm, rnd):
        assert abs(_rel(D.to_tensor(), X) - _rel(ref.to_tensor(), X)) < 1e-8


def test_tucker_with_mask_recovers_planted_tensor():
    T, X = _planted_tucker((25, 25, 25), (3, 3, 3), 0.0, 9)
    mask = np.random.default_rng(9).random(X.shape) < 0.3
    X_missing = np.where(mask, X, np.nan)
    D = tucker(X_missing, rank=3, mask=mask, n_iter_max=300, tol=1e-12)
    assert _rel(D.to_tensor(), T) < 1e-4
    # the masked-Gram initialization beats a zero-filled HOSVD on the same data
    masked = _rel(hosvd(X_missing, rank=3, mask=mask).to_tensor(), T)
    zero_filled = _rel(hosvd(np.where(mask, X, 0.0), rank=3).to_tensor(), T)
    assert masked < zero_filled


def test_st_hosvd_with_mask_imputes_first():
    T, X = _planted_tucker((20, 20, 20), (2, 2, 2), 0.0, 10)
    mask = np.random.default_rng(10).random(X.shape) < 0.5
    D = st_hosvd(np.where(mask, X, np.nan), rank=2, mask=mask)
    assert _rel(D.to_tensor(), T) < _rel(np.where(mask, X, 0.0), T)


# ----------------------------------------------------------------------------- CP


def _congruence(A_true, A_est):
    """Best-permutation mean column congruence over all modes (1 = identical up to scale/sign)."""
    from scipy.optimize import linear_sum_assignment

    R = A_true[0].shape[1]
    C = np.ones((R, R))
    for At, Ae in zip(A_true, A_est):
        At = At / np.linalg.norm(At, axis=0)
        Ae = Ae / np.linalg.norm(Ae, axis=0)
        C = C * np.abs(At.T @ Ae)
    rows, cols = linear_sum_assignment(-C)
    return C[rows, cols].mean()


@pytest.mark.parametrize("compress", [True, False])
def test_cp_recovers_exact_planted_factors(compress):
    A, T, _ = _planted_cp((12, 13, 14), 4, 0.0, 11)
    cp = cp_als(T, 4, compress=compress, rng=0)
    assert _rel(cp.to_tensor(), T) < 1e-8
    assert _congruence(A, cp.factors) > 1 - 1e-8
    w = np.asarray(cp.weights)
    assert np.all(np.diff(w) <= 0)
    np.testing.assert_allclose(np.linalg.norm(cp.factors[0], axis=0), 1.0)


@pytest.mark.parametrize("dist", ["normal", "uniform"])
def test_cp_reaches_noise_floor_on_every_seed(dist):
    for seed in range(8):
        _, _, X = _planted_cp((30, 30, 30), 5, 0.01, 100 + seed, dist)
        err = _rel(cp_als(X, 5, rng=seed).to_tensor(), X)
        assert err <= 0.0101, (seed, err)


def test_cp_noise_floor_not_worse_than_tensorly():
    _, _, X = _planted_cp((20, 21, 22), 3, 0.05, 12)
    ours = _rel(cp_als(X, 3, rng=0).to_tensor(), X)
    ref = tl.decomposition.parafac(X, 3, init="svd", n_iter_max=1000, tol=1e-12)
    assert ours <= _rel(tl.cp_to_tensor(ref), X) + 1e-6


def test_cp_four_way_and_random_restarts():
    A, T, _ = _planted_cp((6, 7, 8, 9), 3, 0.0, 13)
    cp = cp_als(T, 3, init="random", n_restarts=2, rng=np.random.default_rng(1), n_iter_max=500)
    assert _rel(cp.to_tensor(), T) < 1e-6


def test_cp_init_from_cptensor():
    A, T, X = _planted_cp((10, 11, 12), 3, 0.01, 14)
    start = tl.cp_tensor.CPTensor((np.ones(3), A))
    cp = cp_als(X, 3, init=start, n_iter_max=50)
    assert _rel(cp.to_tensor(), T) < 0.01


def test_cp_with_mask_recovers_planted_tensor():
    _, T, _ = _planted_cp((20, 21, 22), 3, 0.0, 15)
    mask = np.random.default_rng(15).random(T.shape) < 0.4
    cp = cp_als(np.where(mask, T, np.nan), 3, mask=mask, n_iter_max=500, rng=0)
    assert _rel(cp.to_tensor(), T) < 1e-3


# ----------------------------------------------------------------------------- TT


def test_tt_svd_matches_tensorly_and_is_exact_at_tt_rank():
    X = np.random.default_rng(16).standard_normal((5, 6, 7, 4))
    ours = tt_svd(X, rank=[1, 3, 5, 2, 1])
    ref = tl.decomposition.tensor_train(X, [1, 3, 5, 2, 1])
    assert [c.shape for c in ours.factors] == [c.shape for c in ref.factors]
    np.testing.assert_allclose(_rel(ours.to_tensor(), X), _rel(tl.tt_to_tensor(ref), X), rtol=1e-8)
    x = np.linspace(0, 1, 8)
    S = np.sin(x[:, None, None] + 2 * x[None, :, None] + 3 * x[None, None, :])
    assert _rel(tt_svd(S, rank=2).to_tensor(), S) < 1e-10


def test_tt_svd_tol():
    X = np.random.default_rng(17).standard_normal((6, 7, 8))
    for tol in (0.1, 0.5):
        tt = tt_svd(X, tol=tol)
        assert _rel(tt.to_tensor(), X) <= tol


def test_tt_svd_with_mask():
    x = np.linspace(0, 1, 15)
    S = np.sin(x[:, None, None] + 2 * x[None, :, None] + 3 * x[None, None, :])
    mask = np.random.default_rng(18).random(S.shape) < 0.5
    tt = tt_svd(np.where(mask, S, np.nan), rank=2, mask=mask, n_iter_max=200)
    assert _rel(tt.to_tensor(), S) < 1e-3


# ----------------------------------------------------------------------------- torch, estimators, errors


def test_torch_in_torch_out_matches_numpy():
    torch = pytest.importorskip("torch")
    _, X = _planted_tucker((10, 11, 12), (2, 3, 2), 0.01, 19)
    Xt = torch.tensor(X)
    for fn, kw in [(hosvd, {"rank": 2}), (st_hosvd, {"rank": 2}), (tucker, {"rank": 2}), (cp_als, {"rank": 2, "rng": 0}), (tt_svd, {"rank": 2})]:
        a, b = fn(X, **kw), fn(Xt, **kw)
        assert all(isinstance(f, torch.Tensor) for f in b.factors)
        np.testing.assert_allclose(_dense(b), a.to_tensor(), atol=1e-10)
    core, factors = partial_tucker(Xt, rank=2, modes=[1])
    assert isinstance(core, torch.Tensor)
    m = np.random.default_rng(0).random(X.shape) < 0.5
    for fn in (tucker, cp_als):
        a, b = fn(X, 2, mask=m, n_iter_max=5), fn(Xt, 2, mask=torch.tensor(m), n_iter_max=5)
        assert isinstance(b.factors[0], torch.Tensor)
        np.testing.assert_allclose(_dense(b), a.to_tensor(), atol=1e-10)
    f32 = hosvd(Xt.to(torch.float32), rank=2)
    assert f32.core.dtype == torch.float32


@pytest.mark.gpu
def test_cuda_in_cuda_out():
    torch = pytest.importorskip("torch")
    _, X = _planted_tucker((20, 21, 22), (2, 3, 2), 0.01, 20)
    Xt = torch.tensor(X, device="cuda")
    for fn, kw in [(hosvd, {"rank": 2}), (tucker, {"rank": 2}), (tt_svd, {"rank": 2})]:
        out = fn(Xt, **kw)
        assert all(f.device.type == "cuda" for f in out.factors)
        np.testing.assert_allclose(_dense(out), fn(X, **kw).to_tensor(), atol=1e-8)
    # CP-ALS may settle on a different (equally good) rank-2 fit on another BLAS: compare fit quality.
    out = cp_als(Xt, rank=2, rng=0)
    assert all(f.device.type == "cuda" for f in out.factors)
    err_cuda = np.linalg.norm(_dense(out) - X) / np.linalg.norm(X)
    err_cpu = np.linalg.norm(cp_als(X, rank=2, rng=0).to_tensor() - X) / np.linalg.norm(X)
    assert abs(err_cuda - err_cpu) < 1e-3 * max(err_cpu, 1e-12) + 1e-6
    mask = torch.rand(Xt.shape, device="cuda") < 0.5
    assert tucker(Xt, rank=2, mask=mask).core.device.type == "cuda"


def test_estimators_forward_arguments_to_functions():
    A, T, X = _planted_cp((9, 10, 11), 2, 0.01, 21)
    est = Tucker(rank=(2, 2, 2), init="random", n_iter_max=7, tol=1e-3, random_state=3).fit(X)
    ref = tucker(X, rank=(2, 2, 2), init="random", n_iter_max=7, tol=1e-3, rng=3)
    np.testing.assert_allclose(est.to_tensor(), ref.to_tensor())
    assert est.n_iter_ == len(est.errors_) <= 7
    np.testing.assert_allclose(est.transform(X), est.core_, atol=1e-12)
    est = CP(rank=2, init="random", n_restarts=1, compress=False, line_search=False, n_iter_max=9, tol=1e-4, random_state=4)
    D = est.fit_transform(X)
    ref = cp_als(X, 2, init="random", n_restarts=1, compress=False, line_search=False, n_iter_max=9, tol=1e-4, rng=4)
    np.testing.assert_allclose(D.to_tensor(), ref.to_tensor())
    assert est.reconstruction_error_ == pytest.approx(_rel(ref.to_tensor(), X), rel=1e-6)


def test_same_seed_same_result():
    _, _, X = _planted_cp((8, 9, 10), 3, 0.1, 22)
    a = cp_als(X, 3, init="random", n_restarts=2, rng=5).to_tensor()
    b = cp_als(X, 3, init="random", n_restarts=2, rng=5).to_tensor()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda X: hosvd(X), ValueError, "give `rank`, `tol`"),
        (lambda X: hosvd(X, rank=9), ValueError, "rank"),
        (lambda X: hosvd(X, rank=2.5), TypeError, "rank"),
        (lambda X: hosvd(X, rank=(2, 2)), ValueError, "one rank per mode"),
        (lambda X: hosvd(X, tol=1.5), ValueError, "tol"),
        (lambda X: hosvd(X, rank=2, svd="qr"), ValueError, "svd"),
        (lambda X: hosvd(X[0, 0], rank=1), ValueError, "at least 2 dimensions"),
        (lambda X: hosvd(X + 1j, rank=1), TypeError, "real"),
        (lambda X: tucker(np.where(X > 0, np.nan, X), rank=2), ValueError, "NaN"),
        (lambda X: tucker(X, rank=2, mask=np.ones((2, 2), bool)), ValueError, "mask"),
        (lambda X: tucker(X, rank=2, mask=np.zeros(X.shape, bool)), ValueError, "at least one"),
        (lambda X: tucker(X, rank=2, init="nope"), ValueError, "init"),
        (lambda X: tucker(X, rank=2, n_iter_max=-1), ValueError, "n_iter_max"),
        (lambda X: partial_tucker(X, rank=2, modes=[0, 0]), ValueError, "modes"),
        (lambda X: cp_als(X, 0), ValueError, "rank"),
        (lambda X: cp_als(X, 2, tol=-1), ValueError, "tol"),
        (lambda X: cp_als(X, 2, compress="yes"), TypeError, "compress"),
        (lambda X: cp_als(X, 2, rng=-1), ValueError, "rng"),
        (lambda X: tt_svd(X, rank=[1, 2, 3]), ValueError, "rank"),
        (lambda X: tt_svd(X, tol=0.1, svd="randomized"), ValueError, "tol"),
    ],
)
def test_bad_input(call, exc, match):
    X = np.random.default_rng(0).standard_normal((4, 5, 6))
    with pytest.raises(exc, match=match):
        call(X)


def test_cp_als_float32_on_tiny_tensors_never_hits_a_singular_gram():
    # a 1e-12 ridge vanished in float32, and on some BLAS builds a collapsed factor made the normal
    # equations exactly singular (LinAlgError); the float32 fit must track the float64 one
    for seed in range(10):
        X = np.random.default_rng(seed).standard_normal((5, 4, 3))
        e64 = np.linalg.norm(cp_als(X, 2, rng=0).to_tensor() - X) / np.linalg.norm(X)
        D32 = cp_als(X.astype(np.float32), 2, rng=0)
        e32 = np.linalg.norm(D32.to_tensor().astype(np.float64) - X) / np.linalg.norm(X)
        assert np.isfinite(e32) and e32 <= e64 + 0.05, (seed, e32, e64)
