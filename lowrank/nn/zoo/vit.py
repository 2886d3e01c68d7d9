"""A patch vision transformer trained on scikit-learn's 8x8 digits."""

import dataclasses

from lowrank._utils.validation import check_choice, check_int
from lowrank.nn.zoo._task import ZooTask, cached_task
from lowrank.nn.zoo._train import accuracy, fit_classifier, torch_generator
from lowrank.nn.zoo.digits import digits_split
from lowrank.nn.zoo.models import PatchViT, seeded

__all__ = ["patch_vit_digits"]


@dataclasses.dataclass(frozen=True)
class _ViTOptions:
    seed: int
    patch_size: int
    attention: str
    epochs: int


def patch_vit_digits(seed=0, *, patch_size=2, attention="separate", epochs=20):
    """A 2-layer, d_model 64, 4-head patch-ViT trained on the 10 digit classes.

    :class:`~lowrank.nn.zoo.PatchViT` on ``(n, 1, 8, 8)`` images: ``patch`` (a Linear
    embedding of each ``patch_size`` x ``patch_size`` patch), a class token, learned positions,
    ``blocks[i]`` (``attn``, ``mlp.fc1``/``mlp.fc2`` 128 wide), ``norm``, ``head`` on the class token.
    The split is :func:`~lowrank.nn.zoo.digits_classifier`'s for the same seed (1347 / 450);
    Adam, lr 2e-3, batch 64.

    Parameters
    ----------
    seed : int, default=0
        Seeds the split, the initialization and the batch order.
    patch_size : {1, 2, 4, 8}, default=2
        Patch side (16 patches at 2).
    attention : {"separate", "torch"}, default="separate"
        The zoo's ``SelfAttention`` (``q``, ``k``, ``v``, ``o``) or ``torch.nn.MultiheadAttention``.
    epochs : int, default=20
        Training epochs.

    Returns
    -------
    ZooTask
        ``metric = accuracy``; ``info``: ``base_metric`` (test accuracy, >= 0.9 with the defaults),
        ``targets`` (every attention and MLP Linear), ``attention``, ``mlp``, ``head``.

    Raises
    ------
    TypeError, ValueError
        If an option is of the wrong type or out of range.

    Examples
    --------
    >>> from lowrank.nn.zoo import patch_vit_digits
    >>> task = patch_vit_digits(seed=0, epochs=1)
    >>> tuple(task.test[0].shape), task.model(task.test[0]).shape
    ((450, 1, 8, 8), torch.Size([450, 10]))
    """
    options = _ViTOptions(check_int(seed, "seed", low=0), check_choice(patch_size, "patch_size", (1, 2, 4, 8)),
                          check_choice(attention, "attention", ("separate", "torch")),
                          check_int(epochs, "epochs", low=1))
    return cached_task(("patch_vit_digits", options), lambda: _patch_vit_digits(options))


def _patch_vit_digits(o):
    gen = torch_generator(o.seed)
    (Xtr, ytr), (Xte, yte) = digits_split(o.seed)
    train, test = (Xtr.reshape(-1, 1, 8, 8), ytr), (Xte.reshape(-1, 1, 8, 8), yte)
    model = seeded(lambda: PatchViT(8, o.patch_size, 10, attention=o.attention), gen)
    fit_classifier(model, train, epochs=o.epochs, lr=2e-3, batch_size=64, rng=gen)
    attention = [f"blocks.{i}.attn" for i in range(len(model.blocks))]
    mlp = [f"blocks.{i}.mlp" for i in range(len(model.blocks))]
    attn_linears = ([f"{a}.{p}" for a in attention for p in "qkvo"] if o.attention == "separate"
                    else [f"{a}.out_proj" for a in attention])
    info = {
        "base_metric": accuracy(model, test),
        "targets": attn_linears + [f"{m}.{fc}" for m in mlp for fc in ("fc1", "fc2")],
        "attention": attention,
        "mlp": mlp,
        "head": "head",
    }
    return ZooTask(model, train, test, accuracy, "patch_vit_digits", "accuracy", True, info)
