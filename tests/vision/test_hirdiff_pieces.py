"""HIR-Diff pieces against independent references: strong RRQR, coefficients, schedule, TV, operators, metrics."""

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lowrank.vision import (  # noqa: E402
    Denoise,
    Inpaint,
    SuperResolve,
    estimate_coefficients,
    exponential_schedule,
    select_bands,
    weighted_tv_loss,
)
from lowrank.vision._hsi_schedule import exponential_alpha_bar  # noqa: E402
from lowrank.vision._hsi_tv import edge_weights  # noqa: E402


def _low_rank_cube(rng, h=12, w=10, b=20, r=3, noise=0.0):
    cube = rng.random((h, w, r)) @ rng.random((r, b))
    return cube + noise * rng.standard_normal(cube.shape)


# ------------------------------------------------------------------------------------------------ bands

def test_rrqr_bands_satisfy_the_strong_rrqr_swap_bound(rng):
    cube = _low_rank_cube(rng, noise=0.01)
    bands = select_bands(cube, 3, rng=0)
    _, _, vh = np.linalg.svd(cube.reshape(-1, cube.shape[2]), full_matrices=False)
    v = vh[:3].T  # independent dense SVD
    vol = abs(np.linalg.det(v[bands]))
    for i, j in itertools.product(range(3), sorted(set(range(cube.shape[2])) - set(bands))):
        swapped = bands.copy()
        swapped[i] = j
        assert abs(np.linalg.det(v[swapped])) <= 1.2 * vol * (1 + 1e-8)


def test_rrqr_bands_are_better_conditioned_than_uniform_on_a_synthetic_cube():
    pytest.importorskip("skimage")
    pytest.importorskip("colour")
    from lowrank.datasets import synthetic_hyperspectral

    cube = synthetic_hyperspectral(shape=48, rng=0).cube
    _, _, vh = np.linalg.svd(cube.reshape(-1, cube.shape[2]), full_matrices=False)
    v = vh[:3].T
    cond_rrqr = np.linalg.cond(v[select_bands(cube, 3, rng=0)])
    cond_uniform = np.linalg.cond(v[select_bands(cube, 3, method="uniform")])
    assert cond_rrqr < cond_uniform
    best = min(np.linalg.cond(v[list(c)]) for c in itertools.combinations(range(cube.shape[2]), 3))
    assert cond_rrqr < 2.0 * best


def test_uniform_bands_are_equally_spaced():
    np.testing.assert_array_equal(select_bands(np.ones((4, 4, 31)), 3, method="uniform"), [0, 15, 30])


def test_coefficients_are_identity_at_bands_and_match_a_dense_svd(rng):
    cube = _low_rank_cube(rng, noise=0.01)
    bands = np.array([1, 8, 17])
    E = estimate_coefficients(cube, bands, rng=0)
    np.testing.assert_allclose(E[:, bands], np.eye(3), atol=1e-10)
    _, _, vh = np.linalg.svd(cube.reshape(-1, cube.shape[2]), full_matrices=False)
    v = vh[:3].T
    expected = (v @ np.linalg.inv(v[bands])).T
    np.testing.assert_allclose(E, expected, atol=1e-6)


def test_coefficients_rebuild_an_exact_rank3_cube(rng):
    cube = _low_rank_cube(rng)
    bands = select_bands(cube, 3, rng=1)
    E = estimate_coefficients(cube, bands, rng=1)
    np.testing.assert_allclose(cube[..., bands] @ E, cube, atol=1e-9)


def test_coefficients_torch_in_torch_out(rng):
    cube = torch.from_numpy(_low_rank_cube(rng))
    E = estimate_coefficients(cube, [0, 5, 10], rng=0)
    assert isinstance(E, torch.Tensor)
    np.testing.assert_allclose(E[:, [0, 5, 10]].numpy(), np.eye(3), atol=1e-9)
    # an exact rank-3 cube is rebuilt from its three bands
    np.testing.assert_allclose((cube[..., [0, 5, 10]] @ E).numpy(), cube.numpy(), atol=1e-9)


@pytest.mark.parametrize("bad, match", [
    (np.ones((4, 4)), "3-dimensional"),
    (np.full((4, 4, 5), np.nan), "NaN"),
])
def test_bad_cubes_are_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        select_bands(bad, 3)


def test_bad_bands_are_rejected(rng):
    cube = _low_rank_cube(rng)
    with pytest.raises(ValueError, match="distinct"):
        estimate_coefficients(cube, [1, 1, 2])
    with pytest.raises(ValueError, match=r"lie in \[0, 20\)"):
        estimate_coefficients(cube, [1, 2, 20])
    with pytest.raises(ValueError, match="n_bands"):
        select_bands(cube, 0)
    with pytest.raises(ValueError, match="method"):
        select_bands(cube, 3, method="random")


# --------------------------------------------------------------------------------------------- schedule

def test_exponential_schedule_matches_the_closed_form():
    t, ab = exponential_schedule(20, k=8.0, T=1000)
    np.testing.assert_array_equal(t, np.arange(950, -1, -50))
    assert round(float(ab[0]), 4) == 0.3251
    # closed form at t: 1e-3 + (1 - 1e-3) * (1 - exp(-8 (999 - t) / 1000)) / (1 - exp(-8 * 999 / 1000))
    expected = 1e-3 + (1 - 1e-3) * (1 - np.exp(-8 * (999 - t) / 1000)) / (1 - np.exp(-8 * 999 / 1000))
    np.testing.assert_allclose(ab, expected, rtol=1e-12)
    full = exponential_alpha_bar()
    assert full[0] == 1.0 and abs(full[-1] - 1e-3) < 1e-15 and np.all(np.diff(full) < 0)


def test_schedule_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_steps"):
        exponential_schedule(0)
    with pytest.raises(ValueError, match="k"):
        exponential_schedule(10, k=0.0)


# ---------------------------------------------------------------------------------------------------- TV

def _tv_numpy(x, w):
    dx = np.diff(x, axis=-1)
    dy = np.diff(x, axis=-2)
    dz = np.diff(x, axis=-3)
    return sum(np.mean(np.abs(wi * d)) for wi, d in zip(w, (dx, dy, dz)))


def test_weighted_tv_value_matches_numpy(rng):
    x = rng.standard_normal((1, 5, 6, 7))
    ref = rng.random((1, 5, 6, 7))
    w = edge_weights(torch.from_numpy(ref))
    got = float(weighted_tv_loss(torch.from_numpy(x), w))
    assert got == pytest.approx(_tv_numpy(x, [wi.numpy() for wi in w]), rel=1e-12)


def test_weighted_tv_rejects_numpy_and_low_dimensional_input(rng):
    x = rng.standard_normal((1, 4, 5, 6))
    with pytest.raises(TypeError, match="`x` must be a torch.Tensor"):
        weighted_tv_loss(x)
    with pytest.raises(ValueError, match="`x` must be"):
        weighted_tv_loss(torch.zeros(4, 5))


def test_weighted_tv_gradient_matches_finite_differences(rng):
    x = rng.standard_normal((1, 4, 5, 6))
    w = edge_weights(torch.from_numpy(rng.random((1, 4, 5, 6))))
    xt = torch.from_numpy(x).requires_grad_(True)
    (grad,) = torch.autograd.grad(weighted_tv_loss(xt, w), xt)
    wn = [wi.numpy() for wi in w]
    h = 1e-7  # random x: no difference is within h of zero, so TV is smooth there
    fd = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        fd[idx] = (_tv_numpy(x + e, wn) - _tv_numpy(x - e, wn)) / (2 * h)
    np.testing.assert_allclose(grad.numpy(), fd, rtol=1e-5, atol=1e-8)


def test_edge_weights_are_small_on_edges_and_bounded():
    ref = torch.zeros(1, 3, 8, 8)
    ref[..., 4:] = 1.0
    wx, wy, wz = edge_weights(ref, delta=0.5)
    assert float(max(wx.max(), wy.max(), wz.max())) == pytest.approx(1.0)
    assert float(wx[0, 0, 0, 3]) == pytest.approx(1.0 / 1.5 / 2.0)  # max / (max + delta max), then / 2
    assert float(wx[0, 0, 0, 0]) == pytest.approx(1.0)


def test_tv_rejects_bad_weights():
    with pytest.raises(ValueError, match="triple"):
        weighted_tv_loss(torch.zeros(2, 3, 3), (1.0, 1.0))


# ------------------------------------------------------------------------------------------- operators

def _dense(op, shape):
    n = int(np.prod(shape))
    cols = []
    for i in range(n):
        e = torch.zeros(n, dtype=torch.float64)
        e[i] = 1.0
        cols.append(op.forward(e.reshape(shape)).reshape(-1))
    return torch.stack(cols, dim=1).numpy()


@pytest.mark.parametrize("make", [
    lambda: Denoise(),
    lambda: SuperResolve(2, blur=0.8),
    lambda: SuperResolve(3, blur=1.0, kernel_size=5),
    lambda: Inpaint(np.random.default_rng(0).random((6, 6)) > 0.5),
    lambda: Inpaint(np.random.default_rng(1).random((6, 6, 2)) > 0.5),
])
def test_adjoint_is_the_transpose_of_the_dense_operator(make, rng):
    op = make()
    shape = (1, 2, 6, 6)
    A = _dense(op, shape)
    y = torch.from_numpy(rng.standard_normal(op.observed_shape(shape)))
    np.testing.assert_allclose(op.adjoint(y, shape).reshape(-1).numpy(), A.T @ y.reshape(-1).numpy(), atol=1e-12)


def test_super_resolve_matches_scipy_blur_and_block_mean(rng):
    from scipy.ndimage import gaussian_filter

    op = SuperResolve(4, blur=1.5)
    cube = rng.random((16, 20, 3))
    half = op.kernel_size // 2
    blurred = gaussian_filter(cube, sigma=(1.5, 1.5, 0), mode="mirror", truncate=half / 1.5)
    expected = blurred.reshape(4, 4, 5, 4, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(op.degrade(cube), expected, atol=1e-12)


def test_degrade_adds_noise_of_the_requested_size(rng):
    cube = np.zeros((64, 64, 8))
    noisy = Denoise().degrade(cube, 0.2, rng=0)
    assert noisy.std() == pytest.approx(0.2, rel=0.02)


def test_inpaint_random_mask_fraction_and_fill():
    op = Inpaint.random((50, 40), 0.8, rng=0)
    assert op.mask.mean() == pytest.approx(0.2, abs=0.02)
    cube = np.ones((50, 40, 3)) * np.array([1.0, 2.0, 3.0])
    y = torch.from_numpy(op.degrade(cube).transpose(2, 0, 1))[None]
    filled = op.initial_estimate(y)[0].numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(filled, cube, atol=1e-9)  # a constant image is filled exactly


def test_operator_argument_errors():
    with pytest.raises(ValueError, match="odd"):
        SuperResolve(2, blur=1.0, kernel_size=4)
    with pytest.raises(ValueError, match="multiple of `scale`"):
        SuperResolve(4)(torch.zeros(1, 2, 10, 12))
    with pytest.raises(ValueError, match="observes nothing"):
        Inpaint(np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="boolean"):
        Inpaint(np.full((4, 4), 0.5))


# --------------------------------------------------------------------------------------------- metrics

def test_metrics_match_scikit_image_and_a_direct_angle(rng):
    skm = pytest.importorskip("skimage.metrics")
    from lowrank.vision.metrics_hsi import psnr, sam, ssim

    ref = rng.random((24, 20, 4))
    est = np.clip(ref + 0.05 * rng.standard_normal(ref.shape), 0, 1)
    expected_psnr = np.mean([skm.peak_signal_noise_ratio(ref[..., b], est[..., b], data_range=1.0) for b in range(4)])
    expected_ssim = np.mean([skm.structural_similarity(est[..., b], ref[..., b], data_range=1.0, gaussian_weights=True,
                                                       sigma=1.5, use_sample_covariance=False) for b in range(4)])
    assert psnr(est, ref, data_range=1.0) == pytest.approx(expected_psnr, rel=1e-10)
    assert ssim(est, ref, data_range=1.0) == pytest.approx(expected_ssim, rel=1e-8)
    from scipy.spatial.distance import cosine

    angles = [np.degrees(np.arccos(1 - cosine(e, r))) for e, r in zip(est.reshape(-1, 4), ref.reshape(-1, 4))]
    assert sam(est, ref) == pytest.approx(np.mean(angles), rel=1e-8)


def test_metrics_reject_shape_mismatch():
    from lowrank.vision.metrics_hsi import psnr

    with pytest.raises(ValueError, match="same shape"):
        psnr(np.zeros((2, 2, 2)), np.zeros((2, 2, 3)))


# --------------------------------------------------------------- step size and noise-aware start (HIRDiff)

def _dense_k(op, coefficients, shape):
    """Dense matrix of a -> M H(E^T a) on a reduced image a of ``shape`` (1, r, H, W), column by column."""
    n = int(np.prod(shape))
    mask = op._mask_tensor(torch.zeros(1, dtype=torch.float64)) if isinstance(op, Inpaint) else None
    cols = []
    for i in range(n):
        a = torch.zeros(n, dtype=torch.float64)
        a[i] = 1.0
        obs = op.forward(torch.einsum("rb,nrhw->nbhw", coefficients, a.reshape(shape)))
        cols.append((obs * mask if mask is not None else obs).reshape(-1))
    return torch.stack(cols, dim=1).numpy()


@pytest.mark.parametrize("make", [
    lambda: Denoise(),
    lambda: SuperResolve(2, blur=0.8),
    lambda: SuperResolve(4, blur=2.0),
    lambda: Inpaint(np.random.default_rng(0).random((8, 8)) > 0.5),
    lambda: Inpaint(np.random.default_rng(1).random((8, 8, 5)) > 0.3),
])
def test_fidelity_lipschitz_is_a_quarter_of_the_top_eigenvalue_of_the_dense_gram(make, rng):
    from lowrank.vision.hirdiff import fidelity_lipschitz

    op = make()
    coefficients = torch.from_numpy(rng.standard_normal((2, 5)))
    shape = (1, 2, 8, 8)
    K = _dense_k(op, coefficients, shape)
    expected = 0.25 * np.linalg.eigvalsh(K.T @ K)[-1]
    mask = op._mask_tensor(torch.zeros(1, dtype=torch.float64)) if isinstance(op, Inpaint) else None
    got = fidelity_lipschitz(op, coefficients, shape, mask=mask, n_iter=300)
    np.testing.assert_allclose(got, expected, rtol=1e-3)
    assert fidelity_lipschitz(op, coefficients, shape, mask=mask) <= expected * (1 + 1e-9)  # from below


def test_rank_residual_noise_recovers_the_planted_noise_level():
    from lowrank.vision.hirdiff import rank_residual_noise

    rng = np.random.default_rng(3)
    clean = rng.random((40, 3)) @ rng.random((3, 31))            # 40 pixels... of rank 3
    clean = np.tile(clean, (50, 1))                               # 2000 pixels x 31 bands
    y = clean + 0.07 * rng.standard_normal(clean.shape)
    v = np.linalg.svd(y, full_matrices=False)[2][:3].T            # independent dense SVD
    y_t = torch.from_numpy(y.T.reshape(1, 31, 40, 50))
    assert abs(rank_residual_noise(y_t, torch.from_numpy(v), 3) / 0.07 - 1) < 0.03
    with pytest.raises(ValueError, match="bands"):
        rank_residual_noise(y_t[:, :3], torch.from_numpy(v[:3]), 3)


def test_estimate_noise_level_matches_the_monte_carlo_error_of_least_squares():
    from lowrank.vision.hirdiff import estimate_noise_level

    rng = np.random.default_rng(4)
    E = rng.random((3, 31)) * np.array([[1.0], [0.5], [0.2]])
    sigma = 0.05
    noise = sigma * rng.standard_normal((20000, 31))
    a_err = np.linalg.lstsq(E.T, noise.T, rcond=None)[0]          # A_hat - A for y = A E + noise
    monte_carlo = 2 * np.sqrt(np.mean(a_err**2))                  # in [-1, 1] units: twice the [0, 1] error
    assert abs(estimate_noise_level(sigma, torch.from_numpy(E)) / monte_carlo - 1) < 0.02


def test_matched_schedule_starts_at_the_first_level_above_sigma():
    from lowrank.vision._hsi_schedule import matched_schedule

    full = exponential_alpha_bar()
    levels = np.sqrt((1 - full) / full)
    grid, _ = exponential_schedule(20)
    for sigma in (0.05, 0.17, 0.9, 1.5):
        t, ab, s0 = matched_schedule(20, 8.0, sigma)
        assert levels[t[0] - 1] < sigma <= levels[t[0]] == s0
        np.testing.assert_array_equal(t[1:], grid[grid < t[0]])
        np.testing.assert_allclose(ab, full[t], rtol=0)
    t, ab, s0 = matched_schedule(20, 8.0, 0.0)
    assert list(t) == [0] and s0 == 0.0
    t, _, _ = matched_schedule(20, 8.0, 1e6)                        # above the schedule: its last step
    assert t[0] == 999 and t[1] == 950
    with pytest.raises(ValueError, match="sigma"):
        matched_schedule(20, 8.0, -1.0)
