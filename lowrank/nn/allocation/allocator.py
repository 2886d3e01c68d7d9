"""IncreLoRA's rank allocator: a callback that grows the ranks of the most important modules in training.

After ``optimizer.step()`` the user's loop calls ``allocator.step(model)``. Each call scores every
adapted module by ``s = sum |delta W * grad delta W| / sqrt(numel)``, smoothed by an EMA
(``I <- beta1 I + (1 - beta1) s``) times its uncertainty (``U <- beta2 U + (1 - beta2) |s - I|``).
After ``warmup`` calls, every ``interval`` calls, the ``per_step`` best-scored modules gain one
rank each, until the average active rank reaches ``target_rank``. A grown parameter keeps its
new Parameter object that replaces the old one in the optimizer, whose state tensors are padded
with zeros for the new entries, so Adam's
moments of the old entries are kept and those of the new ones start at zero.
"""

import dataclasses
import math

from lowrank._utils.optional import import_optional
from lowrank._utils.rng import as_seed
from lowrank._utils.validation import check_float, check_int

torch = import_optional("torch", purpose="lowrank.nn")

__all__ = ["RankAllocator"]


@dataclasses.dataclass(frozen=True)
class _AllocatorOptions:
    target_rank: float
    warmup: int
    interval: int
    beta1: float
    beta2: float
    per_step: int
    orth_reg: float
    seed: int


def _iv(adapter, optimizer, target_rank, warmup, interval, beta1, beta2, per_step, orth_reg, rng):
    from lowrank.nn.adapters import Adapter, IncreLoRA

    if not isinstance(adapter, Adapter):
        raise TypeError(f"`adapter` must be a lowrank.nn.Adapter, got {type(adapter).__name__}")
    methods = adapter.methods()
    if not all(isinstance(m, IncreLoRA) for m in methods.values()):
        raise ValueError(f"`adapter` must be an 'increlora' adapter (adapt(model, 'increlora', ...)), "
                         f"got method {adapter.method!r}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"`optimizer` must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    missing = [path for path, m in methods.items() if any(id(p) not in held for p in (m.A, m.B, m.E))]
    if missing:
        raise ValueError(f"`optimizer` does not hold the adapter parameters of layer {missing[0]!r}; build it "
                         f"over adapter.trainable_parameters()")
    average = sum(m.active_rank for m in methods.values()) / len(methods)
    largest = sum(m.max_rank for m in methods.values()) / len(methods)
    target_rank = check_float(target_rank, "target_rank", low=average, high=largest)
    options = _AllocatorOptions(
        target_rank=target_rank,
        warmup=check_int(warmup, "warmup", low=0),
        interval=check_int(interval, "interval", low=1),
        beta1=check_float(beta1, "beta1", low=0.0, high=1.0, high_inclusive=False),
        beta2=check_float(beta2, "beta2", low=0.0, high=1.0, high_inclusive=False),
        per_step=check_int(per_step, "per_step", low=1),
        orth_reg=check_float(orth_reg, "orth_reg", low=0.0),
        seed=as_seed(rng),
    )
    return options


def _swap_param(optimizer, old, new):
    """Put ``new`` in the optimizer in place of ``old``; zero-pad the state tensors of ``old``'s shape."""
    for group in optimizer.param_groups:
        group["params"] = [new if p is old else p for p in group["params"]]
    state = optimizer.state.pop(old, None)
    if not state:
        return
    keep = tuple(slice(0, n) for n in old.shape)
    for key, value in list(state.items()):
        if torch.is_tensor(value) and value.dim() > 0 and value.shape == old.shape:
            grown = torch.zeros(new.shape, dtype=value.dtype, device=value.device)
            grown[keep] = value
            state[key] = grown
    optimizer.state[new] = state


class RankAllocator:
    """Grow IncreLoRA ranks where they matter most, from a plain training loop.

    Parameters
    ----------
    adapter : lowrank.nn.Adapter
        An ``"increlora"`` adapter (its layers start at the adapter's ``rank``).
    optimizer : torch.optim.Optimizer
        The optimizer over the adapter's parameters; its state is padded when a rank grows.
    target_rank : float
        Average active rank to reach, between the current average and the layers' maximum.
    warmup : int
        Calls of :meth:`step` before the first allocation.
    interval : int
        Calls between two allocations (the first one is at call ``warmup + interval``).
    beta1 : float, default=0.85
        EMA factor of the importance.
    beta2 : float, default=0.85
        EMA factor of the uncertainty.
    per_step : int, default=1
        Modules that gain one rank at each allocation (fewer when the budget is nearly spent).
    orth_reg : float, default=0.1
        Weight of the orthogonality penalty returned by :meth:`regularization`.
    rng : None, int or numpy Generator, default=None
        Seeds the new terms' ``A`` and ``B``.

    Attributes
    ----------
    scores_ : dict of str to float
        Smoothed score ``I * U`` per layer path after the latest call.
    history_ : list of (int, str)
        ``(call, layer path)`` of every rank increase.
    n_calls_ : int
        Calls of :meth:`step` so far.

    Raises
    ------
    TypeError
        If ``adapter`` or ``optimizer`` is of the wrong type.
    ValueError
        If the adapter is not IncreLoRA, the optimizer misses its parameters, or an option is out
        of range.

    References
    ----------
    Zhang, Zhang, Wang, Huang & Liu, "IncreLoRA: Incremental Parameter Allocation Method for
    Parameter-Efficient Fine-tuning", 2023, arXiv:2308.12043.

    Examples
    --------
    >>> import torch
    >>> from lowrank.nn import adapt, RankAllocator
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    >>> adapter = adapt(model, "increlora", targets=["0", "2"], rank=1, rng=0)
    >>> opt = torch.optim.Adam(adapter.trainable_parameters(), lr=1e-2)
    >>> allocator = RankAllocator(adapter, opt, target_rank=1.5, warmup=2, interval=2, rng=0)
    >>> x, y = torch.randn(32, 8), torch.randn(32, 1)
    >>> for _ in range(6):
    ...     opt.zero_grad()
    ...     loss = ((model(x) - y) ** 2).mean() + allocator.regularization()
    ...     loss.backward()
    ...     opt.step()
    ...     _ = allocator.step(model)
    >>> sum(allocator.ranks().values()), [call for call, _ in allocator.history_]
    (3, [4])
    """

    def __init__(self, adapter, optimizer, *, target_rank, warmup, interval, beta1=0.85, beta2=0.85, per_step=1,
                 orth_reg=0.1, rng=None):
        self.options = _iv(adapter, optimizer, target_rank, warmup, interval, beta1, beta2, per_step, orth_reg, rng)
        self.adapter = adapter
        self.optimizer = optimizer
        self._generator = torch.Generator().manual_seed(self.options.seed)
        self._importance = {}
        self._uncertainty = {}
        self.scores_ = {}
        self.history_ = []
        self.n_calls_ = 0
        for method in adapter.methods().values():
            method.track_delta = True

    def ranks(self):
        """``{layer path: active rank}``."""
        return {path: m.active_rank for path, m in self.adapter.methods().items()}

    def regularization(self):
        """``orth_reg`` times the mean orthogonality penalty of the layers: add it to the loss."""
        methods = list(self.adapter.methods().values())
        return self.options.orth_reg * sum(m.orthogonal_penalty() for m in methods) / len(methods)

    @staticmethod
    def _raw_score(method):
        delta = method.last_delta
        method.last_delta = None
        if delta is not None and delta.grad is not None:
            return float((delta * delta.grad).abs().sum()) / math.sqrt(delta.numel())
        # the max-mode EmbeddingBag (weight path only) or no tracked forward: parameter sensitivity
        params = [p for p in (method.A, method.B, method.E) if p.grad is not None]
        numel = math.prod(method.spec.weight_shape)
        return sum(float((p * p.grad).abs().sum()) for p in params) / math.sqrt(numel)

    def _scheduled(self):
        o = self.options
        t = self.n_calls_
        return t > o.warmup and (t - o.warmup) % o.interval == 0

    @torch.no_grad()
    def step(self, model=None):
        """Update the scores and, at a scheduled call, grow the best modules by one rank each.

        Parameters
        ----------
        model : torch.nn.Module, optional
            The adapted model (must be the adapter's); accepted so that the callback reads like a
            training-loop hook.

        Returns
        -------
        list of str
            Paths of the layers that gained a rank at this call (usually empty).

        Raises
        ------
        ValueError
            If ``model`` is not the adapter's model.
        """
        if model is not None and model is not self.adapter.model:
            raise ValueError("`model` must be the model the allocator's adapter is on")
        o = self.options
        self.n_calls_ += 1
        methods = self.adapter.methods()
        for path, method in methods.items():
            s = self._raw_score(method)
            imp = o.beta1 * self._importance.get(path, 0.0) + (1 - o.beta1) * s
            unc = o.beta2 * self._uncertainty.get(path, 0.0) + (1 - o.beta2) * abs(s - imp)
            self._importance[path], self._uncertainty[path] = imp, unc
            self.scores_[path] = imp * unc
        if not self._scheduled():
            return []
        budget = math.floor(o.target_rank * len(methods) + 1e-9) - sum(m.active_rank for m in methods.values())
        room = [p for p, m in methods.items() if m.active_rank < m.max_rank]
        room.sort(key=lambda p: -self.scores_[p])
        grown = room[:max(0, min(o.per_step, budget))]
        for path in grown:
            method = methods[path]
            before = {name: getattr(method, name) for name in ("A", "B", "E")}
            method.grow(1, self._generator)
            for name, old in before.items():
                if getattr(method, name) is not old:
                    _swap_param(self.optimizer, old, getattr(method, name))
            self.history_.append((self.n_calls_, path))
        return grown
