"""Digits tasks: scikit-learn's bundled 8x8 handwritten digits (1797 images, nothing downloaded).

``digits_transfer`` pretrains an MLP on the digits 0-4 and hands it back with a fresh head for the
digits 5-9 (the adapter benchmark); ``digits_classifier`` is the plain 10-class MLP (the compression
benchmark). Pixels are scaled to ``[0, 1]`` (divided by 16).
"""

import dataclasses
import functools
import math

import numpy as np

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_int
from lowrank.nn.zoo._task import ZooTask, cached_task
from lowrank.nn.zoo._train import accuracy, fit_classifier, torch_generator
from lowrank.nn.zoo.models import MLP, seeded

torch = import_optional("torch", purpose="lowrank.nn.zoo")

__all__ = ["digits_transfer", "digits_classifier", "load_digits_tensors"]


@functools.lru_cache(maxsize=1)
def _digits_arrays():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y.astype(np.int64)


def load_digits_tensors():
    """scikit-learn's digits as torch tensors: ``X`` (1797, 64) float32 in ``[0, 1]``, ``y`` int64.

    Returns
    -------
    X : torch.Tensor, shape (1797, 64), float32
    y : torch.Tensor, shape (1797,), int64

    Examples
    --------
    >>> from lowrank.nn.zoo.digits import load_digits_tensors
    >>> X, y = load_digits_tensors()
    >>> tuple(X.shape), int(y.max())
    ((1797, 64), 9)
    """
    X, y = _digits_arrays()
    return torch.from_numpy(X.copy()), torch.from_numpy(y.copy())


def stratified_split(y, n_first, gen, *, name="n_train"):
    """Indices ``(first, rest)``: ``n_first`` rows spread as evenly as possible over the classes.

    Classes get ``n_first // k`` rows each and the first ``n_first % k`` classes one more; rows of
    a class are drawn without replacement by ``gen`` (a numpy Generator). Both index arrays are sorted.
    """
    classes = np.unique(y)
    per, extra = divmod(n_first, len(classes))
    first = []
    for i, c in enumerate(classes):
        members = np.flatnonzero(y == c)
        take = per + (i < extra)
        if take > len(members) - 1:
            raise ValueError(f"`{name}`={n_first} leaves no test example of class {c} "
                             f"({len(members)} examples)")
        first.append(gen.permutation(members)[:take])
    first = np.sort(np.concatenate(first))
    rest = np.setdiff1d(np.arange(len(y)), first)
    return first, rest


def _tensors(X, y, index, offset=0):
    return torch.from_numpy(X[index].copy()), torch.from_numpy(y[index] - offset)


def _pretrained_mlp(X, y, n_classes, hidden, epochs, torch_gen):
    model = seeded(lambda: MLP(X[0].shape[-1], hidden, n_classes), torch_gen)
    fit_classifier(model, (X, y), epochs=epochs, lr=1e-3, batch_size=32, rng=torch_gen)
    return model


@dataclasses.dataclass(frozen=True)
class _TransferOptions:
    seed: int
    n_train: int
    width: int
    epochs: int


def _transfer_iv(seed, n_train, width, epochs):
    return _TransferOptions(
        seed=check_int(seed, "seed", low=0),
        n_train=check_int(n_train, "n_train", low=5, high=500),
        width=check_int(width, "width", low=1),
        epochs=check_int(epochs, "epochs", low=1),
    )


def digits_transfer(seed=0, *, n_train=100, width=256, epochs=30):
    """An MLP pretrained on the digits 0-4, returned with a fresh 5-class ``head`` for the digits 5-9.

    The MLP is ``64 -> width -> width -> 5`` (``fc1``, ``fc2``, ``head``, ReLU). It is trained on
    80% of the images of 0-4 and scored on the other 20% (``info["base_metric"]``, >= 0.98 with the
    defaults). Its head is then replaced by a freshly initialized ``Linear(width, 5)`` for the
    labels ``digit - 5``. ``train`` holds ``n_train`` images of 5-9 (stratified: ``n_train // 5``
    per digit), ``test`` every other image of 5-9.

    Parameters
    ----------
    seed : int, default=0
        Seeds the splits, the initialization, the batch order and the new head.
    n_train : int, default=100
        Images of 5-9 to adapt on (5 to 500).
    width : int, default=256
        Hidden width.
    epochs : int, default=30
        Pretraining epochs (Adam, lr 1e-3, batch 32).

    Returns
    -------
    ZooTask
        ``(model, train, test, metric)`` with ``metric = accuracy``. ``info``: ``base_metric``
        (held-out 0-4 accuracy of the pretrained model), ``source_test`` (that held-out ``(X, y)``),
        ``source_head`` (the pretrained 0-4 head, to measure forgetting),
        ``targets`` (``["fc1", "fc2"]``, the layers adapters act on), ``head`` (``"head"``, which
        always trains), ``classes`` (the digits, in label order), ``n_train``, ``n_test``,
        ``n_pretrain``.

    Raises
    ------
    TypeError, ValueError
        If an option is not an integer in range.

    Notes
    -----
    Measured here with the defaults, mean of 3 seeds: head-only fine-tuning ~0.82 and full
    fine-tuning ~0.97 test accuracy (the calibration of the adapter benchmarks).

    Examples
    --------
    >>> from lowrank.nn.zoo import digits_transfer
    >>> model, train, test, metric = digits_transfer(seed=0)
    >>> tuple(train[0].shape), model.head.out_features
    ((100, 64), 5)
    """
    options = _transfer_iv(seed, n_train, width, epochs)
    return cached_task(("digits_transfer", options), lambda: _digits_transfer(options))


def _digits_transfer(o):
    X, y = _digits_arrays()
    gen = np.random.default_rng(o.seed)
    torch_gen = torch_generator(o.seed)
    source = np.flatnonzero(y < 5)
    target = np.flatnonzero(y >= 5)
    n_src_test = len(source) // 5
    src_test_pos, src_train_pos = stratified_split(y[source], n_src_test, gen)
    src_train, src_test = source[src_train_pos], source[src_test_pos]
    model = _pretrained_mlp(torch.from_numpy(X[src_train]), torch.from_numpy(y[src_train]), 5,
                            [o.width, o.width], o.epochs, torch_gen)
    source_test = _tensors(X, y, src_test)
    base = accuracy(model, source_test)
    source_head = model.head
    model.head = seeded(lambda: torch.nn.Linear(o.width, 5), torch_gen)
    tr_pos, te_pos = stratified_split(y[target], o.n_train, gen)
    train = _tensors(X, y, target[tr_pos], offset=5)
    test = _tensors(X, y, target[te_pos], offset=5)
    info = {
        "base_metric": base,
        "source_test": source_test,
        "source_head": source_head,
        "targets": ["fc1", "fc2"],
        "head": "head",
        "classes": [5, 6, 7, 8, 9],
        "n_pretrain": len(src_train),
        "n_train": len(tr_pos),
        "n_test": len(te_pos),
    }
    return ZooTask(model, train, test, accuracy, "digits_transfer", "accuracy", True, info)


@dataclasses.dataclass(frozen=True)
class _ClassifierOptions:
    seed: int
    width: int
    epochs: int
    test_size: float


def digits_classifier(seed=0, *, width=256, epochs=30):
    """The 10-class digits MLP ``64 -> width -> width -> 10`` (``fc1``, ``fc2``, ``head``), trained.

    ``train`` is a stratified 75% of the 1797 images (1347), ``test`` the rest (450); the model is
    trained on ``train`` only (Adam, lr 1e-3, batch 32).

    Parameters
    ----------
    seed : int, default=0
        Seeds the split, the initialization and the batch order.
    width : int, default=256
        Hidden width.
    epochs : int, default=30
        Training epochs.

    Returns
    -------
    ZooTask
        ``metric = accuracy``; ``info``: ``base_metric`` (test accuracy, ~0.975 with the defaults),
        ``targets`` (``["fc1", "fc2", "head"]``, the layers compressors act on), ``n_train``, ``n_test``.

    Raises
    ------
    TypeError, ValueError
        If an option is not an integer in range.

    Examples
    --------
    >>> from lowrank.nn.zoo import digits_classifier
    >>> task = digits_classifier(seed=0)
    >>> task.metric_name, task.higher_is_better, task.model.head.out_features
    ('accuracy', True, 10)
    """
    options = _ClassifierOptions(check_int(seed, "seed", low=0), check_int(width, "width", low=1),
                                 check_int(epochs, "epochs", low=1), 0.25)
    return cached_task(("digits_classifier", options), lambda: _digits_classifier(options))


def digits_split(seed, test_size=0.25):
    """The 10-class digits split shared by the digits tasks: ``(train, test)`` ``(X, y)`` tensor pairs.

    ``test`` is a stratified ``ceil(test_size * 1797)`` images drawn by ``numpy.random.default_rng(seed)``.
    """
    X, y = _digits_arrays()
    test_pos, train_pos = stratified_split(y, math.ceil(test_size * len(y)), np.random.default_rng(seed),
                                           name="test_size")
    return _tensors(X, y, train_pos), _tensors(X, y, test_pos)


def _digits_classifier(o):
    torch_gen = torch_generator(o.seed)
    train, test = digits_split(o.seed, o.test_size)
    model = _pretrained_mlp(*train, 10, [o.width, o.width], o.epochs, torch_gen)
    info = {
        "base_metric": accuracy(model, test),
        "targets": ["fc1", "fc2", "head"],
        "n_train": len(train[1]),
        "n_test": len(test[1]),
    }
    return ZooTask(model, train, test, accuracy, "digits_classifier", "accuracy", True, info)
