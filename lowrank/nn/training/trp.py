"""TRP: a training callback that periodically truncates weights to low rank and pushes them there."""

import dataclasses

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_float, check_int
from lowrank.linalg import rank_by_energy
from lowrank.nn._targets import replace_module, select_modules
from lowrank.nn.layers import LowRankConv, LowRankLinear

torch = import_optional("torch", purpose="lowrank.nn.training")
nn = torch.nn

__all__ = ["TrainedRankPruning"]

_SUPPORTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclasses.dataclass(frozen=True)
class _TRPOptions:
    energy: float
    period: int
    nuclear_weight: float


def _check_module(name, module):
    if isinstance(module, nn.modules.conv._ConvNd) and (module.groups != 1 or module.transposed):
        raise ValueError(f"`targets`: {name} is a grouped or transposed convolution, which TRP does not factor")


def _svd(weight):
    """SVD of the channel-wise matrix ``(out, in * prod(kernel))`` in float64."""
    return torch.linalg.svd(weight.detach().reshape(weight.shape[0], -1).double(), full_matrices=False)


class TrainedRankPruning:
    """Trained Rank Pruning: truncate every ``period`` steps at an energy, with a nuclear-norm push (TRP).

    Use it in a plain loop: ``loss.backward(); trp.regularize(); opt.step(); trp.step()``. Every ``period``
    calls of :meth:`step`, each target weight (Linear, or ConvNd reshaped channel-wise to
    ``(out, in * prod(kernel))``) is replaced in place by its truncated SVD at the smallest rank ``k`` holding
    ``energy`` of ``sum(s**2)`` (:func:`lowrank.linalg.rank_by_energy`). :meth:`regularize` adds
    ``nuclear_weight * U_k V_k^T`` (the nuclear-norm subgradient of the rank-``k`` part) to each weight's
    gradient. :meth:`finalize` truncates once more and swaps each target for a
    :class:`~lowrank.nn.LowRankLinear` / :class:`~lowrank.nn.LowRankConv` with the factors, keeping a layer
    dense when ``k (in + out)`` would not save weights (past break-even). Only the channel-wise
    decomposition of the paper is implemented (not the spatial-wise one).

    Parameters
    ----------
    model : nn.Module
    energy : float in (0, 1], default=0.9
    period : int, default=20
        Optimizer steps between truncations.
    nuclear_weight : float, default=3e-4
    targets : None, str, type, callable or list, default=None
        Modules to prune (see :func:`lowrank.nn.adapt`); default every Linear and ConvNd.

    Attributes
    ----------
    names : list of str
        The target modules.
    ranks_ : dict
        Rank of each target at the last truncation.

    Raises
    ------
    TypeError, ValueError
        On an invalid model, energy, period, weight or target (grouped / transposed convolutions).

    References
    ----------
    Xu et al., "Trained Rank Pruning for Efficient Deep Neural Networks", 2018, arXiv:1812.02402.

    Examples
    --------
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> trp = TrainedRankPruning(model, energy=0.5, period=1)
    >>> trp.truncate()
    >>> all(torch.linalg.matrix_rank(model[i].weight) == trp.ranks_[str(i)] for i in (0, 2))
    True
    """

    def __init__(self, model, energy=0.9, period=20, nuclear_weight=3e-4, *, targets=None):
        self.options = _TRPOptions(check_float(energy, "energy", low=0, high=1, low_inclusive=False),
                                   check_int(period, "period", low=1),
                                   check_float(nuclear_weight, "nuclear_weight", low=0))
        self.model = model
        self.names = select_modules(model, targets, _SUPPORTED, check=_check_module)
        self.ranks_ = {}
        self.n_steps = 0

    def _modules(self):
        return [(name, self.model.get_submodule(name)) for name in self.names]

    def _rank(self, s):
        return rank_by_energy(s.cpu().numpy(), self.options.energy)

    @torch.no_grad()
    def regularize(self):
        """Add ``nuclear_weight * U_k V_k^T`` to each target's gradient (call after ``backward``)."""
        if self.options.nuclear_weight == 0:
            return
        for _, module in self._modules():
            W = module.weight
            if W.grad is None:
                continue
            U, s, Vh = _svd(W)
            k = self._rank(s)
            W.grad.add_((self.options.nuclear_weight * U[:, :k] @ Vh[:k]).reshape(W.shape).to(W.grad.dtype))

    @torch.no_grad()
    def truncate(self):
        """Replace each target weight by its truncated SVD at the energy rule's rank."""
        for name, module in self._modules():
            W = module.weight
            U, s, Vh = _svd(W)
            k = self._rank(s)
            W.copy_(((U[:, :k] * s[:k]) @ Vh[:k]).reshape(W.shape))
            self.ranks_[name] = k

    def step(self):
        """Count an optimizer step; truncate every ``period`` steps (call after ``optimizer.step()``)."""
        self.n_steps += 1
        if self.n_steps % self.options.period == 0:
            self.truncate()

    @torch.no_grad()
    def finalize(self):
        """Truncate and replace each target by its factorized layer (in place); returns the model."""
        for name, module in self._modules():
            W = module.weight
            U, s, Vh = _svd(W)
            k = self._rank(s)
            self.ranks_[name] = k
            out, fan_in = W.shape[0], W[0].numel()
            if k * (out + fan_in) >= out * fan_in:
                W.copy_(((U[:, :k] * s[:k]) @ Vh[:k]).reshape(W.shape))
                continue
            factory = dict(device=W.device, dtype=W.dtype)
            bias = module.bias is not None
            if isinstance(module, nn.Linear):
                new = LowRankLinear(module.in_features, out, k, bias=bias, **factory)
            else:
                new = LowRankConv(module.in_channels, out, module.kernel_size, k, dims=len(module.kernel_size),
                                  stride=module.stride, padding=module.padding, dilation=module.dilation, bias=bias,
                                  padding_mode=module.padding_mode, **factory)
            new.down.weight.copy_((s[:k, None] * Vh[:k]).reshape(new.down.weight.shape))
            new.down.bias.zero_()
            new.up.weight.copy_(U[:, :k].reshape(new.up.weight.shape))
            if bias:
                new.up.bias.copy_(module.bias)
            replace_module(self.model, name, new)
        self.names = []
        return self.model
