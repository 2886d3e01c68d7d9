"""FuseGPT: remove the least important residual blocks and fuse their Linears into a neighbour's."""

import copy
import dataclasses

import numpy as np

from lowrank._utils.optional import import_optional
from lowrank._utils.rng import as_seed
from lowrank._utils.validation import check_choice, check_float, check_int

torch = import_optional("torch", purpose="lowrank.nn.fuse_blocks")
nn = torch.nn
F = torch.nn.functional

__all__ = ["fuse_blocks", "block_importance", "BlockFusion", "FusedLinear"]


@dataclasses.dataclass(frozen=True)
class _FuseOptions:
    blocks: str
    n_remove: int
    rank: int
    steps: int
    lr: float
    batch_size: int
    neighbour: str
    seed: int


@dataclasses.dataclass(frozen=True, eq=False)
class BlockFusion:
    """Result of :func:`fuse_blocks`; unpacks like ``(model, removed)``.

    Attributes
    ----------
    model : torch.nn.Module
        The model with ``n_remove`` fewer blocks (a deep copy; the input is left unchanged).
    removed : tuple of int
        Original indices of the removed blocks, in removal order.
    fused_into : tuple of int
        Original index of the block each removed block was fused into.
    importance : tuple of numpy.ndarray
        Importance of every remaining block (original order) before each removal.
    """

    model: object
    removed: tuple
    fused_into: tuple
    importance: tuple

    def __iter__(self):
        return iter((self.model, self.removed))

    def __len__(self):
        return 2


class FusedLinear(nn.Module):
    """``x @ (W + (C_L C_R) * W_rm)^T + b + c_b * b_rm``: a Linear with a removed Linear fused in.

    ``W``, ``b`` (the neighbour's) and ``W_rm``, ``b_rm`` (the removed block's) are frozen buffers;
    the coefficient ``C_L C_R`` (``C_L`` zero-initialized, so the layer starts as the neighbour) and
    ``c_b`` (zero) are trained. :meth:`merge` returns the plain ``nn.Linear``.

    Parameters
    ----------
    base : torch.nn.Linear
        The neighbour's layer.
    removed : torch.nn.Linear
        The removed block's layer of the same shape.
    rank : int, default=1
        Rank of the coefficient ``C_L C_R``.
    generator : torch.Generator, optional
        Draws the rows of ``C_R`` beyond the first (the first is all ones).

    Examples
    --------
    >>> import torch
    >>> from lowrank.nn.structural.fusion import FusedLinear
    >>> base, removed = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    >>> fused = FusedLinear(base, removed, rank=2)
    >>> x = torch.randn(5, 4)
    >>> bool(torch.equal(fused(x), base(x)))
    True
    """

    def __init__(self, base, removed, rank=1, generator=None):
        super().__init__()
        out_features, in_features = base.weight.shape
        kw = {"dtype": base.weight.dtype, "device": base.weight.device}
        self.register_buffer("weight", base.weight.detach().clone())
        self.register_buffer("removed_weight", removed.weight.detach().clone())
        has_bias = base.bias is not None and removed.bias is not None
        self.register_buffer("bias", None if base.bias is None else base.bias.detach().clone())
        self.register_buffer("removed_bias", removed.bias.detach().clone() if has_bias else None)
        self.c_left = nn.Parameter(torch.zeros(out_features, rank, **kw))
        right = torch.ones(rank, in_features, **kw)
        if rank > 1:
            right[1:] = torch.randn(rank - 1, in_features, generator=generator, dtype=right.dtype).to(right.device)
        self.c_right = nn.Parameter(right)
        self.c_bias = nn.Parameter(torch.zeros(out_features, **kw)) if has_bias else None

    def fused_weight(self):
        """``W + (C_L C_R) * W_rm`` (elementwise product)."""
        return self.weight + (self.c_left @ self.c_right) * self.removed_weight

    def fused_bias(self):
        if self.c_bias is None:
            return self.bias
        return self.bias + self.c_bias * self.removed_bias

    def forward(self, x):
        return F.linear(x, self.fused_weight(), self.fused_bias())

    @torch.no_grad()
    def merge(self):
        """The fused layer as a plain ``nn.Linear`` (same outputs)."""
        out_features, in_features = self.weight.shape
        layer = nn.Linear(in_features, out_features, bias=self.bias is not None,
                          dtype=self.weight.dtype, device=self.weight.device)
        layer.weight.copy_(self.fused_weight())
        if self.bias is not None:
            layer.bias.copy_(self.fused_bias())
        return layer


def _iv(model, blocks, n_remove, calibration, rank, steps, lr, batch_size, neighbour, seed):
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(blocks, str):
        raise TypeError(f"`blocks` must be the name of an nn.ModuleList inside `model`, got {type(blocks).__name__}")
    try:
        stack = model.get_submodule(blocks)
    except AttributeError:
        stack = None
    if not isinstance(stack, nn.ModuleList):
        raise ValueError(f"`blocks` = {blocks!r} must name an nn.ModuleList inside `model`")
    n_remove = check_int(n_remove, "n_remove", low=0, high=len(stack) - 1)
    if not isinstance(calibration, torch.Tensor) or calibration.ndim == 0 or calibration.shape[0] == 0:
        raise ValueError("`calibration` must be a non-empty tensor of model inputs (first dimension: samples)")
    if calibration.is_floating_point() and not torch.isfinite(calibration).all():
        raise ValueError("`calibration` must be finite")
    return _FuseOptions(blocks, n_remove, check_int(rank, "rank", low=1), check_int(steps, "steps", low=0),
                        check_float(lr, "lr", low=0, low_inclusive=False),
                        check_int(batch_size, "batch_size", low=1),
                        check_choice(neighbour, "neighbour", ("next", "previous")), as_seed(seed, name="seed"))


def fuse_blocks(model, blocks, n_remove, calibration, *, rank=1, steps=100, lr=1e-2, batch_size=64,
                neighbour="next", seed=0):
    """Remove ``n_remove`` residual blocks, fusing each into its neighbour with a learnable coefficient (FuseGPT).

    Repeated ``n_remove`` times:

    1. importance of block ``i`` = ``1 - mean cos(f(x), f_{-i}(x))`` over the calibration inputs, with
       ``f`` the current model and ``f_{-i}`` the model without block ``i`` (outputs flattened per sample);
    2. the least important block is removed; each of its Linear layers is fused into the neighbour's
       Linear of the same name and shape as ``W' = W + (C_L C_R) * W_removed`` (elementwise), with
       ``C_L`` (out x rank) zero-initialized and ``C_R`` (rank x in) starting at ones, and likewise
       ``b' = b + c_b * b_removed``;
    3. only the coefficients are trained for ``steps`` Adam steps to match the original model's outputs
       (mean squared error, distillation), then merged into plain Linear layers.

    ``steps=0`` is plain block removal (the coefficients stay zero). The neighbour's other modules and the
    removed block's non-Linear parameters (norms) are not fused.

    Parameters
    ----------
    model : torch.nn.Module
        A model that applies the blocks of ``model.<blocks>`` in order (a residual stack).
    blocks : str
        Name of the ``nn.ModuleList`` of blocks (``"blocks"`` for the zoo's ResidualMLP and transformers).
    n_remove : int
        Number of blocks to remove (``0 <= n_remove < len(blocks)``).
    calibration : torch.Tensor
        Model inputs (first dimension: samples) for the importance and the distillation.
    rank : int, default=1
        Rank of each coefficient ``C_L C_R``.
    steps : int, default=100
        Distillation steps after each removal (0: plain removal).
    lr : float, default=1e-2
        Adam learning rate of the coefficients.
    batch_size : int, default=64
        Calibration samples per distillation step.
    neighbour : {"next", "previous"}, default="next"
        The block that absorbs a removed one (the other side when the removed block is at the end).
    seed : int, default=0
        Seeds the batches and ``C_R``'s random rows.

    Returns
    -------
    BlockFusion
        ``(model, removed)`` plus ``fused_into`` and ``importance``.

    Raises
    ------
    TypeError, ValueError
        If an argument is of the wrong type or out of range.

    References
    ----------
    .. [1] Pei et al., "FuseGPT: Learnable Layers Fusion of Generative Pre-trained Transformers", 2024,
       arXiv:2411.14507.

    Examples
    --------
    >>> import torch
    >>> from lowrank.nn import fuse_blocks
    >>> from lowrank.nn.zoo import ResidualMLP
    >>> _ = torch.manual_seed(0)
    >>> model = ResidualMLP(8, 3, d_model=8, d_hidden=16, n_blocks=3)
    >>> small, removed = fuse_blocks(model, "blocks", 1, torch.randn(32, 8), steps=5)
    >>> len(small.blocks), len(removed)
    (2, 1)
    """
    options = _iv(model, blocks, n_remove, calibration, rank, steps, lr, batch_size, neighbour, seed)
    return _fuse_blocks(model, calibration, options)


def _cosine(a, b):
    a, b = a.reshape(a.shape[0], -1).double(), b.reshape(b.shape[0], -1).double()
    return F.cosine_similarity(a, b, dim=1, eps=1e-30)


@torch.no_grad()
def block_importance(model, blocks, calibration):
    """``1 - mean cos(f(x), f_{-i}(x))`` for every block ``i`` of ``model.<blocks>`` (FuseGPT's importance).

    Parameters
    ----------
    model : torch.nn.Module
        The model.
    blocks : str
        Name of its ``nn.ModuleList`` of blocks.
    calibration : torch.Tensor
        Model inputs.

    Returns
    -------
    numpy.ndarray of shape (n_blocks,)
        0 for a block whose removal leaves the outputs' directions unchanged (e.g. an identity block).

    Examples
    --------
    >>> import torch
    >>> from lowrank.nn.structural.fusion import block_importance
    >>> from lowrank.nn.zoo import ResidualMLP
    >>> model = ResidualMLP(8, 3, d_model=8, d_hidden=16, n_blocks=2)
    >>> block_importance(model, "blocks", torch.randn(16, 8)).shape
    (2,)
    """
    stack = model.get_submodule(blocks)
    reference = model(calibration)
    scores = []
    for i in range(len(stack)):
        block = stack[i]
        stack[i] = nn.Identity()
        try:
            scores.append(1.0 - float(_cosine(reference, model(calibration)).mean()))
        finally:
            stack[i] = block
    return np.array(scores)


def _linears(module):
    return {name: m for name, m in module.named_modules() if isinstance(m, nn.Linear)}


def _set_submodule(root, name, module):
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


def _fuse_blocks(model, X, o):
    teacher = model
    model = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(o.seed)
    with torch.no_grad():
        target = teacher(X)
    alive = list(range(len(model.get_submodule(o.blocks))))
    removed, fused_into, importance = [], [], []
    for _ in range(o.n_remove):
        stack = model.get_submodule(o.blocks)
        scores = block_importance(model, o.blocks, X)
        importance.append(scores)
        i = int(np.argmin(scores))
        j = i + 1 if (o.neighbour == "next" and i + 1 < len(stack)) or i == 0 else i - 1
        victim, host = stack[i], stack[j]
        sources = _linears(victim)
        fused = {}
        for name, layer in _linears(host).items():
            source = sources.get(name)
            if source is not None and source.weight.shape == layer.weight.shape:
                fused[name] = FusedLinear(layer, source, o.rank, gen)
                _set_submodule(host, name, fused[name])
        del stack[i]
        removed.append(alive[i])
        fused_into.append(alive[j])
        del alive[i]
        if fused and o.steps:
            _distill(model, X, target, [p for f in fused.values() for p in f.parameters()], o, gen)
        for name, layer in fused.items():
            _set_submodule(host, name, layer.merge())
    return BlockFusion(model, tuple(removed), tuple(fused_into), tuple(importance))


def _distill(model, X, target, params, o, gen):
    trained = {id(p) for p in params}
    frozen = [p for p in model.parameters() if p.requires_grad and id(p) not in trained]
    for p in frozen:
        p.requires_grad_(False)
    try:
        optimizer = torch.optim.Adam(params, lr=o.lr)
        n = X.shape[0]
        for _ in range(o.steps):
            idx = torch.randint(n, (min(o.batch_size, n),), generator=gen)
            loss = F.mse_loss(model(X[idx]), target[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    finally:
        for p in frozen:
            p.requires_grad_(True)
