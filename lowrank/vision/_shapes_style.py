"""The Householder-projector demo as the paper sets it up: a projector in a style-based generator's modulation path.

Song et al. put the projector in place of StyleGAN's *affine* layers, the linear maps from the
intermediate latent ``w`` (the output of a mapping network) to the per-channel styles that modulate
the synthesis convolutions; the weight is ``H(U) S H(V)`` with a fixed ``S = [I_k 0; 0 0]``, it is
initialized from the pre-trained affine weight (SVD, then Householder QR), the whole generator is
fine-tuned briefly with its original loss, and the directions are the right singular vectors of the
weight, traversed in ``w`` space. This module reproduces that at toy scale:

* generator: mapping network ``z -> w`` (an MLP, so ``w`` space is not axis-aligned with anything),
  one affine layer ``w -> styles`` (the per-layer affines of a shared ``w`` stacked into one matrix,
  which is also what SeFa factorizes), and a synthesis network of modulated, demodulated 3x3
  convolutions from a learned constant (StyleGAN2's weight demodulation);
* it is trained as the decoder of a VAE (the encoder gives ``z``; this keeps the toy's training
  short and stable), and fine-tuned with the same loss after the affine layer is replaced by a
  :class:`~lowrank.vision.HouseholderProjector`;
* directions are scored by traversal: codes ``c`` drawn along the ``k`` directions around prior
  samples ``w0 = mapping(z)``, images ``G(w0 + c D)`` labelled with a fixed factor classifier
  trained by the demo on real images, then MIG / DCI between ``c`` and the labels, and an
  attribution matrix (how often traversing direction ``j`` flips the predicted factor ``f``) whose
  disentanglement / completeness are Eastwood & Williams' formulas.
"""

import copy
import logging
import math
import time
from dataclasses import dataclass, replace

import numpy as np

from lowrank._utils.optional import import_optional
from lowrank.datasets.shapes import FACTOR_SIZES, procedural_shapes
from lowrank.vision._shapes_vae import _GaussianVAE, _mlp_encoder, config_dict, image_quality, train_features, train_vae
from lowrank.vision.householder import HouseholderProjector, closed_form_directions, traverse
from lowrank.vision.metrics import dci, dci_from_importance, mig, traversal_importance

torch = import_optional("torch", purpose="the Householder-projector demo")
nn = torch.nn
F = nn.functional

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StyleDemoConfig:
    """Sizes and budgets of the style-generator demo (``STYLE_TINY`` for tests, ``STYLE_MEDIUM`` / ``STYLE_FULL`` for a GPU)."""

    image_size: int = 32
    n_train: int = 20000
    n_eval: int = 2000
    latent_dim: int = 10
    w_dim: int = 16
    hidden: int = 512
    width: int = 64
    rank: int = 6
    pretrain_steps: int = 4000
    finetune_steps: int = 400
    feature_steps: int = 1500
    batch_size: int = 128
    lr: float = 1e-3
    finetune_lr: float = 3e-4
    beta: float = 1.0
    n_codes: int = 2000
    n_attr_base: int = 200
    n_attr_steps: int = 7
    traverse_sd: float = 2.0
    seed: int = 0
    device: str = "cpu"


STYLE_FULL = StyleDemoConfig()
STYLE_MEDIUM = StyleDemoConfig(image_size=16, n_train=10000, n_eval=1000, hidden=256, width=32, pretrain_steps=2000,
                               finetune_steps=200, feature_steps=800, n_codes=1000, n_attr_base=100)
STYLE_TINY = StyleDemoConfig(image_size=16, n_train=2000, n_eval=400, latent_dim=6, w_dim=8, hidden=128, width=16,
                             rank=4, pretrain_steps=300, finetune_steps=40, feature_steps=150, batch_size=64,
                             lr=2e-3, n_codes=400, n_attr_base=24, n_attr_steps=5)


class ModulatedConv(nn.Module):
    """3x3 convolution modulated by a per-sample, per-input-channel style and demodulated (StyleGAN2).

    ``y_o = d_o sum_i W_oi * (s_i x_i)`` with ``d_o = (sum_i s_i^2 ||W_oi||^2 + eps)^{-1/2}``: the same
    output as scaling the weight by the style and renormalizing each output filter, computed without a
    per-sample weight. Optional bilinear 2x upsampling first; leaky ReLU after the bias.
    """

    def __init__(self, in_channels, out_channels, *, upsample):
        super().__init__()
        self.in_channels, self.upsample = in_channels, upsample
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x, style):
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        w = self.weight / math.sqrt(self.in_channels * 9)
        y = F.conv2d(x * style[:, :, None, None], w, padding=1)
        demod = torch.rsqrt(style.pow(2) @ w.pow(2).sum((2, 3)).T + 1e-8)
        return F.leaky_relu(y * demod[:, :, None, None] + self.bias[None, :, None, None], 0.2)


class StyleShapesVAE(_GaussianVAE):
    """VAE whose decoder is a small style-based generator: ``z -> mapping -> w -> affine -> styles -> synthesis``.

    ``affine`` (``w_dim -> n_layers * width``, bias initialized to 1 as StyleGAN's) is the layer the
    projector replaces; :meth:`synthesize` maps ``w`` to image logits, :meth:`decode_w` to images.
    """

    def __init__(self, image_size, latent_dim, w_dim, hidden, width):
        super().__init__()
        n_up = int(round(math.log2(image_size / 4)))
        if 4 * 2**n_up != image_size:
            raise ValueError(f"`image_size` must be 4 times a power of two, got {image_size}")
        n_pixels = 3 * image_size * image_size
        self.image_size, self.latent_dim, self.w_dim, self.width = image_size, latent_dim, w_dim, width
        self.encoder = _mlp_encoder(n_pixels, hidden, latent_dim)
        self.mapping = nn.Sequential(nn.Linear(latent_dim, 4 * w_dim), nn.LeakyReLU(0.2),
                                     nn.Linear(4 * w_dim, 4 * w_dim), nn.LeakyReLU(0.2), nn.Linear(4 * w_dim, w_dim))
        self.n_layers = n_up + 1
        self.affine = nn.Linear(w_dim, self.n_layers * width)
        with torch.no_grad():
            self.affine.bias.fill_(1.0)
        self.const = nn.Parameter(torch.randn(1, width, 4, 4))
        self.convs = nn.ModuleList([ModulatedConv(width, width, upsample=i > 0) for i in range(self.n_layers)])
        self.to_rgb = nn.Conv2d(width, 3, 1)

    def synthesize(self, w):
        """Image logits ``(n, 3, S, S)`` for intermediate latents ``w`` (n, w_dim)."""
        styles = self.affine(w).split(self.width, dim=1)
        x = self.const.expand(w.shape[0], -1, -1, -1)
        for conv, s in zip(self.convs, styles):
            x = conv(x, s)
        return self.to_rgb(x)

    def decode_w(self, w):
        """Images in ``[0, 1]`` for intermediate latents ``w``."""
        return torch.sigmoid(self.synthesize(w))

    def decode_logits(self, z):
        """Image logits for codes ``z`` (through the mapping network); the VAE loss reads these."""
        return self.synthesize(self.mapping(z))

    def decode(self, z):
        """Images in ``[0, 1]`` for codes ``z`` (through the mapping network)."""
        return torch.sigmoid(self.decode_logits(z))


# The style model has the same ``loss(x, beta, generator=...)`` interface as the MLP VAE: one training loop.
train_model = train_vae


@torch.no_grad()
def _labels(classifier, images, batch=1024):
    """Predicted factor indices ``(n, n_factors)`` of images ``(n, 3, S, S)``."""
    out = []
    for i in range(0, images.shape[0], batch):
        out.append(torch.stack([lg.argmax(1) for lg in classifier(images[i : i + batch])], dim=1))
    return torch.cat(out).cpu().numpy()


@torch.no_grad()
def _prior_w(model, n, gen):
    z = torch.randn(n, model.latent_dim, generator=gen, device=model.const.device)
    return model.mapping(z)


@torch.no_grad()
def traversal_scores(model, directions, classifier, config, *, seed):
    """MIG / DCI of traversal codes against classifier labels, and the flip-attribution D / C.

    Codes: prior points ``w0_i`` moved by ``t_ij ~ U(-a sigma_j, a sigma_j)`` along each direction
    (``sigma_j`` the spread of prior ``w`` along direction ``j``, ``a = config.traverse_sd``), images
    ``G(w_i)`` with ``w_i = w0_i + sum_j t_ij d_j``, and codes the coordinates ``d_j . w_i`` (the
    value of each discovered latent variable; the traversal widens their range). Attribution: for ``n_attr_base`` prior points and ``n_attr_steps`` evenly spaced
    steps in ``[-a sigma_j, a sigma_j]`` along each direction alone, the fraction of steps whose
    predicted factor differs from the unedited image's (:func:`lowrank.vision.metrics.traversal_importance`).
    """
    gen = torch.Generator(device=model.const.device).manual_seed(seed)
    D = directions.to(model.const)
    sigma = (_prior_w(model, 4096, gen) @ D.T).std(0)
    w0 = _prior_w(model, config.n_codes, gen)
    u = torch.rand(config.n_codes, D.shape[0], generator=gen, device=D.device) * 2 - 1
    w = w0 + (u * (config.traverse_sd * sigma)) @ D
    labels = _labels(classifier, model.decode_w(w))
    codes_np = (w @ D.T).cpu().double().numpy()
    res = dci(codes_np, labels, rng=seed)
    base = _prior_w(model, config.n_attr_base, gen)
    steps = torch.linspace(-config.traverse_sd, config.traverse_sd, config.n_attr_steps, device=D.device)
    traversal_labels = []
    for j in range(D.shape[0]):
        imgs = traverse(model.decode_w, base, D[j] * sigma[j], steps.tolist())  # (n_steps, n_base, 3, S, S)
        lab = _labels(classifier, imgs.flatten(0, 1)).reshape(len(steps), base.shape[0], -1)
        traversal_labels.append(lab.transpose(1, 0, 2))
    importance = traversal_importance(np.stack(traversal_labels), reference_step=config.n_attr_steps // 2)
    attr = dci_from_importance(importance)
    varies = (labels != labels[:1]).any(axis=0).any()  # MIG is undefined when every predicted factor is constant
    return {"mig": mig(codes_np, labels) if varies else float("nan"), "dci_disentanglement": res.disentanglement,
            "dci_completeness": res.completeness, "dci_informativeness": res.informativeness,
            "attr_disentanglement": attr.disentanglement, "attr_completeness": attr.completeness,
            "attr_flip_rate": float(importance.sum(1).mean())}


def run_style_demo(config=STYLE_TINY, *, traversal_degrees=(-2, -1, 0, 1, 2)):
    """Train, fine-tune and score the style-generator demo; returns ``(rows, grids, config)``.

    Rows (one metric dict per method): SeFa on the pre-trained affine layer, SeFa on the model
    fine-tuned as long without the projector, the projector with the paper's ``S = I_k`` and with
    learned singular values (both initialized by :meth:`HouseholderProjector.from_linear` and
    fine-tuned with the whole model), and random orthonormal directions on the pre-trained model (a
    floor). ``grids`` maps a method to a traversal grid ``(rank, len(degrees), 3, S, S)`` (steps in
    units of the spread of ``w`` along each direction).
    """
    device = torch.device(config.device)
    t0 = time.perf_counter()
    data = procedural_shapes(config.n_train + config.n_eval, image_size=config.image_size, rng=config.seed)
    images = torch.as_tensor(data.images, device=device)
    factors = torch.as_tensor(data.factors, device=device)
    train_x, eval_x = images[: config.n_train], images[config.n_train :]
    classifier = train_features(train_x, factors[: config.n_train], steps=config.feature_steps,
                                batch_size=config.batch_size, seed=config.seed)
    acc = float((_labels(classifier, eval_x) == data.factors[config.n_train :]).mean())
    torch.manual_seed(config.seed)
    model = StyleShapesVAE(config.image_size, config.latent_dim, config.w_dim, config.hidden, config.width).to(device)
    train_model(model, train_x, steps=config.pretrain_steps, batch_size=config.batch_size, lr=config.lr,
                beta=config.beta, seed=config.seed)
    t_pre = time.perf_counter() - t0
    logger.info("seed %d: classifier accuracy %.3f, data + classifier + pre-training %.1f s", config.seed, acc, t_pre)
    rows, grids = [], {}
    gen = torch.Generator(device=device).manual_seed(config.seed + 11)

    def add(name, m, directions, seconds):
        row = {"method": name, **traversal_scores(m, directions, classifier, config, seed=config.seed + 3)}
        row["recon_mse"], row["frechet"] = image_quality(m, eval_x, classifier, config.seed)
        row["classifier_accuracy"], row["seconds"] = acc, seconds
        logger.info("%s", row)
        rows.append(row)
        w0 = m.mapping(m.encode(eval_x[:1])[0])
        sigma = (_prior_w(m, 4096, torch.Generator(device=device).manual_seed(0)) @ directions.to(w0).T).std(0)
        grids[name] = torch.stack([traverse(m.decode_w, w0, d * s, traversal_degrees)[:, 0]
                                   for d, s in zip(directions.to(w0), sigma)]).cpu().numpy()

    with torch.no_grad():
        add("SeFa (pre-trained)", model, closed_form_directions(model.affine.weight, config.rank), t_pre)
    t1 = time.perf_counter()
    tuned = copy.deepcopy(model)
    train_model(tuned, train_x, steps=config.finetune_steps, batch_size=config.batch_size, lr=config.finetune_lr,
                beta=config.beta, seed=config.seed + 7)
    with torch.no_grad():
        add("SeFa (fine-tuned)", tuned, closed_form_directions(tuned.affine.weight, config.rank), time.perf_counter() - t1)
    for name, learn_scale in (("Householder projector (S = I_k)", False), ("Householder projector (learned scales)", True)):
        t2 = time.perf_counter()
        proj = copy.deepcopy(model)
        proj.affine = HouseholderProjector.from_linear(model.affine, config.rank, learn_scale=learn_scale)
        train_model(proj, train_x, steps=config.finetune_steps, batch_size=config.batch_size, lr=config.finetune_lr,
                    beta=config.beta, seed=config.seed + 7)
        with torch.no_grad():
            add(name, proj, proj.affine.directions(), time.perf_counter() - t2)
    q, _ = torch.linalg.qr(torch.randn(config.w_dim, config.rank, generator=gen, device=device))
    with torch.no_grad():
        add("random directions (floor)", model, q.T.contiguous(), 0.0)
    return rows, grids, config


def style_config_from(base="tiny", **overrides):
    """``STYLE_TINY``, ``STYLE_MEDIUM`` or ``STYLE_FULL`` with fields overridden (unknown names raise TypeError)."""
    return replace({"tiny": STYLE_TINY, "medium": STYLE_MEDIUM, "full": STYLE_FULL}[base], **overrides)


__all__ = ["StyleDemoConfig", "STYLE_FULL", "STYLE_MEDIUM", "STYLE_TINY", "StyleShapesVAE", "ModulatedConv", "run_style_demo",
           "traversal_scores", "image_quality", "style_config_from", "config_dict", "FACTOR_SIZES"]
