"""HIR-Diff: unsupervised hyperspectral image restoration with an image diffusion prior (Pang et al., CVPR 2024).

A clean cube X (H x W x B) is written X = A E with A (H x W x 3) three selected bands and E (3 x B)
coefficients from the degraded cube's top singular vectors (:func:`select_bands`,
:func:`estimate_coefficients`). A is sampled by deterministic DDIM with an image diffusion prior over a
short exponential schedule (:func:`exponential_schedule`); at every step the current clean estimate is
mapped to a cube A E, and the gradient (with respect to the noisy sample, through the prior) of

    eta_fidelity * 0.5 * ||M (y - H(A E))||^2 / L  +  eta_tv * H W * weighted_tv_loss(A E)

is subtracted from the DDIM update, H being the degradation operator (:class:`Denoise`,
:class:`SuperResolve`, :class:`Inpaint`) and the TV weights coming from a rank-3 SVD denoise of the input.
L is the Lipschitz constant of the data term's gradient in the prior's units (:func:`fidelity_lipschitz`),
so eta_fidelity is a step size relative to 1 / L (gradient descent on the data term alone diverges above 2)
and carries over between tasks, cubes and image sizes.

The sampler starts from the rank-3 estimate of the selected bands, its error treated as Gaussian noise:
for denoising the noise level is estimated from the data (the estimate A_hat = Y E^T (E E^T)^-1 has
per-pixel covariance sigma^2 (E E^T)^-1, sigma from the residual off the rank-3 subspace:
:func:`rank_residual_noise`, :func:`estimate_noise_level`), and DDIM starts at the first step of its grid
at or above that level (:func:`~lowrank.vision._hsi_schedule.matched_schedule`), skipping the steps above.

The pieces are defined in private modules (``_hsi_bands``, ``_hsi_schedule``, ``_hsi_operators``,
``_hsi_tv``) and re-exported here; the priors live in :mod:`lowrank.vision.prior`.
"""

import logging
import math

import numpy as np
from sklearn.base import BaseEstimator

from lowrank._utils.backend import is_torch
from lowrank._utils.optional import import_optional
from lowrank._utils.progress import progress
from lowrank._utils.rng import as_seed
from lowrank._utils.validation import check_choice, check_float, check_int
from lowrank.vision._hsi_bands import (
    _coefficients_from_subspace,
    _iv_cube,
    _select_from_subspace,
    band_subspace,
    estimate_coefficients,
    select_bands,
)
from lowrank.vision._hsi_operators import Denoise, Inpaint, SuperResolve, _Operator
from lowrank.vision._hsi_schedule import exponential_schedule, matched_schedule
from lowrank.vision._hsi_tv import edge_weights, weighted_tv_loss

logger = logging.getLogger(__name__)

__all__ = ["select_bands", "estimate_coefficients", "exponential_schedule", "Denoise", "SuperResolve",
           "Inpaint", "weighted_tv_loss", "HIRDiff"]

#: Guidance weights and start level per task, tuned on a synthetic 31-band validation cube (docs/hirdiff.md).
DEFAULT_ETAS = {
    "denoise": {"eta_fidelity": 0.05, "eta_tv": 0.01, "start_sigma": 1.5},
    "sr": {"eta_fidelity": 1.5, "eta_tv": 0.03, "start_sigma": 0.25},
    "inpaint": {"eta_fidelity": 2.0, "eta_tv": 0.03, "start_sigma": 1.0},
}
#: The same for the weight-free TV prior where it differs (a weaker prior: more data and TV, a higher start).
DEFAULT_ETAS_FALLBACK = {
    "denoise": {"eta_fidelity": 0.2, "eta_tv": 0.03, "start_sigma": 3.0},
}


def _torch():
    return import_optional("torch", purpose="HIR-Diff")


def make_operator(task, *, mask=None, scale=4, blur=None):
    """The degradation operator for ``task`` ("denoise", "sr", "inpaint") or ``task`` itself if an operator."""
    if isinstance(task, _Operator):
        return task
    check_choice(task, "task", ("denoise", "sr", "inpaint"))
    if task == "denoise":
        return Denoise()
    if task == "sr":
        return SuperResolve(scale, blur)
    if mask is None:
        raise ValueError("`mask` is required for task='inpaint' (True where observed)")
    return Inpaint(mask)


def _subspace_rows(op, y):
    """Rows (pixels x B) of the observation from which the spectral subspace is estimated."""
    unfolded = y[0].permute(1, 2, 0).reshape(-1, y.shape[1])
    if isinstance(op, Inpaint):
        m = op.mask if op.mask.ndim == 2 else op.mask.all(axis=2)
        if m.sum() >= 3 * y.shape[1]:
            torch = _torch()
            return unfolded[torch.as_tensor(m.ravel(), device=y.device)]
        filled = op.initial_estimate(y)
        return filled[0].permute(1, 2, 0).reshape(-1, y.shape[1])
    return unfolded


def _spectral_model(op, y, n_bands, band_method, seed):
    """Subspace, bands and coefficients from an observation y (1, B, h, w), and the rank-``n_bands`` denoise.

    Returns ``(v, bands, coefficients, low)``: v (B x n_bands, float32) the top right singular vectors of
    :func:`_subspace_rows`, the selected bands, E (float32) and ``low`` = the initial estimate projected on v,
    shape (1, B, H, W). Shared by :class:`HIRDiff` and the low-rank + TV baseline.
    """
    v = band_subspace(_subspace_rows(op, y).double(), n_bands, rng=seed)
    bands = _select_from_subspace(v, n_bands, band_method)
    coefficients = _coefficients_from_subspace(v, bands).float()
    init = op.initial_estimate(y)
    n_b, h, w = init.shape[1:]
    vf = v.float()
    low = (vf @ (vf.T @ init[0].reshape(n_b, -1))).reshape(1, n_b, h, w)
    return vf, bands, coefficients, low


def fidelity_lipschitz(op, coefficients, shape, *, mask=None, n_iter=30, device=None):
    """Lipschitz constant of the gradient of ``0.5 ||M H(E^T (a + 1) / 2)||^2`` in the reduced image a.

    That is ``0.25 * lambda_max(K^T K)`` with K: a -> M H(E^T a) (the 1/2 of the [-1, 1] -> [0, 1] map
    squared). Closed form ``0.25 * lambda_max(E E^T)`` for denoising and for pixel masks (whole pixels
    observed or not); otherwise power iteration on K^T K started from the top eigenvector of E E^T spread
    over a constant image (the top eigenvector of a blur-and-average operator), which converges from below.

    Parameters
    ----------
    op : Denoise, SuperResolve or Inpaint
        The degradation H.
    coefficients : torch.Tensor of shape (r, B)
        E.
    shape : tuple
        Shape (1, r, H, W) of the reduced image a.
    mask : torch.Tensor, optional
        The observation mask M (broadcastable to H's output), for inpainting.
    n_iter : int, default=30
        Power iterations when there is no closed form.
    device : torch.device, optional
        Where to compute (default: the coefficients' device).

    Returns
    -------
    float
    """
    torch = _torch()
    gram = coefficients @ coefficients.T
    evals, evecs = torch.linalg.eigh(gram.double())
    pixel_mask = isinstance(op, Inpaint) and op.mask.ndim == 2
    if isinstance(op, Denoise) or pixel_mask:
        return 0.25 * float(evals[-1])
    device = coefficients.device if device is None else device
    generator = torch.Generator(device=device).manual_seed(0)
    a = evecs[:, -1].to(coefficients.dtype).to(device).view(1, -1, 1, 1).expand(shape).clone()
    a = a + 1e-2 * torch.randn(shape, generator=generator, device=device, dtype=a.dtype)
    value = 0.0
    for _ in range(n_iter):
        a = a / a.norm()
        cube = torch.einsum("rb,nrhw->nbhw", coefficients, a)
        obs = op.forward(cube)
        if mask is not None:
            obs = obs * mask
        value = float((obs**2).sum())  # Rayleigh quotient of K^T K at a (|a| = 1)
        back = op.adjoint(obs, cube.shape)
        a = torch.einsum("rb,nbhw->nrhw", coefficients, back)
    return 0.25 * value


def rank_residual_noise(y, v, rank):
    """Noise std of an observation y (1, B, H, W) from its residual off the rank-``rank`` subspace v (B x r).

    ``||Y - Y V V^T||_F^2 / (H W (B - r))``: white noise of variance s^2 leaves s^2 (B - r) per pixel
    outside an r-dimensional subspace that holds the clean spectra.

    Parameters
    ----------
    y : torch.Tensor of shape (1, B, H, W)
        The observation.
    v : torch.Tensor of shape (B, r)
        Orthonormal basis of the spectral subspace (top right singular vectors).
    rank : int
        r.

    Returns
    -------
    float
        The noise std, in the units of ``y``.

    Raises
    ------
    ValueError
        When B <= r (no residual to measure).
    """
    n_b = y.shape[1]
    if n_b <= rank:
        raise ValueError(f"the noise level needs more bands ({n_b}) than the rank ({rank})")
    unfolded = y[0].reshape(n_b, -1)
    residual = unfolded - v @ (v.T @ unfolded)
    return math.sqrt(float((residual**2).sum()) / (unfolded.shape[1] * (n_b - rank)))


def estimate_noise_level(sigma, coefficients):
    """Effective noise std, in the prior's [-1, 1] units, of the least-squares reduced image.

    For y = A E + noise (iid, std ``sigma`` in [0, 1] units), A_hat = Y E^T (E E^T)^-1 has per-pixel noise
    covariance C = sigma^2 (E E^T)^-1, so 4 C in [-1, 1] units; the returned level sqrt(trace(4 C) / r) has
    the same total noise power.

    Parameters
    ----------
    sigma : float
        Noise std of the observation, in the units of the (scaled) cube.
    coefficients : torch.Tensor of shape (r, B)
        E.

    Returns
    -------
    float
    """
    torch = _torch()
    gram = (coefficients @ coefficients.T).double()
    return 2.0 * sigma * math.sqrt(float(torch.linalg.inv(gram).trace()) / gram.shape[0])


class HIRDiff(BaseEstimator):
    """HIR-Diff hyperspectral restoration: denoising, noisy super-resolution and inpainting.

    Parameters
    ----------
    prior : {"auto", "unet", "tv"}, path, or DiffusionPrior, default="auto"
        The image prior over the reduced image. ``"unet"``: the :class:`~lowrank.vision.prior.SmallUNet`
        weights shipped with lowrank; ``"tv"``: the weight-free :class:`~lowrank.vision.prior.TVDenoiser`;
        ``"auto"``: the U-Net when its weights are installed, else TV; a path: U-Net weights saved by
        :func:`~lowrank.vision.prior.save_unet`; or any :class:`~lowrank.vision.prior.DiffusionPrior`
        (e.g. :class:`~lowrank.vision.prior.EpsilonPrior` around a guided-diffusion model).
    n_steps : int, default=20
        DDIM steps of the full grid; a start from the estimate skips those above its noise level
        (``timesteps_`` holds the steps taken).
    eta_fidelity : float, optional
        Weight of the data term, as a step relative to 1 / L with L the Lipschitz constant of its gradient
        (:func:`fidelity_lipschitz`; values near 2 and above diverge); ``None`` takes the task's default
        (``DEFAULT_ETAS``: 0.05 for denoising, 1.5 for super-resolution, 2 for inpainting; with the TV
        fallback prior ``DEFAULT_ETAS_FALLBACK``: 0.2 for denoising).
    eta_tv : float, optional
        Weight of the weighted TV term; ``None`` takes the task's default.
    k : float, default=8.0
        Steepness of the exponential schedule.
    n_bands : int, default=3
        Rank of the spectral model (the prior is a 3-channel image model, so 3 unless the prior
        handles other channel counts).
    band_method : {"rrqr", "uniform"}, default="rrqr"
        How bands are selected (:func:`select_bands`).
    delta : float, default=0.5
        Edge-weight flattening of the TV weights (:func:`~lowrank.vision._hsi_tv.edge_weights`).
    start : {"auto", "matched", "estimate", "noise"}, default="auto"
        The first DDIM state. ``"noise"``: pure Gaussian noise at the first grid step (the reference
        code). Otherwise the rank-``n_bands`` estimate of the selected bands, its error treated as Gaussian
        noise of std ``level`` (in the prior's [-1, 1] units): DDIM starts at the first grid level at or above
        ``level``, adding the missing noise only, and skips the steps above. ``"matched"`` (denoising only,
        noise-aware): ``level = start_sigma * s``, s the noise std of the least-squares estimate, from the
        noise level estimated off the rank-``n_bands`` subspace and (E E^T)^-1 (:func:`estimate_noise_level`).
        ``"estimate"``: ``level = start_sigma``. ``"auto"``: ``"matched"`` for denoising, else ``"estimate"``.
    start_sigma : float, optional
        For ``start="matched"`` a multiple of the estimated noise level (default 1.5, 3 with the TV fallback
        prior; above 1 because the estimate's noise is anisotropic across the bands, the largest up to 1.3
        times the average on our cubes, and a start a little above the noise leaves the sampler room); for
        ``start="estimate"`` the level itself (default 0.25 for super-resolution, 1 for inpainting). ``None``
        takes the task's default (``DEFAULT_ETAS``); values tuned on a validation cube (docs/hirdiff.md).
    device : str or torch.device, optional
        Where to run; default CUDA when available, else CPU.
    random_state : None, int or numpy.random.Generator, default=None
        Seed of the initial noise and the randomized SVD.
    verbose : bool, default=False
        Show a progress bar over the DDIM steps.

    Attributes
    ----------
    bands_ : ndarray of int of shape (n_bands,)
        Bands selected in the last :meth:`restore`.
    coefficients_ : ndarray of shape (n_bands, B)
        The coefficient matrix E of the last restore.
    scale_ : float
        Intensity scale divided out before sampling (and multiplied back).
    loss_history_ : list of float
        Guidance loss at each step.
    timesteps_ : ndarray of int
        The DDIM timesteps visited in the last restore (0 last).

    References
    ----------
    .. [1] Pang, Rui, Meng, Wang, Zhang and Cao, "HIR-Diff: Unsupervised Hyperspectral Image Restoration
       Via Improved Diffusion Models", CVPR 2024, arXiv:2402.15865.
    .. [2] Song, Meng and Ermon, "Denoising Diffusion Implicit Models", ICLR 2021, arXiv:2010.02502.

    Notes
    -----
    The reference implementation returns the iterate with the best PSNR against the ground truth; this
    one returns the final iterate only (no ground truth is used).

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.vision import HIRDiff, Denoise
    >>> yy, xx = np.mgrid[:32, :32] / 32
    >>> regions = np.stack([xx < 0.5, (xx >= 0.5) & (yy < 0.5), (xx >= 0.5) & (yy >= 0.5)], axis=-1)
    >>> spectra = np.random.default_rng(0).uniform(0.2, 1.0, (3, 31))
    >>> clean = regions @ spectra                      # a 32 x 32 x 31 cube of rank 3
    >>> noisy = Denoise().degrade(clean, 0.1, rng=0)
    >>> restored = HIRDiff(prior="tv", n_steps=4, random_state=0).restore(noisy, "denoise")
    >>> def psnr(x): return 10 * np.log10(1 / np.mean((x - clean) ** 2))
    >>> bool(psnr(restored) > psnr(noisy) + 5)
    True
    """

    _sklearn_skip_checks = ("HIRDiff restores one hyperspectral cube (height x width x bands) per call; "
                            "it has no fit/predict on an X matrix")

    def __init__(self, prior="auto", *, n_steps=20, eta_fidelity=None, eta_tv=None, k=8.0, n_bands=3,
                 band_method="rrqr", delta=0.5, start="auto", start_sigma=None, device=None, random_state=None,
                 verbose=False):
        self.prior = prior
        self.n_steps = n_steps
        self.eta_fidelity = eta_fidelity
        self.eta_tv = eta_tv
        self.k = k
        self.n_bands = n_bands
        self.band_method = band_method
        self.delta = delta
        self.start = start
        self.start_sigma = start_sigma
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------------------------------ setup
    def _resolve_prior(self, device):
        from lowrank.vision import prior as priors

        prior = self.prior
        if isinstance(prior, priors.DiffusionPrior):
            return prior.to(device)
        if isinstance(prior, str) and prior in ("auto", "unet", "tv"):
            if prior == "tv" or (prior == "auto" and not priors.DEFAULT_WEIGHTS.is_file()):
                return priors.fallback_prior()
            return priors.load_prior(device=device)
        if isinstance(prior, (str, bytes)) or hasattr(prior, "__fspath__"):
            return priors.load_prior(prior, device=device)
        raise TypeError(f"`prior` must be 'auto', 'unet', 'tv', a weights path or a DiffusionPrior; got {prior!r}")

    def _uses_fallback(self):
        from lowrank.vision import prior as priors

        prior = self.prior
        if isinstance(prior, priors.DiffusionPrior):
            return isinstance(getattr(prior, "model", None), priors.TVDenoiser)
        return prior == "tv" or (prior == "auto" and not priors.DEFAULT_WEIGHTS.is_file())

    def _iv(self, cube, task):
        torch = _torch()
        n_steps = check_int(self.n_steps, "n_steps", low=1, high=1000)
        k = check_float(self.k, "k", low=0.0, low_inclusive=False)
        check_choice(self.band_method, "band_method", ("rrqr", "uniform"))
        delta = check_float(self.delta, "delta", low=0.0, low_inclusive=False)
        start = check_choice(self.start, "start", ("auto", "matched", "estimate", "noise"))
        if start == "auto":
            start = "matched" if isinstance(task, Denoise) else "estimate"
        if start == "matched" and not isinstance(task, Denoise):
            raise ValueError("start='matched' needs task='denoise' (an unbiased estimate with a known noise "
                             "covariance); use start='estimate' with a `start_sigma` level")
        name = task.name if isinstance(task, _Operator) else task
        defaults = DEFAULT_ETAS.get(name, DEFAULT_ETAS["denoise"])
        if self._uses_fallback():
            defaults = DEFAULT_ETAS_FALLBACK.get(name, defaults)
        start_sigma = defaults["start_sigma"] if self.start_sigma is None else self.start_sigma
        start_sigma = check_float(start_sigma, "start_sigma", low=0.0)
        eta_f = defaults["eta_fidelity"] if self.eta_fidelity is None else self.eta_fidelity
        eta_tv = defaults["eta_tv"] if self.eta_tv is None else self.eta_tv
        eta_f = check_float(eta_f, "eta_fidelity", low=0.0)
        eta_tv = check_float(eta_tv, "eta_tv", low=0.0)
        cube = _iv_cube(cube)
        n_bands = check_int(self.n_bands, "n_bands", low=1, high=cube.shape[2])
        device = torch.device(self.device if self.device is not None
                              else ("cuda" if torch.cuda.is_available() else "cpu"))
        return cube, n_steps, k, delta, eta_f, eta_tv, start, start_sigma, n_bands, device

    # ---------------------------------------------------------------------------------------- restore
    def restore(self, cube, task="denoise", *, mask=None, scale=4, blur=None):
        """Restore a degraded cube.

        Parameters
        ----------
        cube : array-like or torch.Tensor of shape (h, w, B)
            The observation: noisy cube (``"denoise"``), low-resolution cube (``"sr"``), or masked cube
            (``"inpaint"``; values outside the mask are ignored).
        task : {"denoise", "sr", "inpaint"} or operator, default="denoise"
            The degradation, or an operator instance (:class:`Denoise`, :class:`SuperResolve`,
            :class:`Inpaint`).
        mask : array-like of bool of shape (h, w) or (h, w, B), optional
            Observed entries, for ``task="inpaint"``.
        scale : int, default=4
            Downsampling factor for ``task="sr"``.
        blur : float, optional
            Gaussian blur std (high-resolution pixels) for ``task="sr"``; default ``scale / 2``.

        Returns
        -------
        restored : ndarray or torch.Tensor of shape (H, W, B)
            Same array type as ``cube`` (torch on ``cube``'s device); H = scale * h for super-resolution.

        Raises
        ------
        ValueError
            On a cube that is not 3-D or holds NaN/inf, a missing mask, or out-of-range parameters.
        """
        torch = _torch()
        op = make_operator(task, mask=mask, scale=scale, blur=blur)
        cube, n_steps, k, delta, eta_f, eta_tv, start, start_sigma, n_bands, device = self._iv(cube, op)
        return_torch = is_torch(cube)
        out_device = cube.device if return_torch else None
        out_dtype = cube.dtype if return_torch else (cube.dtype if cube.dtype == np.float32 else np.float64)
        seed = as_seed(self.random_state, name="random_state")

        y_np = cube if return_torch else torch.from_numpy(np.ascontiguousarray(cube))
        y = y_np.to(device=device, dtype=torch.float32).permute(2, 0, 1)[None].contiguous()
        if isinstance(op, Inpaint):
            y = op.forward(y)
        prior = self._resolve_prior(device)

        vf, bands, coefficients, low = _spectral_model(op, y, n_bands, self.band_method, seed)
        h, w = low.shape[-2:]
        # The rank-n_bands denoise of the initial estimate gives the intensity scale and TV edge weights.
        scale_ = float(torch.quantile(low.flatten()[:: max(1, low.numel() // 1_000_000)], 0.999).clamp_min(1e-12))
        y = y / scale_
        weights = edge_weights(low / scale_, delta=delta)

        loss_history = []
        generator = torch.Generator(device=device).manual_seed(seed % (2**63))
        x = torch.randn((1, n_bands, h, w), generator=generator, device=device)
        mask_t = op._mask_tensor(y).expand_as(y) if isinstance(op, Inpaint) else None
        # Data term divided by its Lipschitz constant in the prior's [-1, 1] units: eta_fidelity = 1 is the
        # step 1 / L of gradient descent on it, whatever the operator, the cube and its coefficients.
        lipschitz = fidelity_lipschitz(op, coefficients, (1, n_bands, h, w), mask=mask_t, device=device)
        a_hat = (low / scale_)[:, torch.as_tensor(bands, device=device)] * 2.0 - 1.0
        if start == "noise":
            timesteps, alpha_bar = exponential_schedule(n_steps, k)
        else:
            # The estimate's error is treated as Gaussian noise of std `level`: start at the first grid level
            # above it, adding only the missing noise, and skip the steps above.
            if start == "matched":  # noise-aware: start_sigma times the estimate's own noise level
                level = start_sigma * estimate_noise_level(rank_residual_noise(y, vf, n_bands), coefficients)
            else:
                level = start_sigma
                a_hat = a_hat.clamp(-1.0, 1.0)
            timesteps, alpha_bar, sigma0 = matched_schedule(n_steps, k, level)
            x = math.sqrt(float(alpha_bar[0])) * (a_hat + math.sqrt(max(sigma0**2 - level**2, 0.0)) * x)
        alpha_next = np.append(alpha_bar[1:], 1.0)
        self.timesteps_ = np.asarray(timesteps)
        for i in progress(range(len(timesteps)), desc="HIR-Diff", verbose=self.verbose):
            ab, ab_next = float(alpha_bar[i]), float(alpha_next[i])
            x = x.detach().requires_grad_(True)
            with torch.enable_grad():
                x0, eps = prior.predict(x, ab, int(timesteps[i]))
                x0 = x0.clamp(-1.0, 1.0)
                xhat = torch.einsum("rb,nrhw->nbhw", coefficients, (x0 + 1.0) / 2.0)
                residual = op.forward(xhat) - y
                if mask_t is not None:
                    residual = residual * mask_t
                loss = eta_f * 0.5 * (residual**2).sum() / lipschitz
                if eta_tv > 0:
                    loss = loss + eta_tv * h * w * weighted_tv_loss(xhat, weights)
                (grad,) = torch.autograd.grad(loss, x)
            loss_history.append(float(loss.detach()))
            x = (math.sqrt(ab_next) * x0 + math.sqrt(1.0 - ab_next) * eps - grad).detach()

        restored = torch.einsum("rb,nrhw->nbhw", coefficients, (x + 1.0) / 2.0)[0].permute(1, 2, 0) * scale_
        self.bands_ = np.asarray(bands)
        self.coefficients_ = coefficients.double().cpu().numpy()
        self.scale_ = scale_
        self.loss_history_ = loss_history
        if return_torch:
            return restored.to(device=out_device, dtype=out_dtype)
        return restored.detach().cpu().numpy().astype(out_dtype)
