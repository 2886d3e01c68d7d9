"""A residual MLP of identical blocks trained on scikit-learn's digits (for block removal and fusion)."""

import dataclasses

from lowrank._utils.validation import check_int
from lowrank.nn.zoo._task import ZooTask, cached_task
from lowrank.nn.zoo._train import accuracy, fit_classifier, torch_generator
from lowrank.nn.zoo.digits import digits_split
from lowrank.nn.zoo.models import ResidualMLP, seeded

__all__ = ["residual_mlp_digits"]


@dataclasses.dataclass(frozen=True)
class _ResidualOptions:
    seed: int
    n_blocks: int
    d_model: int
    epochs: int


def residual_mlp_digits(seed=0, *, n_blocks=6, d_model=64, epochs=30):
    """A residual MLP ``embed -> blocks -> norm -> head`` trained on the 10 digit classes.

    :class:`~lowrank.nn.zoo.ResidualMLP` with ``n_blocks`` identical pre-norm blocks
    ``x + fc2(relu(fc1(norm(x))))`` (``d_model -> 2 d_model -> d_model``), Adam (lr 1e-3,
    batch 32). Split as :func:`~lowrank.nn.zoo.digits_classifier`'s for the same seed.

    Parameters
    ----------
    seed : int, default=0
        Seeds the split, the initialization and the batch order.
    n_blocks : int, default=6
        Number of residual blocks.
    d_model : int, default=64
        Width of the residual stream (the blocks' hidden width is twice it).
    epochs : int, default=30
        Training epochs.

    Returns
    -------
    ZooTask
        ``metric = accuracy``; ``info``: ``base_metric`` (test accuracy, >= 0.95 with the defaults),
        ``blocks`` (``"blocks"``, the ModuleList), ``block_names``, ``targets`` (every block Linear).

    Raises
    ------
    TypeError, ValueError
        If an option is of the wrong type or out of range.

    Examples
    --------
    >>> from lowrank.nn.zoo import residual_mlp_digits
    >>> task = residual_mlp_digits(seed=0, n_blocks=2, epochs=1)
    >>> [name for name, _ in task.model.blocks.named_children()]
    ['0', '1']
    """
    options = _ResidualOptions(check_int(seed, "seed", low=0), check_int(n_blocks, "n_blocks", low=1),
                               check_int(d_model, "d_model", low=1), check_int(epochs, "epochs", low=1))
    return cached_task(("residual_mlp_digits", options), lambda: _residual_mlp_digits(options))


def _residual_mlp_digits(o):
    gen = torch_generator(o.seed)
    train, test = digits_split(o.seed)
    model = seeded(lambda: ResidualMLP(64, 10, d_model=o.d_model, d_hidden=2 * o.d_model, n_blocks=o.n_blocks), gen)
    fit_classifier(model, train, epochs=o.epochs, lr=1e-3, batch_size=32, rng=gen)
    blocks = [f"blocks.{i}" for i in range(o.n_blocks)]
    info = {
        "base_metric": accuracy(model, test),
        "blocks": "blocks",
        "block_names": blocks,
        "targets": [f"{b}.{fc}" for b in blocks for fc in ("fc1", "fc2")],
        "head": "head",
    }
    return ZooTask(model, train, test, accuracy, "residual_mlp_digits", "accuracy", True, info)
