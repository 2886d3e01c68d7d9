"""The result every zoo task returns, and the in-memory memo of trained base models."""

import copy
import dataclasses
import threading
from typing import Any, Callable

__all__ = ["ZooTask", "clear_cache", "list_tasks"]

_TASKS = (
    "digits_transfer",
    "digits_classifier",
    "shapes_transfer",
    "sequence_task",
    "patch_vit_digits",
    "moe_mlp",
    "teacher_regression",
    "residual_mlp_digits",
    "emt_molecules",
)


@dataclasses.dataclass(frozen=True, eq=False)
class ZooTask:
    """A model, its data and its metric; unpacks like ``(model, train, test, metric)``.

    Built by the task functions (``digits_transfer`` and the others); frozen.

    Parameters
    ----------
    model : torch.nn.Module or None
        The base model (pretrained unless the task says otherwise; ``None`` for data-only tasks).
    train, test : tuple
        ``(X, y)`` pairs of torch tensors (float32 inputs; int64 class labels or float32 targets),
        or a :class:`~lowrank.nn.zoo.MoleculeData` for the molecules task.
    metric : callable
        ``metric(model, data) -> float`` on a ``train``/``test``-like pair.
    name : str
        The task's name (``"digits_transfer"``, ...).
    metric_name : str
        ``"accuracy"``, ``"token_accuracy"``, ``"mse"`` or ``"force_mae"``.
    higher_is_better : bool
        True for accuracies, False for errors.
    info : dict
        Task facts: ``"base_metric"`` (the base model's score on its pretraining task), sizes,
        ``"targets"`` (names of the layers later methods should act on), ``"head"`` and more,
        as each task documents.
    """

    model: Any
    train: Any
    test: Any
    metric: Callable
    name: str
    metric_name: str
    higher_is_better: bool
    info: dict

    def __iter__(self):
        return iter((self.model, self.train, self.test, self.metric))

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return (self.model, self.train, self.test, self.metric)[index]

    def score(self, model=None, data=None):
        """``metric(model, data)``, with the task's model and test data as defaults."""
        return self.metric(self.model if model is None else model, self.test if data is None else data)

    def __repr__(self):
        model = type(self.model).__name__ if self.model is not None else None
        return (f"ZooTask(name={self.name!r}, model={model}, metric_name={self.metric_name!r}, "
                f"base_metric={self.info.get('base_metric')!r})")


_CACHE = {}
_LOCK = threading.Lock()


def cached_task(key, build):
    """Return a deep copy of the memoized ``build()`` for ``key`` (built on first use).

    The copy means a caller may train or prune the model in place without changing what the
    next caller gets.
    """
    with _LOCK:
        task = _CACHE.get(key)
    if task is None:
        task = build()
        with _LOCK:
            task = _CACHE.setdefault(key, task)
    return copy.deepcopy(task)


def clear_cache():
    """Forget every memoized zoo task (frees the memory of their models and data).

    Examples
    --------
    >>> from lowrank.nn.zoo import clear_cache
    >>> clear_cache()
    """
    with _LOCK:
        _CACHE.clear()


def list_tasks():
    """Names of the zoo's tasks (each a function of ``lowrank.nn.zoo`` taking ``seed`` and options).

    Returns
    -------
    tuple of str

    Examples
    --------
    >>> from lowrank.nn.zoo import list_tasks
    >>> list_tasks()[:2]
    ('digits_transfer', 'digits_classifier')
    """
    return _TASKS
