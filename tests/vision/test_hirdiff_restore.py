"""HIRDiff end to end: restoration improves a small synthetic cube by a clear margin; API and priors."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lowrank.vision import HIRDiff, Inpaint, SuperResolve  # noqa: E402
from lowrank.vision.metrics_hsi import psnr  # noqa: E402
from lowrank.vision.prior import (  # noqa: E402
    DenoiserPrior,
    EpsilonPrior,
    SmallUNet,
    TVDenoiser,
    load_unet,
    save_unet,
    train_prior,
)


@pytest.fixture(scope="module")
def clean():
    """A piecewise-smooth rank-3 cube with planted spectra (no optional data packages needed)."""
    rng = np.random.default_rng(0)
    h = w = 32
    yy, xx = np.mgrid[:h, :w] / h
    regions = np.stack([(xx < 0.5) & (yy < 0.6), (xx >= 0.5) & (yy < 0.6), yy >= 0.6], axis=-1).astype(float)
    shading = 0.7 + 0.3 * np.cos(3 * xx + 2 * yy)[..., None]
    wavelengths = np.linspace(0, 1, 24)
    spectra = np.stack([0.2 + 0.6 * wavelengths, 0.8 - 0.5 * wavelengths, 0.4 + 0.3 * np.sin(6 * wavelengths)])
    cube = (regions * shading) @ spectra + 0.01 * rng.random((h, w, 1))
    return cube / cube.max()


def _psnr(x, ref):
    return psnr(x, ref, data_range=1.0)


def test_denoising_with_the_fallback_prior_gains_many_decibels(clean):
    noisy = clean + 0.15 * np.random.default_rng(1).standard_normal(clean.shape)
    model = HIRDiff(prior="tv", n_steps=8, random_state=0)
    restored = model.restore(noisy, "denoise")
    assert restored.shape == clean.shape and restored.dtype == np.float64
    assert _psnr(restored, clean) > _psnr(noisy, clean) + 8
    np.testing.assert_allclose(model.coefficients_[:, model.bands_], np.eye(3), atol=1e-8)
    # noise-aware start: the steps above the estimate's noise level are skipped
    assert len(model.loss_history_) == len(model.timesteps_) <= 8 + 1 and model.timesteps_[-1] == 0


def test_matched_start_begins_at_the_noise_level_of_the_rank3_estimate(clean):
    from lowrank.vision._hsi_schedule import exponential_alpha_bar

    sigma = 0.1
    noisy = clean + sigma * np.random.default_rng(5).standard_normal(clean.shape)
    model = HIRDiff(prior="tv", n_steps=20, start="matched", start_sigma=1.0, random_state=0)
    restored = model.restore(noisy, "denoise")
    # independent reference: least-squares error of the rank-3 estimate of the bands, by Monte Carlo
    E = model.coefficients_
    a_err = np.linalg.lstsq(E.T, (noisy - clean).reshape(-1, clean.shape[2]).T, rcond=None)[0]
    level = 2 * np.sqrt(np.mean(a_err**2)) / model.scale_         # in the prior's [-1, 1] units
    full = exponential_alpha_bar()
    levels = np.sqrt((1 - full) / full)
    t0 = model.timesteps_[0]
    assert levels[t0 - 5] < level < levels[t0 + 5]                # the start step's level matches it
    assert _psnr(restored, clean) > _psnr(noisy, clean) + 8
    with pytest.raises(ValueError, match="matched"):
        HIRDiff(prior="tv", start="matched").restore(SuperResolve(2).degrade(clean), "sr", scale=2)


def test_super_resolution_beats_nearest_and_bicubic_upsampling(clean):
    from lowrank.vision._hsi_baselines import interpolation_baseline

    op = SuperResolve(2, blur=0.8)
    low = op.degrade(clean, 0.01, rng=0)
    restored = HIRDiff(prior="tv", n_steps=20, random_state=0).restore(low, "sr", scale=2, blur=0.8)
    assert restored.shape == clean.shape
    nearest = np.repeat(np.repeat(low, 2, axis=0), 2, axis=1)
    assert _psnr(restored, clean) > _psnr(nearest, clean) + 1
    assert _psnr(restored, clean) > _psnr(interpolation_baseline(low, op), clean) + 2


def test_inpainting_fills_missing_pixels(clean):
    op = Inpaint.random(clean.shape[:2], 0.7, rng=0)
    observed = op.degrade(clean)
    restored = HIRDiff(prior="tv", n_steps=8, random_state=0).restore(observed, "inpaint", mask=op.mask)
    missing = ~op.mask
    err_restored = np.sqrt(np.mean((restored[missing] - clean[missing]) ** 2))
    err_zero = np.sqrt(np.mean(clean[missing] ** 2))
    assert err_restored < 0.2 * err_zero


def test_same_seed_same_result_and_torch_in_torch_out(clean):
    noisy = clean + 0.1 * np.random.default_rng(2).standard_normal(clean.shape)
    a = HIRDiff(prior="tv", n_steps=3, random_state=5).restore(noisy)
    b = HIRDiff(prior="tv", n_steps=3, random_state=5).restore(noisy)
    np.testing.assert_array_equal(a, b)
    out = HIRDiff(prior="tv", n_steps=3, random_state=5).restore(torch.from_numpy(noisy).float())
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), a, atol=1e-4)


def test_tiny_unet_prior_runs_through_the_sampler(clean):
    noisy = clean + 0.15 * np.random.default_rng(3).standard_normal(clean.shape)
    torch.manual_seed(0)
    prior = DenoiserPrior(SmallUNet(channels=8, channel_mult=(1, 2), n_res_blocks=1).eval())
    restored = HIRDiff(prior=prior, n_steps=4, random_state=0).restore(noisy)
    assert _psnr(restored, clean) > _psnr(noisy, clean) + 3


def test_epsilon_and_denoiser_adapters_agree():
    denoiser = TVDenoiser()
    x_t = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    ab = 0.6

    def eps_model(x, t):  # the same denoiser expressed as a noise predictor
        sigma = torch.full((x.shape[0],), np.sqrt((1 - ab) / ab))
        return (x - np.sqrt(ab) * denoiser(x / np.sqrt(ab), sigma)) / np.sqrt(1 - ab)

    x0_d, eps_d = DenoiserPrior(denoiser).predict(x_t, ab, 400)
    x0_e, eps_e = EpsilonPrior(eps_model).predict(x_t, ab, 400)
    torch.testing.assert_close(x0_d, x0_e, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(eps_d, eps_e, atol=1e-5, rtol=1e-5)
    # x_t = sqrt(ab) x0 + sqrt(1 - ab) eps holds by construction
    torch.testing.assert_close(np.sqrt(ab) * x0_d + np.sqrt(1 - ab) * eps_d, x_t, atol=1e-5, rtol=1e-5)


def test_tv_denoiser_reduces_error_and_is_identity_at_zero_noise():
    g = torch.Generator().manual_seed(0)
    clean = torch.zeros(1, 3, 24, 24)
    clean[..., 8:16, 8:16] = 1.0
    noisy = clean + 0.3 * torch.randn(clean.shape, generator=g)
    out = TVDenoiser()(noisy, torch.tensor([0.3]))
    assert float(((out - clean) ** 2).mean()) < 0.2 * float(((noisy - clean) ** 2).mean())
    torch.testing.assert_close(TVDenoiser()(noisy, torch.tensor([0.0])), noisy, atol=1e-5, rtol=0)


def test_unet_weights_round_trip_exactly(tmp_path):
    torch.manual_seed(0)
    net = SmallUNet(channels=8, channel_mult=(1, 2), n_res_blocks=1)
    for p in net.parameters():  # non-zero output layer so that the check means something
        p.data.normal_(0, 0.1)
    path = tmp_path / "w.npz"
    save_unet(net, path, half=False)
    loaded = load_unet(path)
    x = torch.randn(2, 3, 12, 12)
    s = torch.tensor([0.2, 0.9])
    torch.testing.assert_close(loaded(x, s), net.eval()(x, s), rtol=0, atol=0)


def test_train_prior_lowers_the_denoising_loss(tmp_path):
    rng = np.random.default_rng(0)
    base = np.kron(rng.integers(0, 255, (6, 6, 3)), np.ones((8, 8, 1))).astype(np.uint8)  # blocky image
    net = train_prior([base], crop=16, batch_size=16, n_iter=60, lr=2e-3, channels=8, channel_mult=(1, 2),
                      n_res_blocks=1, device="cpu", out=tmp_path / "w.npz", rng=0)
    assert (tmp_path / "w.npz").is_file()
    x = torch.as_tensor(base[:16, :16], dtype=torch.float32).permute(2, 0, 1)[None] / 127.5 - 1
    noisy = x + 0.5 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        err = float(((net(noisy, torch.tensor([0.5])) - x) ** 2).mean())
    assert err < 0.5 * float(((noisy - x) ** 2).mean())


def test_bad_arguments_are_rejected(clean):
    with pytest.raises(ValueError, match="task"):
        HIRDiff(prior="tv").restore(clean, "deblur")
    with pytest.raises(ValueError, match="mask"):
        HIRDiff(prior="tv").restore(clean, "inpaint")
    with pytest.raises(ValueError, match="n_steps"):
        HIRDiff(prior="tv", n_steps=0).restore(clean)
    with pytest.raises(ValueError, match="start"):
        HIRDiff(prior="tv", start="zeros").restore(clean)
    with pytest.raises(ValueError, match="start_sigma"):
        HIRDiff(prior="tv", start_sigma=-1.0).restore(clean)
    with pytest.raises(TypeError, match="prior"):
        HIRDiff(prior=3).restore(clean)
    with pytest.raises(ValueError, match="NaN"):
        HIRDiff(prior="tv").restore(np.full((8, 8, 5), np.nan))


@pytest.mark.gpu
def test_restore_on_cuda_matches_cpu(clean):
    noisy = clean + 0.1 * np.random.default_rng(4).standard_normal(clean.shape)
    cpu = HIRDiff(prior="tv", n_steps=6, random_state=0, device="cpu").restore(noisy)
    gpu_in = torch.from_numpy(noisy).float().cuda()
    gpu = HIRDiff(prior="tv", n_steps=6, random_state=0, device="cuda").restore(gpu_in)
    assert gpu.is_cuda
    # different random streams on the two devices: compare quality, not values
    assert abs(_psnr(gpu.cpu().numpy(), clean) - _psnr(cpu, clean)) < 1.5
    assert _psnr(gpu.cpu().numpy(), clean) > _psnr(noisy, clean) + 5
