"""Image priors for HIR-Diff: a small 3-channel diffusion U-Net, the prior interface, and a weight-free fallback.

A prior turns a noisy reduced image x_t (N, 3, H, W; images live in [-1, 1]) at noise level alphabar into
an estimate of the clean image x0 and of the noise eps. Two adapters cover both model families:

* :class:`DenoiserPrior` wraps a denoiser ``D(x, sigma)`` (x = x0 + sigma * noise): with
  ``sigma = sqrt((1 - alphabar) / alphabar)``, ``x0 = D(x_t / sqrt(alphabar), sigma)``;
* :class:`EpsilonPrior` wraps a noise-prediction model ``eps(x_t, t)`` (guided-diffusion convention,
  integer timesteps of the schedule it was trained on).

:class:`SmallUNet` is an EDM-preconditioned denoiser (Karras et al. 2022) small enough to train in minutes on
one GPU; :func:`train_prior` trains it on crops of photographs that ship inside scikit-image and scikit-learn
(``python -m lowrank train-prior``). :class:`TVDenoiser` is the weight-free fallback: Chambolle's total
variation denoiser, unrolled so that autograd reaches through it.
"""

import logging
import math
import time
from pathlib import Path

import numpy as np

from lowrank._utils.io import load_npz, save_npz
from lowrank._utils.optional import import_optional
from lowrank._utils.progress import progress
from lowrank._utils.rng import as_generator
from lowrank._utils.validation import check_float, check_int

torch = import_optional("torch", purpose="the HIR-Diff priors")
nn = torch.nn
F = torch.nn.functional

logger = logging.getLogger(__name__)

__all__ = ["DiffusionPrior", "DenoiserPrior", "EpsilonPrior", "TVDenoiser", "SmallUNet", "fallback_prior",
           "load_prior", "save_unet", "load_unet", "train_prior", "training_images", "DEFAULT_WEIGHTS"]

DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "hirdiff_unet.npz"
_FORMAT = "lowrank.vision.SmallUNet"


# ------------------------------------------------------------------------------------------- interface

class DiffusionPrior:
    """Interface: ``predict(x_t, alpha_bar, t) -> (x0, eps)`` on (N, 3, H, W) tensors in [-1, 1]."""

    def predict(self, x_t, alpha_bar, t):
        raise NotImplementedError

    def to(self, device):
        """Move the wrapped model to ``device``; returns self."""
        model = getattr(self, "model", None)
        if isinstance(model, nn.Module):
            model.to(device)
        return self


class DenoiserPrior(DiffusionPrior):
    """A denoiser ``D(x, sigma)`` used as a diffusion prior.

    Parameters
    ----------
    model : callable
        ``model(x, sigma)`` with x (N, 3, H, W) = clean + sigma * standard noise and sigma a tensor (N,),
        returning the clean estimate (same shape). A :class:`SmallUNet` or :class:`TVDenoiser`.

    Examples
    --------
    >>> import torch
    >>> from lowrank.vision.prior import DenoiserPrior
    >>> prior = DenoiserPrior(lambda x, sigma: torch.zeros_like(x))   # "everything is grey"
    >>> x0, eps = prior.predict(torch.ones(1, 3, 4, 4), 0.25, 500)
    >>> float(x0.abs().max()), round(float(eps.mean()), 4)            # eps = x_t / sqrt(1 - 0.25)
    (0.0, 1.1547)
    """

    def __init__(self, model):
        self.model = model

    def predict(self, x_t, alpha_bar, t):
        alpha_bar = float(alpha_bar)
        sigma = math.sqrt(max(1.0 - alpha_bar, 0.0) / alpha_bar)
        s = torch.full((x_t.shape[0],), sigma, dtype=x_t.dtype, device=x_t.device)
        x0 = self.model(x_t / math.sqrt(alpha_bar), s)
        if 1.0 - alpha_bar < 1e-12:
            return x0, torch.zeros_like(x_t)
        eps = (x_t - math.sqrt(alpha_bar) * x0) / math.sqrt(1.0 - alpha_bar)
        return x0, eps


class EpsilonPrior(DiffusionPrior):
    """A noise-prediction model ``eps(x_t, t)`` used as a diffusion prior.

    Parameters
    ----------
    model : callable
        ``model(x_t, t)`` with ``t`` an integer tensor (N,) of timesteps (the schedule given to
        :class:`~lowrank.vision.HIRDiff` must be the one the model was trained with), returning eps.
    """

    def __init__(self, model):
        self.model = model

    def predict(self, x_t, alpha_bar, t):
        alpha_bar = float(alpha_bar)
        steps = torch.full((x_t.shape[0],), int(t), dtype=torch.long, device=x_t.device)
        eps = self.model(x_t, steps)
        x0 = (x_t - math.sqrt(1.0 - alpha_bar) * eps) / math.sqrt(alpha_bar)
        return x0, eps


# --------------------------------------------------------------------------------- weight-free prior

def _grad2d(u):
    gx = F.pad(u[..., :, 1:] - u[..., :, :-1], (0, 1, 0, 0))
    gy = F.pad(u[..., 1:, :] - u[..., :-1, :], (0, 0, 0, 1))
    return gx, gy


def _div2d(px, py):
    # Negative adjoint of _grad2d (Neumann boundary).
    dx = torch.cat([px[..., :, :1], px[..., :, 1:-1] - px[..., :, :-2], -px[..., :, -2:-1]], dim=-1)
    dy = torch.cat([py[..., :1, :], py[..., 1:-1, :] - py[..., :-2, :], -py[..., -2:-1, :]], dim=-2)
    return dx + dy


class TVDenoiser:
    """Weight-free denoiser: Chambolle's projection algorithm for isotropic TV (ROF), unrolled.

    Solves ``min_u 0.5 ||u - x||^2 + lam * TV(u)`` per channel with ``lam = strength * sigma``, in a fixed
    number of differentiable iterations.

    Parameters
    ----------
    strength : float, default=1.0
        lam / sigma.
    n_iter : int, default=20
        Chambolle iterations (step 0.25).

    References
    ----------
    .. [1] Chambolle, "An algorithm for total variation minimization and applications", J. Math. Imaging
       Vis. 20, 2004.

    Examples
    --------
    >>> import torch
    >>> from lowrank.vision.prior import TVDenoiser
    >>> g = torch.Generator().manual_seed(0)
    >>> clean = torch.zeros(1, 3, 32, 32); clean[..., 16:] = 1.0
    >>> noisy = clean + 0.2 * torch.randn(clean.shape, generator=g)
    >>> out = TVDenoiser()(noisy, torch.tensor([0.2]))
    >>> bool(((out - clean) ** 2).mean() < 0.25 * ((noisy - clean) ** 2).mean())
    True
    """

    def __init__(self, strength=1.0, n_iter=20):
        self.strength = check_float(strength, "strength", low=0.0)
        self.n_iter = check_int(n_iter, "n_iter", low=1)

    def __call__(self, x, sigma):
        lam = (self.strength * sigma).to(x.dtype).view(-1, 1, 1, 1).clamp_min(1e-8)
        if x.shape[-1] < 2 or x.shape[-2] < 2:
            return x
        px = torch.zeros_like(x)
        py = torch.zeros_like(x)
        for _ in range(self.n_iter):
            gx, gy = _grad2d(_div2d(px, py) - x / lam)
            norm = 1.0 + 0.25 * torch.sqrt(gx * gx + gy * gy + 1e-12)
            px = (px + 0.25 * gx) / norm
            py = (py + 0.25 * gy) / norm
        return x - lam * _div2d(px, py)

    def __repr__(self):
        return f"TVDenoiser(strength={self.strength:g}, n_iter={self.n_iter})"


def fallback_prior(strength=1.0, n_iter=20):
    """The weight-free prior: :class:`TVDenoiser` wrapped in :class:`DenoiserPrior`."""
    return DenoiserPrior(TVDenoiser(strength, n_iter))


# ------------------------------------------------------------------------------------------- the U-Net

class _ResBlock(nn.Module):
    def __init__(self, c_in, c_out, emb_dim, groups=8):
        super().__init__()
        self.norm1 = nn.GroupNorm(min(groups, c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * c_out)
        self.norm2 = nn.GroupNorm(min(groups, c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(F.silu(h))
        return self.skip(x) + h


class SmallUNet(nn.Module):
    """A small 3-channel U-Net denoiser ``D(x, sigma)`` with EDM preconditioning.

    ``D(x, sigma) = c_skip x + c_out F(c_in x, log(sigma) / 4)`` (Karras et al. 2022) with
    ``sigma_data = 0.5`` for images in [-1, 1]; F is a U-Net with ``len(channel_mult)`` levels,
    ``n_res_blocks`` FiLM-conditioned residual blocks per level and no attention (it runs on any size;
    inputs are mirror-padded to a multiple of ``2 ** (levels - 1)``).

    Parameters
    ----------
    channels : int, default=32
        Width of the first level (1.65 M parameters with the other defaults).
    channel_mult : tuple of int, default=(1, 2, 2)
        Width multipliers per level.
    n_res_blocks : int, default=2
        Residual blocks per level.

    References
    ----------
    .. [1] Karras, Aittala, Aila and Laine, "Elucidating the Design Space of Diffusion-Based Generative
       Models", NeurIPS 2022, arXiv:2206.00364.
    .. [2] Ronneberger, Fischer and Brox, "U-Net", MICCAI 2015, arXiv:1505.04597.

    Examples
    --------
    >>> import torch
    >>> from lowrank.vision.prior import SmallUNet
    >>> net = SmallUNet(channels=8, channel_mult=(1, 2), n_res_blocks=1)
    >>> net(torch.zeros(2, 3, 10, 12), torch.tensor([0.1, 1.0])).shape
    torch.Size([2, 3, 10, 12])
    """

    sigma_data = 0.5

    def __init__(self, channels=32, channel_mult=(1, 2, 2), n_res_blocks=2):
        super().__init__()
        self.config = {"channels": int(channels), "channel_mult": [int(m) for m in channel_mult],
                       "n_res_blocks": int(n_res_blocks)}
        emb_dim = 4 * channels
        self.register_buffer("freqs", torch.exp(torch.linspace(0.0, math.log(200.0), 32)), persistent=False)
        self.emb = nn.Sequential(nn.Linear(64, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.conv_in = nn.Conv2d(3, channels, 3, padding=1)
        widths = [channels * m for m in channel_mult]
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips, c = [channels], channels
        for level, width in enumerate(widths):
            blocks = nn.ModuleList()
            for _ in range(n_res_blocks):
                blocks.append(_ResBlock(c, width, emb_dim))
                c = width
                skips.append(c)
            self.down.append(blocks)
            if level < len(widths) - 1:
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid = nn.ModuleList([_ResBlock(c, c, emb_dim), _ResBlock(c, c, emb_dim)])
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level, width in reversed(list(enumerate(widths))):
            blocks = nn.ModuleList()
            for _ in range(n_res_blocks + 1):
                blocks.append(_ResBlock(c + skips.pop(), width, emb_dim))
                c = width
            self.up.append(blocks)
            if level > 0:
                self.upsample.append(nn.Conv2d(c, c, 3, padding=1))
        self.norm_out = nn.GroupNorm(min(8, c), c)
        self.conv_out = nn.Conv2d(c, 3, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def _network(self, x, c_noise):
        angles = c_noise[:, None] * self.freqs[None]
        emb = self.emb(torch.cat([angles.sin(), angles.cos()], dim=1))
        h = self.conv_in(x)
        hs = [h]
        for level, blocks in enumerate(self.down):
            for block in blocks:
                h = block(h, emb)
                hs.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)
                hs.append(h)
        for block in self.mid:
            h = block(h, emb)
        for level, blocks in enumerate(self.up):
            for block in blocks:
                h = block(torch.cat([h, hs.pop()], dim=1), emb)
            if level < len(self.upsample):
                h = self.upsample[level](F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))

    def forward(self, x, sigma):
        """Denoise ``x`` (N, 3, H, W) at noise std ``sigma`` (tensor (N,) or float)."""
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1).expand(x.shape[0])
        sigma = sigma.clamp_min(1e-4)
        sd = self.sigma_data
        c_skip = (sd**2 / (sigma**2 + sd**2)).view(-1, 1, 1, 1)
        c_out = (sigma * sd / torch.sqrt(sigma**2 + sd**2)).view(-1, 1, 1, 1)
        c_in = (1.0 / torch.sqrt(sigma**2 + sd**2)).view(-1, 1, 1, 1)
        h, w = x.shape[-2:]
        m = 2 ** (len(self.config["channel_mult"]) - 1)
        ph, pw = (-h) % m, (-w) % m
        xin = c_in * x
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            xin = F.pad(xin, (0, pw, 0, ph), mode=mode)
        out = self._network(xin, torch.log(sigma) / 4)[..., :h, :w]
        return c_skip * x + c_out * out.to(x.dtype)


def save_unet(model, path, *, half=True):
    """Save a :class:`SmallUNet`'s weights and configuration atomically to ``path`` (.npz).

    ``half=True`` stores float16 (half the size; the loaded model is float32).
    """
    state = model.state_dict()
    arrays = {}
    for k, v in state.items():
        a = v.detach().cpu().numpy()
        arrays[k] = a.astype(np.float16) if half and a.dtype == np.float32 else a
    save_npz(path, arrays, kind=_FORMAT, meta=model.config)


def load_unet(path=None, *, device=None):
    """Load a :class:`SmallUNet` saved by :func:`save_unet` (default: the weights shipped with lowrank)."""
    path = DEFAULT_WEIGHTS if path is None else Path(path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"no U-Net weights at {path}; train them with `python -m lowrank train-prior`")
    arrays, config = load_npz(path, kind=_FORMAT)
    model = SmallUNet(**config)
    model.load_state_dict({k: torch.from_numpy(v.astype(np.float32) if v.dtype == np.float16 else v)
                           for k, v in arrays.items()})
    model.eval().requires_grad_(False)
    return model.to(device) if device is not None else model


def load_prior(path=None, *, device=None):
    """A :class:`DenoiserPrior` around the U-Net at ``path`` (default: the shipped weights)."""
    return DenoiserPrior(load_unet(path, device=device))


# ------------------------------------------------------------------------------------------- training

def training_images(exclude=("astronaut",), *, synthetic=True, rng=0):
    """Photographs that ship inside scikit-image and scikit-learn, as uint8 (H, W, 3) arrays.

    Parameters
    ----------
    exclude : tuple of str, default=("astronaut",)
        Image names left out (the default keeps out the image of the default synthetic test cube).
    synthetic : bool, default=True
        Also add the three RRQR-selected bands of a synthetic hyperspectral cube made from each image
        (:func:`lowrank.datasets.synthetic_hyperspectral`), the kind of reduced image HIR-Diff samples.
    rng : int, default=0
        Seed for the synthetic cubes.

    Returns
    -------
    list of ndarray of uint8
    """
    from lowrank.datasets.hyperspectral import _SKIMAGE_IMAGES, _SKLEARN_IMAGES, _load_image

    images = []
    for name in _SKIMAGE_IMAGES + _SKLEARN_IMAGES:
        if name in exclude:
            continue
        rgb = _load_image(name)
        images.append(np.round(rgb * 255).astype(np.uint8))
        if synthetic:
            from lowrank.datasets import synthetic_hyperspectral
            from lowrank.vision._hsi_bands import select_bands

            h, w = rgb.shape[:2]
            side = min(256, h, w)
            cube = synthetic_hyperspectral(name, (side, side), n_segments=150, rng=rng).cube
            bands = select_bands(cube, 3, rng=rng)
            reduced = cube[..., bands] / max(cube[..., bands].max(), 1e-12)
            images.append(np.round(reduced * 255).astype(np.uint8))
    return images


def _pyramid(images, crop, device):
    """Each image at full, half and quarter size, as (3, H, W) tensors in [-1, 1] on ``device``."""
    pool = []
    for img in images:
        img = np.asarray(img)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"training images must be uint8 (H, W, 3) arrays, got {img.dtype} {img.shape}")
        t = torch.as_tensor(img, device=device).permute(2, 0, 1).float().div(127.5).sub(1.0)[None]
        for factor in (1, 2, 4):
            level = t if factor == 1 else F.interpolate(t, scale_factor=1 / factor, mode="area")
            if min(level.shape[-2:]) >= crop:
                pool.append(level[0])
    if not pool:
        raise ValueError(f"no training image is at least {crop}x{crop}")
    return pool


def _crop_pool(pyramid, n, crop, generator, device):
    """``n`` random crops (n, 3, crop, crop) from the pyramid, with flips, rotations and band shuffles."""
    sizes = np.array([p.shape[-1] * p.shape[-2] for p in pyramid], dtype=np.float64)
    which = generator.choice(len(pyramid), size=n, p=np.sqrt(sizes) / np.sqrt(sizes).sum())
    out = torch.empty((n, 3, crop, crop), device=device)
    for i, j in enumerate(which):
        img = pyramid[j]
        y = generator.integers(0, img.shape[-2] - crop + 1)
        x = generator.integers(0, img.shape[-1] - crop + 1)
        out[i] = img[:, y:y + crop, x:x + crop]
    flips = torch.as_tensor(generator.random(n) < 0.5, device=device)
    out = torch.where(flips[:, None, None, None], out.flip(-1), out)
    out = torch.rot90(out, int(generator.integers(0, 4)), dims=(-2, -1))
    perm = torch.as_tensor(generator.permutation(3), device=device)  # band order of a reduced image is arbitrary
    return out[:, perm].contiguous()


def train_prior(images=None, *, crop=64, batch_size=64, n_iter=2000, lr=2e-4, channels=32,
                channel_mult=(1, 2, 2), n_res_blocks=2, ema=0.999, time_limit=None, device=None,
                out=None, rng=0, verbose=False):
    """Train a :class:`SmallUNet` denoiser on image crops with the EDM loss.

    Noise levels follow EDM's log-normal (P_mean=-1.2, P_std=1.2); the loss is the weighted denoising
    error ``(sigma^2 + sd^2) / (sigma sd)^2 * |D(x + sigma n, sigma) - x|^2``. An exponential moving
    average of the weights is returned (and saved).

    Parameters
    ----------
    images : list of uint8 (H, W, 3) arrays, optional
        Training photographs; ``None`` uses :func:`training_images`.
    crop : int, default=64
        Crop size.
    batch_size : int, default=64
    n_iter : int, default=2000
        Optimizer steps (stops earlier when ``time_limit`` is reached).
    lr : float, default=2e-4
        Adam learning rate: min(200, n_iter / 10) warm-up steps, then a cosine decay to 10% over ``n_iter`` steps or
        ``time_limit`` seconds, whichever ends first.
    channels, channel_mult, n_res_blocks :
        :class:`SmallUNet` architecture.
    ema : float, default=0.999
        EMA decay of the returned weights.
    time_limit : float, optional
        Seconds after which training stops.
    device : str or torch.device, optional
        Default: CUDA when available, else CPU. On CUDA, bf16 autocast is used.
    out : path-like, optional
        Where to save the EMA weights (:func:`save_unet`).
    rng : int or numpy.random.Generator, default=0
        Seed for crops, noise and initialisation.
    verbose : bool, default=False
        Progress bar and a loss log every 500 steps.

    Returns
    -------
    SmallUNet
        The EMA model in eval mode.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.vision.prior import train_prior
    >>> img = (np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8)
    >>> net = train_prior([img], crop=16, batch_size=4, n_iter=2, channels=8, channel_mult=(1, 2),
    ...                   n_res_blocks=1, device="cpu")
    >>> net.config["channels"]
    8
    """
    generator = as_generator(rng)
    crop = check_int(crop, "crop", low=8)
    batch_size = check_int(batch_size, "batch_size", low=1)
    n_iter = check_int(n_iter, "n_iter", low=1)
    lr = check_float(lr, "lr", low=0.0, low_inclusive=False)
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    if images is None:
        images = training_images()
    if not images:
        raise ValueError("`images` is empty")
    torch.manual_seed(int(generator.integers(0, 2**31 - 1)))
    model = SmallUNet(channels, channel_mult, n_res_blocks).to(device)
    ema_model = SmallUNet(channels, channel_mult, n_res_blocks).to(device)
    ema_model.load_state_dict(model.state_dict())
    ema_model.requires_grad_(False)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    autocast = device.type == "cuda"
    pyramid = _pyramid(images, crop, device)
    warmup = max(1, min(200, n_iter // 10))
    pool_size = batch_size * 50
    pool, cursor = None, pool_size
    sd = SmallUNet.sigma_data
    benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = device.type == "cuda"  # fixed shapes: let cuDNN pick its kernels
    start = time.perf_counter()
    running = torch.zeros((), device=device)  # kept on the device: no host sync per step
    bar = progress(range(n_iter), desc="train-prior", verbose=verbose)
    for step in bar:
        if cursor + batch_size > pool_size:
            pool, cursor = _crop_pool(pyramid, pool_size, crop, generator, device), 0
        x = pool[cursor:cursor + batch_size]
        cursor += batch_size
        sigma = torch.exp(-1.2 + 1.2 * torch.randn(batch_size, device=device))
        noisy = x + sigma.view(-1, 1, 1, 1) * torch.randn_like(x)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            denoised = model(noisy, sigma)
        weight = ((sigma**2 + sd**2) / (sigma * sd) ** 2).view(-1, 1, 1, 1)
        loss = (weight * (denoised.float() - x) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        done = step / n_iter if time_limit is None else max(step / n_iter, (time.perf_counter() - start) / time_limit)
        for group in optimizer.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / warmup) * (0.55 + 0.45 * math.cos(math.pi * min(done, 1.0)))
        optimizer.step()
        with torch.no_grad():
            decay = min(ema, (1 + step) / (10 + step))
            for pe, pm in zip(ema_model.parameters(), model.parameters()):
                pe.lerp_(pm, 1 - decay)
        running = 0.98 * running + 0.02 * loss.detach() if step else loss.detach().clone()
        if verbose and step % 500 == 0:
            logger.info("train-prior step %d loss %.4f (%.0f s)", step, float(running), time.perf_counter() - start)
        if time_limit is not None and time.perf_counter() - start > time_limit:
            logger.info("train-prior: time limit reached after %d steps", step + 1)
            break
    torch.backends.cudnn.benchmark = benchmark
    ema_model.eval()
    ema_model.train_steps_ = step + 1
    ema_model.train_loss_ = float(running)
    if out is not None:
        save_unet(ema_model, out)
    return ema_model
