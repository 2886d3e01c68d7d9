"""The Householder-projector demo: a small VAE on procedural shapes, SeFa vs the projector.

A VAE (MLP encoder and decoder) is trained on :func:`lowrank.datasets.procedural_shapes`; the
decoder's first layer (``style``, latent -> hidden) plays the part of the generator's style
projection. Latent directions are read off it in closed form (SeFa), or the layer is replaced by a
:class:`~lowrank.vision.HouseholderProjector` initialized from it and the VAE is fine-tuned for a
few steps, after which the projector's directions are read off. Each set of directions becomes a
set of codes ``D mu(x)`` (``mu`` the encoder mean) scored against the known factors with MIG and
DCI; image quality is the reconstruction error and a Frechet distance in the feature space of a
factor classifier trained once by the demo (an FID-style proxy with a fixed extractor).
"""

import copy
import logging
import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import scipy.linalg

from lowrank._utils.optional import import_optional
from lowrank.datasets.shapes import FACTOR_NAMES, FACTOR_SIZES, procedural_shapes
from lowrank.vision.householder import HouseholderProjector, closed_form_directions, traverse
from lowrank.vision.metrics import dci, mig

torch = import_optional("torch", purpose="the Householder-projector demo")
nn = torch.nn
F = nn.functional

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    """Sizes and budgets of the demo (``TINY`` for tests and the CPU demo row, ``FULL`` for a GPU)."""

    image_size: int = 32
    n_train: int = 20000
    n_eval: int = 2000
    latent_dim: int = 10
    hidden: int = 512
    rank: int = 6
    pretrain_steps: int = 6000
    finetune_steps: int = 600
    feature_steps: int = 1500
    batch_size: int = 128
    lr: float = 1e-3
    finetune_lr: float = 3e-4
    beta: float = 4.0
    seed: int = 0
    device: str = "cpu"


FULL = DemoConfig()
TINY = DemoConfig(image_size=16, n_train=3000, n_eval=600, latent_dim=8, hidden=128, rank=6,
                  pretrain_steps=400, finetune_steps=60, feature_steps=200, batch_size=64, lr=2e-3)


def _mlp_encoder(n_pixels, hidden, latent_dim):
    """Flattened image -> (mu, logvar) stacked, ``2 * latent_dim`` outputs."""
    return nn.Sequential(nn.Flatten(), nn.Linear(n_pixels, hidden), nn.ReLU(),
                         nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent_dim))


class _GaussianVAE(nn.Module):
    """Gaussian encoder and beta-VAE loss shared by the demos' models; subclasses set ``encoder`` and ``decode_logits``."""

    def encode(self, x):
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar.clamp(-12, 8)

    def loss(self, x, beta, generator=None):
        mu, logvar = self.encode(x)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + eps * (0.5 * logvar).exp()
        rec = F.binary_cross_entropy_with_logits(self.decode_logits(z), x, reduction="sum") / x.shape[0]
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum() / x.shape[0]
        return rec + beta * kl


class ShapesVAE(_GaussianVAE):
    """MLP VAE for ``(3, S, S)`` images; ``style`` is the decoder's first (latent -> hidden) layer."""

    def __init__(self, image_size, latent_dim, hidden):
        super().__init__()
        n_pixels = 3 * image_size * image_size
        self.image_size, self.latent_dim = image_size, latent_dim
        self.encoder = _mlp_encoder(n_pixels, hidden, latent_dim)
        self.style = nn.Linear(latent_dim, hidden)
        self.decoder = nn.Sequential(nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, n_pixels))

    def decode_logits(self, z):
        return self.decoder(self.style(z)).view(-1, 3, self.image_size, self.image_size)

    def decode(self, z):
        """Images in ``[0, 1]`` for codes ``z`` (n, latent_dim)."""
        return torch.sigmoid(self.decode_logits(z))


class FactorClassifier(nn.Module):
    """Fixed feature extractor for the Frechet distance: an MLP predicting every factor."""

    def __init__(self, image_size, hidden=256, n_features=64):
        super().__init__()
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(3 * image_size * image_size, hidden), nn.ReLU(),
                                      nn.Linear(hidden, n_features), nn.ReLU())
        self.heads = nn.Linear(n_features, sum(FACTOR_SIZES))

    def forward(self, x):
        return self.heads(self.features(x)).split(list(FACTOR_SIZES), dim=1)


def _batches(n, batch_size, steps, gen):
    for _ in range(steps):
        yield torch.as_tensor(gen.integers(0, n, batch_size))


def train_vae(model, images, *, steps, batch_size, lr, beta, seed, params=None):
    """Adam on the beta-VAE loss over random mini-batches of ``images`` (a tensor on the model's device)."""
    opt = torch.optim.Adam(model.parameters() if params is None else params, lr=lr)
    gen = np.random.default_rng(seed)
    tgen = torch.Generator(device=images.device).manual_seed(seed)
    model.train()
    last = float("nan")
    for idx in _batches(images.shape[0], batch_size, steps, gen):
        loss = model.loss(images[idx.to(images.device)], beta, generator=tgen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        last = loss.item()
    model.eval()
    return last


def train_features(images, factors, *, steps, batch_size, seed):
    torch.manual_seed(seed)
    net = FactorClassifier(images.shape[-1]).to(images.device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = np.random.default_rng(seed + 1)
    for idx in _batches(images.shape[0], batch_size, steps, gen):
        idx = idx.to(images.device)
        logits = net(images[idx])
        loss = sum(F.cross_entropy(lg, factors[idx, j]) for j, lg in enumerate(logits))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    net.eval()
    return net


def frechet_distance(feat_a, feat_b):
    """Frechet distance between Gaussians fitted to two feature sets (rows = samples)."""
    mu_a, mu_b = feat_a.mean(0), feat_b.mean(0)
    # A small ridge keeps sqrtm defined when a ReLU feature is dead (a singular covariance).
    ridge = 1e-6 * np.eye(feat_a.shape[1])
    ca, cb = np.cov(feat_a, rowvar=False) + ridge, np.cov(feat_b, rowvar=False) + ridge
    root = scipy.linalg.sqrtm(ca @ cb)
    root = root.real if np.iscomplexobj(root) else root
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca + cb - 2 * root))


@torch.no_grad()
def _codes(model, images, directions, batch=1024):
    mus = [model.encode(images[i : i + batch])[0] for i in range(0, images.shape[0], batch)]
    mu = torch.cat(mus)
    return (mu @ directions.to(mu).T).cpu().double().numpy()


@torch.no_grad()
def image_quality(model, images, features, seed, batch=1024):
    """Reconstruction MSE (through ``mu``) and the Frechet distance of prior samples in the classifier's features."""
    mse, feats_real, feats_fake = 0.0, [], []
    gen = torch.Generator(device=images.device).manual_seed(seed)
    for i in range(0, images.shape[0], batch):
        x = images[i : i + batch]
        mu, _ = model.encode(x)
        mse += float(((model.decode(mu) - x) ** 2).sum())
        z = torch.randn(x.shape[0], model.latent_dim, generator=gen, device=x.device)
        feats_real.append(features.features(x))
        feats_fake.append(features.features(model.decode(z)))
    fd = frechet_distance(torch.cat(feats_real).cpu().double().numpy(), torch.cat(feats_fake).cpu().double().numpy())
    return mse / images.numel(), fd


def _score(name, model, directions, images, factors_np, features, config, seconds):
    codes = _codes(model, images, directions)
    res = dci(codes, factors_np, rng=config.seed)
    mse, fd = image_quality(model, images, features, config.seed)
    row = {"method": name, "mig": mig(codes, factors_np), "dci_disentanglement": res.disentanglement,
           "dci_completeness": res.completeness, "dci_informativeness": res.informativeness,
           "recon_mse": mse, "frechet": fd, "seconds": seconds}
    logger.info("%s", row)
    return row


def run_demo(config=TINY, *, traversal_degrees=(-3, -2, -1, 0, 1, 2, 3)):
    """Train, fine-tune and score; returns ``(rows, grids, config)``.

    ``rows`` is a list of metric dicts (SeFa on the pre-trained VAE, SeFa on the VAE fine-tuned as
    long without the projector, the Householder projector after fine-tuning with unit and with
    learned singular values, and the VAE's most informative latent axes as a reference); ``grids`` maps a method name to a traversal grid ``(rank, len(degrees), 3, S, S)``.
    """
    device = torch.device(config.device)
    t0 = time.perf_counter()
    data = procedural_shapes(config.n_train + config.n_eval, image_size=config.image_size, rng=config.seed)
    images = torch.as_tensor(data.images, device=device)
    factors = torch.as_tensor(data.factors, device=device)
    train_x, eval_x = images[: config.n_train], images[config.n_train :]
    eval_f = data.factors[config.n_train :]
    features = train_features(train_x, factors[: config.n_train], steps=config.feature_steps,
                              batch_size=config.batch_size, seed=config.seed)

    torch.manual_seed(config.seed)
    vae = ShapesVAE(config.image_size, config.latent_dim, config.hidden).to(device)
    train_vae(vae, train_x, steps=config.pretrain_steps, batch_size=config.batch_size, lr=config.lr,
              beta=config.beta, seed=config.seed)
    t_pre = time.perf_counter() - t0
    rows, grids, z0 = [], {}, vae.encode(eval_x[:1])[0]

    def add(name, model, directions, seconds):
        rows.append(_score(name, model, directions, eval_x, eval_f, features, config, seconds))
        grid = torch.stack([traverse(model.decode, z0, d, traversal_degrees)[:, 0] for d in directions])
        grids[name] = grid.cpu().numpy()

    add("SeFa (pre-trained)", vae, closed_form_directions(vae.style.weight, config.rank), t_pre)

    t1 = time.perf_counter()
    tuned = copy.deepcopy(vae)
    train_vae(tuned, train_x, steps=config.finetune_steps, batch_size=config.batch_size, lr=config.finetune_lr,
              beta=config.beta, seed=config.seed + 7)
    add("SeFa (fine-tuned)", tuned, closed_form_directions(tuned.style.weight, config.rank), time.perf_counter() - t1)

    # The paper's S = [I_k 0; 0 0] (all singular values 1), and learned singular values, which start
    # the fine-tuning at the truncated SVD of the pre-trained layer (the same function up to rank k).
    for name, learn_scale in (("Householder projector", False), ("Householder projector (learned scales)", True)):
        t2 = time.perf_counter()
        proj = copy.deepcopy(vae)
        proj.style = HouseholderProjector.from_linear(vae.style, config.rank, learn_scale=learn_scale)
        train_vae(proj, train_x, steps=config.finetune_steps, batch_size=config.batch_size, lr=config.finetune_lr,
                  beta=config.beta, seed=config.seed + 7)
        add(name, proj, proj.style.directions(), time.perf_counter() - t2)

    # Reference: the VAE's own latent axes with the largest KL (what a beta-VAE disentangles).
    with torch.no_grad():
        mu, logvar = vae.encode(eval_x)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).mean(0)
    axes = torch.eye(config.latent_dim, device=device)[torch.argsort(kl, descending=True)[: config.rank]]
    add("latent axes (reference)", vae, axes, 0.0)
    return rows, grids, config


def config_from(base="tiny", **overrides):
    """``TINY`` or ``FULL`` with fields overridden (unknown names raise TypeError)."""
    cfg = {"tiny": TINY, "full": FULL}[base]
    return replace(cfg, **overrides)


def config_dict(config):
    return asdict(config)


__all__ = ["DemoConfig", "FULL", "TINY", "ShapesVAE", "run_demo", "frechet_distance", "FACTOR_NAMES"]
