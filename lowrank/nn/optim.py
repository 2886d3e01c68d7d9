"""Optimizers for training networks whose gradients are projected onto a low-rank subspace."""

import dataclasses
import math

from lowrank._utils.optional import import_optional
from lowrank._utils.rng import as_generator
from lowrank._utils.validation import check_float, check_int
from lowrank.linalg import dct_basis, randomized_svd

torch = import_optional("torch", purpose="lowrank.nn.optim")

__all__ = ["ProjectedAdam"]

_BASES = ("svd", "dct", "random")


@dataclasses.dataclass(frozen=True)
class _ProjectedAdamOptions:
    rank: int
    basis: object  # one of _BASES, or a torch tensor with orthonormal columns
    update_gap: int
    scale: float


def _iv(rank, basis, update_gap, scale):
    rank = check_int(rank, "rank", low=1)
    if isinstance(basis, str):
        if basis not in _BASES:
            raise ValueError(f"`basis` must be one of {_BASES} or an orthonormal matrix, got {basis!r}")
    else:
        basis = torch.as_tensor(basis)
        if basis.ndim != 2 or basis.shape[1] > basis.shape[0] or not basis.is_floating_point():
            raise ValueError("`basis` given as a matrix must be a real (n, k) array with k <= n orthonormal columns")
        gram = basis.T.double() @ basis.double()
        if not torch.allclose(gram, torch.eye(basis.shape[1], dtype=torch.float64), atol=1e-5):
            raise ValueError("`basis` given as a matrix must have orthonormal columns (basis.T @ basis == I)")
    return _ProjectedAdamOptions(rank, basis, check_int(update_gap, "update_gap", low=1),
                                 check_float(scale, "scale", low=0, low_inclusive=False))


class ProjectedAdam(torch.optim.Optimizer):
    """Adam whose moments live in an ``r``-dimensional projection of each matrix gradient (GaLore family).

    For a matrix parameter ``W`` of shape ``(m, n)`` the gradient is projected on its shorter side:
    ``R = P^T G`` with ``P`` of shape ``(m, r)`` when ``m <= n``, else ``R = G P`` with ``P`` of shape
    ``(n, r)``. Adam's moments are kept for ``R`` only, and the update is mapped back:
    ``W <- W - lr * scale * P N`` (or ``N P^T``), ``N`` Adam's normalized step on ``R``. ``P`` is refreshed
    every ``update_gap`` steps from the current gradient:

    - ``"svd"``: the top-``r`` singular vectors (GaLore), by :func:`lowrank.linalg.randomized_svd`;
    - ``"dct"``: the ``r`` columns of the orthonormal DCT-II basis (:func:`lowrank.linalg.dct_basis`, built
      once per side length and shared) with the largest alignment ``||D_j^T G||``: one matmul and a top-k;
      only the ``r`` column indices are stored per parameter;
    - ``"random"``: a Haar-random orthonormal ``P`` (the control: no information from the gradient);
    - a given ``(side, k)`` matrix with orthonormal columns: a fixed ``P`` for every matrix whose projected
      side has that length (``k`` is then the rank).

    Parameters that are not matrices (biases, norms, conv kernels) get plain Adam. The rank is clipped to
    the shorter side. ``weight_decay`` is decoupled (AdamW), applied to the full parameter.

    Parameters
    ----------
    params : iterable of tensors or parameter groups
    rank : int
        Projection rank ``r >= 1``.
    basis : {"svd", "dct", "random"} or tensor, default="svd"
    update_gap : int, default=200
        Steps between projector refreshes.
    scale : float, default=0.25
        Multiplies the projected update (GaLore's ``alpha``); ``scale=1`` with the identity basis is Adam.
    lr : float, default=1e-3
    betas : tuple of float, default=(0.9, 0.999)
    eps : float, default=1e-8
    weight_decay : float, default=0.0
    rng : None, int or numpy.random.Generator, default=None
        Seeds the randomized SVD and the random basis.

    Raises
    ------
    TypeError, ValueError
        On an invalid rank, basis, update gap, scale or Adam hyperparameter; a given basis whose length
        matches no parameter's projected side is reported at the first step.

    References
    ----------
    Zhao et al., "GaLore: Memory-Efficient LLM Training by Gradient Low-Rank Projection", 2024, arXiv:2403.03507.
    Modoranu et al., "SVD-Free Low-Rank Adaptive Gradient Optimization for Large Language Models", 2025,
    arXiv:2505.17967.

    Examples
    --------
    >>> import torch
    >>> layer = torch.nn.Linear(16, 8)
    >>> opt = ProjectedAdam(layer.parameters(), rank=2, basis="dct", lr=1e-2)
    >>> layer(torch.ones(4, 16)).pow(2).sum().backward()
    >>> opt.step()
    >>> tuple(opt.state[layer.weight]["exp_avg"].shape), tuple(opt.state[layer.weight]["indices"].shape)
    ((2, 16), (2,))
    """

    def __init__(self, params, rank, *, basis="svd", update_gap=200, scale=0.25, lr=1e-3, betas=(0.9, 0.999),
                 eps=1e-8, weight_decay=0.0, rng=None):
        self.options = _iv(rank, basis, update_gap, scale)
        lr = check_float(lr, "lr", low=0)
        if len(betas) != 2:
            raise ValueError(f"`betas` must be a pair of floats in [0, 1), got {betas!r}")
        betas = tuple(check_float(b, "betas", low=0, high=1, high_inclusive=False) for b in betas)
        eps = check_float(eps, "eps", low=0)
        weight_decay = check_float(weight_decay, "weight_decay", low=0)
        self._gen = as_generator(rng)
        self._dct = {}  # side length, dtype, device -> full DCT basis, built once per shape
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def _dct_basis(self, n, like):
        key = (n, like.dtype, like.device)
        if key not in self._dct:
            self._dct[key] = torch.as_tensor(dct_basis(n), dtype=like.dtype, device=like.device)
        return self._dct[key]

    def _refresh(self, grad, left, rank, state):
        """Pick the projector for this gradient; store only what is needed to rebuild it."""
        o = self.options
        G = grad if left else grad.T  # project the rows of G (side = G.shape[0])
        side = G.shape[0]
        if o.basis == "dct":
            D = self._dct_basis(side, G)
            alignment = (D.T @ G).pow(2).sum(1)
            state["indices"] = torch.topk(alignment, rank).indices.sort().values
        elif o.basis == "svd":
            U, _, _ = randomized_svd(G.detach(), rank, rng=self._gen)
            state["projector"] = U.to(G.dtype)
        elif o.basis == "random":
            Z = torch.as_tensor(self._gen.standard_normal((side, rank)), dtype=G.dtype, device=G.device)
            Q, R = torch.linalg.qr(Z)
            state["projector"] = Q * torch.sign(torch.diagonal(R))
        else:
            if o.basis.shape[0] != side:
                raise ValueError(f"`basis` has {o.basis.shape[0]} rows but a parameter's projected side is {side}")
            state["projector"] = o.basis.to(dtype=G.dtype, device=G.device)

    def _projector(self, state, side, like):
        if "indices" in state:
            return self._dct_basis(side, like)[:, state["indices"]]
        return state["projector"]

    def _rank(self, p):
        o = self.options
        if not isinstance(o.basis, str):
            return o.basis.shape[1]
        return min(o.rank, *p.shape)

    @torch.no_grad()
    def step(self, closure=None):
        """One optimization step; ``closure`` (optional) re-evaluates the loss and returns it."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        o = self.options
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                matrix = p.ndim == 2
                if not state:
                    state["step"] = 0
                    if matrix:
                        state["left"] = p.shape[0] <= p.shape[1]
                left = state.get("left")
                if matrix and state["step"] % o.update_gap == 0:
                    self._refresh(grad, left, self._rank(p), state)
                if matrix:
                    side = p.shape[0] if left else p.shape[1]
                    P = self._projector(state, side, grad)
                    grad = P.T @ grad if left else grad @ P
                if "exp_avg" not in state:
                    state["exp_avg"] = torch.zeros_like(grad)
                    state["exp_avg_sq"] = torch.zeros_like(grad)
                state["step"] += 1
                t = state["step"]
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(beta1).add_(grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (v.sqrt() / math.sqrt(1 - beta2**t)).add_(group["eps"])
                step_size = group["lr"] / (1 - beta1**t)
                update = m / denom
                if group["weight_decay"]:
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                if matrix:
                    update = P @ update if left else update @ P.T
                    p.add_(update, alpha=-step_size * o.scale)
                else:
                    p.add_(update, alpha=-step_size)
        return loss

    def state_bytes(self):
        """Bytes of tensors held in the optimizer state (moments, projectors, indices)."""
        total = 0
        for state in self.state.values():
            for value in state.values():
                if torch.is_tensor(value):
                    total += value.numel() * value.element_size()
        return total

