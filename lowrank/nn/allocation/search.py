"""DiffoRA-style module search: which layers deserve a LoRA adapter, learned by differentiable gates.

Every candidate layer gets a LoRA adapter whose delta is scaled by a continuous gate
``g_i = sigmoid(a_i)`` (the "Differential Adaptation Matrix" relaxed to one gate per module). As in
DARTS (first order), the gates and the adapter weights are trained in alternation: a gate step on a
batch of the validation split, then a weight step on a batch of the training split; the adapter
weights are shared by every gate configuration. The ``k`` layers with the largest gates are kept.
The search runs on a deep copy: the user's model is not modified.
"""

import copy
import dataclasses

from lowrank._utils.optional import import_optional
from lowrank._utils.rng import as_seed
from lowrank._utils.validation import check_float, check_int

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn
F = nn.functional

__all__ = ["search_modules", "ModuleSearchResult"]

_LOSSES = {"cross_entropy": F.cross_entropy, "mse": F.mse_loss}


class ModuleSearchResult(list):
    """The selected layer names (a list, in model order), with the learned gates.

    Attributes
    ----------
    gates : dict of str to float
        ``sigmoid(a_i)`` of every candidate after the search, in model order.
    """

    def __init__(self, names, gates):
        super().__init__(names)
        self.gates = gates


@dataclasses.dataclass(frozen=True)
class _SearchOptions:
    k: int
    rank: int
    steps: int
    lr: float
    gate_lr: float
    batch_size: int
    loss: object
    also_train: tuple
    seed: int


def _check_pair(data, name):
    if not (isinstance(data, (tuple, list)) and len(data) == 2 and all(torch.is_tensor(t) for t in data)):
        raise TypeError(f"`{name}` must be an (X, y) pair of torch tensors")
    if len(data[0]) != len(data[1]) or len(data[0]) == 0:
        raise ValueError(f"`{name}`: X and y must have the same, non-zero number of rows; got "
                         f"{len(data[0])} and {len(data[1])}")
    return tuple(data)


def _iv(model, train, val, k, candidates, rank, steps, lr, gate_lr, batch_size, loss, also_train, rng):
    from lowrank.nn.adapters._adapter import _select
    from lowrank.nn.adapters._method import get_method

    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
    train = _check_pair(train, "train")
    val = _check_pair(val, "val")
    rank = check_int(rank, "rank", low=1)
    lora = get_method("lora")
    names = _select(model, candidates, lora, lora._iv(rank=rank))
    k = check_int(k, "k", low=1, high=len(names))
    if isinstance(loss, str):
        if loss not in _LOSSES:
            raise ValueError(f"`loss` must be one of {sorted(_LOSSES)} or a callable, got {loss!r}")
        loss = _LOSSES[loss]
    elif not callable(loss):
        raise TypeError(f"`loss` must be a string or a callable (output, target) -> scalar, got {loss!r}")
    also_train = () if also_train is None else (also_train,) if isinstance(also_train, str) else tuple(also_train)
    for name in also_train:
        try:
            model.get_submodule(name)
        except AttributeError:
            raise ValueError(f"`also_train`: the model has no module {name!r}") from None
    options = _SearchOptions(
        k=k, rank=rank, steps=check_int(steps, "steps", low=1), lr=check_float(lr, "lr", low=0.0, low_inclusive=False),
        gate_lr=check_float(gate_lr, "gate_lr", low=0.0, low_inclusive=False),
        batch_size=check_int(batch_size, "batch_size", low=1), loss=loss, also_train=also_train, seed=as_seed(rng))
    return names, train, val, options


def _search(model, names, train, val, o):
    from lowrank.nn import adapt

    model = copy.deepcopy(model)
    adapter = adapt(model, "lora", targets=names, rank=o.rank, rng=o.seed)
    methods = adapter.methods()
    gates = nn.Parameter(torch.zeros(len(names), dtype=torch.float32))

    def gate_hook(i, method, scale):
        def hook(module, args):
            # LoRA's delta is linear in its scaling: a tensor scaling carries the gate into the graph
            method.scaling = scale * torch.sigmoid(gates[i]).to(method.B.dtype)
        return hook

    hooks = [model.get_submodule(n).register_forward_pre_hook(gate_hook(i, methods[n], methods[n].scaling))
             for i, n in enumerate(names)]
    weights = adapter.trainable_parameters()
    for name in o.also_train:
        for p in model.get_submodule(name).parameters():
            p.requires_grad_(True)
            weights.append(p)
    weight_opt = torch.optim.Adam(weights, lr=o.lr)
    gate_opt = torch.optim.Adam([gates], lr=o.gate_lr)
    gen = torch.Generator().manual_seed(o.seed)

    def batch(data):
        idx = torch.randint(0, len(data[0]), (min(o.batch_size, len(data[0])),), generator=gen)
        return data[0][idx], data[1][idx]

    model.train()
    try:
        for _ in range(o.steps):
            x, y = batch(val)  # upper level: gates on the validation split
            gate_opt.zero_grad()
            o.loss(model(x), y).backward()
            gate_opt.step()
            x, y = batch(train)  # lower level: adapter weights on the training split
            weight_opt.zero_grad()
            gates.grad = None
            o.loss(model(x), y).backward()
            weight_opt.step()
    finally:
        for h in hooks:
            h.remove()
    values = torch.sigmoid(gates.detach()).tolist()
    order = sorted(range(len(names)), key=lambda i: -values[i])[:o.k]
    return ModuleSearchResult([names[i] for i in sorted(order)], dict(zip(names, values)))


def search_modules(model, train, val, k, *, candidates=None, rank=4, steps=200, lr=1e-2, gate_lr=3e-2,
                   batch_size=32, loss="cross_entropy", also_train=None, rng=None):
    """The ``k`` layers of ``model`` where a LoRA adapter helps most, by a differentiable (DARTS) search.

    Parameters
    ----------
    model : torch.nn.Module
        Not modified (the search runs on a deep copy).
    train, val : (X, y) pairs of torch tensors
        The adapter weights train on ``train``, the gates on ``val`` (use two disjoint splits).
    k : int
        Layers to keep, ``1 <= k <= number of candidates``.
    candidates : None, str, type, callable or list, default=None
        Candidate layers, as ``adapt``'s ``targets`` (None: every supported layer).
    rank : int, default=4
        LoRA rank during the search.
    steps : int, default=200
        Alternations (one gate step and one weight step each).
    lr : float, default=1e-2
        Adam learning rate of the adapter weights (and of ``also_train``).
    gate_lr : float, default=3e-2
        Adam learning rate of the gate logits (which start at 0, gate 0.5).
    batch_size : int, default=32
        Rows per step, sampled with replacement.
    loss : {"cross_entropy", "mse"} or callable, default="cross_entropy"
        ``loss(model(X), y) -> scalar``.
    also_train : str or list of str, optional
        Modules that train fully with the adapter weights (a new head).
    rng : None, int or numpy Generator, default=None
        Seeds the adapters and the batches.

    Returns
    -------
    ModuleSearchResult
        A list of the ``k`` selected layer names in model order (pass it as ``adapt(...,
        targets=...)``), with ``.gates`` (every candidate's final gate).

    Raises
    ------
    TypeError
        If ``model``, ``train``, ``val`` or ``loss`` is of the wrong type.
    ValueError
        If ``k`` or another option is out of range, a candidate pattern matches nothing, or
        ``also_train`` names no module.

    References
    ----------
    Jiang, Wang & Yuan, "DiffoRA: Enabling Parameter-Efficient LLM Fine-Tuning via Differential Low-Rank
    Matrix Adaptation", 2025, arXiv:2502.08905.
    Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search", ICLR 2019, arXiv:1806.09055.

    Examples
    --------
    >>> import torch
    >>> from lowrank.nn import search_modules
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2))
    >>> X = torch.randn(64, 6); y = (X[:, 0] > 0).long()
    >>> chosen = search_modules(model, (X[:32], y[:32]), (X[32:], y[32:]), k=1, rank=1, steps=20, rng=0)
    >>> len(chosen), sorted(chosen.gates)
    (1, ['0', '2'])
    """
    names, train, val, options = _iv(model, train, val, k, candidates, rank, steps, lr, gate_lr, batch_size, loss,
                                     also_train, rng)
    return _search(model, names, train, val, options)
