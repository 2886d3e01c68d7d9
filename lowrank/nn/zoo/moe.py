"""A mixture-of-experts MLP (8 experts, top-2 router) trained on scikit-learn's digits."""

import dataclasses

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_float, check_int
from lowrank.nn.zoo._task import ZooTask, cached_task
from lowrank.nn.zoo._train import accuracy, fit_classifier, torch_generator
from lowrank.nn.zoo.digits import digits_split
from lowrank.nn.zoo.models import MoEClassifier, seeded

torch = import_optional("torch", purpose="lowrank.nn.zoo")

__all__ = ["moe_mlp"]


@dataclasses.dataclass(frozen=True)
class _MoEOptions:
    seed: int
    n_experts: int
    top_k: int
    balance: float
    epochs: int


def moe_mlp(seed=0, *, n_experts=8, top_k=2, balance=0.01, epochs=30):
    """A classifier around one mixture-of-experts layer, trained on the 10 digit classes.

    :class:`~lowrank.nn.zoo.MoEClassifier`: ``embed`` (64 -> 64, ReLU), ``h + moe(h)`` with
    ``moe`` a :class:`~lowrank.nn.zoo.MoEMLP` (``router`` Linear(64, n_experts), ``experts``
    a ModuleList of 64-128-64 ReLU MLPs with ``fc1``/``fc2``, softmax over the top-k logits), then
    ``head``. Trained with Adam (lr 1e-3, batch 32) plus ``balance`` times the Switch load-balancing
    loss, so that every expert is used. Split as :func:`~lowrank.nn.zoo.digits_classifier`'s.

    Parameters
    ----------
    seed : int, default=0
        Seeds the split, the initialization and the batch order.
    n_experts : int, default=8
        Number of experts.
    top_k : int, default=2
        Experts per input (``1 <= top_k <= n_experts``).
    balance : float, default=0.01
        Weight of the load-balancing loss (0 turns it off).
    epochs : int, default=30
        Training epochs.

    Returns
    -------
    ZooTask
        ``metric = accuracy``; ``info``: ``base_metric`` (test accuracy, >= 0.95 with the defaults),
        ``moe`` (``"moe"``, the MoE layer's name), ``experts``, ``router``, ``targets`` (every
        expert Linear), ``routing_frequency`` (fraction of the top-k slots each expert receives on
        ``train``, a list summing to 1).

    Raises
    ------
    TypeError, ValueError
        If an option is of the wrong type or out of range.

    Examples
    --------
    >>> from lowrank.nn.zoo import moe_mlp
    >>> task = moe_mlp(seed=0, epochs=1)
    >>> len(task.model.moe.experts), task.model.moe.router.out_features, task.model.moe.top_k
    (8, 8, 2)
    """
    n_experts = check_int(n_experts, "n_experts", low=1)
    options = _MoEOptions(check_int(seed, "seed", low=0), n_experts,
                          check_int(top_k, "top_k", low=1, high=n_experts), check_float(balance, "balance", low=0),
                          check_int(epochs, "epochs", low=1))
    return cached_task(("moe_mlp", options), lambda: _moe_mlp(options))


def _moe_mlp(o):
    gen = torch_generator(o.seed)
    train, test = digits_split(o.seed)
    model = seeded(lambda: MoEClassifier(64, 10, n_experts=o.n_experts, top_k=o.top_k), gen)
    extra = (lambda m: o.balance * m.moe.balance_loss) if o.balance > 0 else None
    fit_classifier(model, train, epochs=o.epochs, lr=1e-3, batch_size=32, extra_loss=extra, rng=gen)
    with torch.no_grad():
        _, indices, _ = model.moe.route(model.act(model.embed(train[0])))
    frequency = torch.bincount(indices.reshape(-1), minlength=o.n_experts).double() / indices.numel()
    info = {
        "base_metric": accuracy(model, test),
        "moe": "moe",
        "experts": "moe.experts",
        "router": "moe.router",
        "targets": [f"moe.experts.{e}.{fc}" for e in range(o.n_experts) for fc in ("fc1", "fc2")],
        "routing_frequency": frequency.tolist(),
        "head": "head",
    }
    return ZooTask(model, train, test, accuracy, "moe_mlp", "accuracy", True, info)
