"""Baselines that HIR-Diff is measured against: bicubic / interpolation, and low-rank + weighted TV.

``lowrank_tv_restore`` solves the same model as HIR-Diff without the diffusion prior:
min_A  0.5 H W ||M (y - H(A E))||^2 / n_observed + eta_tv * H W * weighted_TV(A E), with E and the TV weights built
exactly as in :class:`~lowrank.vision.HIRDiff`, by Adam on A (started from the initial estimate's bands).
"""

import numpy as np

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_float, check_int
from lowrank.vision._hsi_bands import _iv_cube
from lowrank.vision._hsi_operators import Inpaint
from lowrank.vision._hsi_tv import edge_weights, weighted_tv_loss

__all__ = ["interpolation_baseline", "lowrank_tv_restore"]


def _to_tensor(cube):
    torch = import_optional("torch", purpose="HIR-Diff baselines")
    cube = np.asarray(_iv_cube(cube), dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(cube.transpose(2, 0, 1)))[None]


def interpolation_baseline(cube, op):
    """The operator's initial estimate (bicubic for super-resolution, normalised convolution for
    inpainting, the noisy cube for denoising) as a numpy (H, W, B) cube."""
    y = _to_tensor(cube)
    if isinstance(op, Inpaint):
        y = op.forward(y)
    return op.initial_estimate(y)[0].permute(1, 2, 0).numpy().astype(np.float64)


def lowrank_tv_restore(cube, op, *, eta_tv=0.1, n_bands=3, n_iter=300, lr=0.02, delta=0.5, rng=0, device=None):
    """Low-rank + weighted-TV restoration (HIR-Diff's model with no image prior), numpy (H, W, B) out."""
    torch = import_optional("torch", purpose="HIR-Diff baselines")
    from lowrank.vision.hirdiff import _spectral_model

    eta_tv = check_float(eta_tv, "eta_tv", low=0.0)
    n_iter = check_int(n_iter, "n_iter", low=1)
    y = _to_tensor(cube).to(device or "cpu")
    if isinstance(op, Inpaint):
        y = op.forward(y)
    _, bands, coefficients, low = _spectral_model(op, y, n_bands, "rrqr", rng)
    h, w = low.shape[-2:]
    weights = edge_weights(low, delta=delta)
    mask = op._mask_tensor(y).expand_as(y) if isinstance(op, Inpaint) else None
    n_observed = float(mask.sum()) if mask is not None else float(y.numel())
    a = low[:, torch.as_tensor(bands, device=y.device)].clone().requires_grad_(True)
    optimizer = torch.optim.Adam([a], lr=lr)
    for _ in range(n_iter):
        xhat = torch.einsum("rb,nrhw->nbhw", coefficients, a)
        residual = op.forward(xhat) - y
        if mask is not None:
            residual = residual * mask
        loss = 0.5 * h * w * (residual**2).sum() / n_observed + eta_tv * h * w * weighted_tv_loss(xhat, weights)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        xhat = torch.einsum("rb,nrhw->nbhw", coefficients, a)
    return xhat[0].permute(1, 2, 0).cpu().numpy().astype(np.float64)
