"""One small deterministic training loop and the metrics, shared by every zoo task and benchmark.

Determinism: batches are drawn with a ``torch.Generator`` seeded from ``rng`` and nothing reads the
global RNG, so the same model, data and seed give bit-identical weights (on the same build of torch
and the same number of threads).
"""

from lowrank._utils.optional import import_optional
from lowrank._utils.rng import as_seed
from lowrank._utils.validation import check_choice, check_float, check_int

torch = import_optional("torch", purpose="lowrank.nn.zoo")
F = torch.nn.functional

__all__ = ["fit", "fit_classifier", "fit_regressor", "evaluate", "accuracy", "mse", "torch_generator"]

IGNORE_INDEX = -100


def torch_generator(rng, *, name="rng"):
    """A CPU ``torch.Generator`` from None, an int, a numpy Generator or a ``torch.Generator``.

    A ``torch.Generator`` is returned as is (the caller's stream advances); anything else is turned
    into a seed by ``lowrank._utils.rng.as_seed``.

    Parameters
    ----------
    rng : None, int, numpy.random.Generator or torch.Generator
        None draws a fresh seed; an int is used as the seed itself.
    name : str, default="rng"
        Argument name used in error messages.

    Returns
    -------
    torch.Generator

    Raises
    ------
    TypeError, ValueError
        If ``rng`` is of another type or a negative integer.

    Examples
    --------
    >>> from lowrank.nn.zoo import torch_generator
    >>> g = torch_generator(0)
    >>> bool((torch.rand(3, generator=g) == torch.rand(3, generator=torch_generator(0))).all())
    True
    """
    if isinstance(rng, torch.Generator):
        return rng
    gen = torch.Generator()
    gen.manual_seed(as_seed(rng, name=name) & 0x7FFFFFFFFFFFFFFF)
    return gen


def _loss(kind, output, target):
    if kind == "cross_entropy":
        # (batch, ..., classes) logits against (batch, ...) labels; IGNORE_INDEX marks unscored tokens
        return F.cross_entropy(output.reshape(-1, output.shape[-1]), target.reshape(-1), ignore_index=IGNORE_INDEX)
    return F.mse_loss(output, target)


def _check_data(data, name):
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError(f"`{name}` must be an (X, y) pair of torch tensors, got {type(data).__name__}")
    X, y = data
    if not (isinstance(X, torch.Tensor) and isinstance(y, torch.Tensor)):
        raise TypeError(f"`{name}` must hold torch tensors, got ({type(X).__name__}, {type(y).__name__})")
    if X.shape[0] != y.shape[0] or X.shape[0] == 0:
        raise ValueError(f"`{name}`: X and y must have the same non-zero number of rows, got {X.shape[0]} "
                         f"and {y.shape[0]}")
    return X, y


def fit(model, train, *, loss, epochs=None, steps=None, lr=1e-3, batch_size=32, weight_decay=0.0,
        params=None, extra_loss=None, rng=None):
    """Train ``model`` in place with Adam(W) on mini-batches of ``train``.

    Parameters
    ----------
    model : torch.nn.Module
        Trained in place (left in eval mode).
    train : (X, y) tuple of torch tensors
        Rows are examples.
    loss : {"cross_entropy", "mse"}
        Cross-entropy on the last axis of the output (labels ``-100`` are ignored), or mean squared error.
    epochs : int, optional
        Passes over ``train`` (each a fresh permutation). Exactly one of ``epochs`` and ``steps``.
    steps : int, optional
        Optimizer steps; the permutation is redrawn whenever it runs out.
    lr : float, default=1e-3
        Adam learning rate.
    batch_size : int, default=32
        Rows per step (the last batch of an epoch may be smaller).
    weight_decay : float, default=0.0
        Decoupled weight decay (AdamW).
    params : iterable of torch.nn.Parameter, optional
        What to train; default: every parameter with ``requires_grad``.
    extra_loss : callable, optional
        ``extra_loss(model) -> tensor`` added to the loss after each forward (e.g. a MoE balance term).
    rng : None, int, numpy Generator or torch.Generator, default=None
        Seeds the batch order.

    Returns
    -------
    list of float
        The training loss of every step.

    Raises
    ------
    TypeError, ValueError
        If an argument is of the wrong type or out of range.

    Examples
    --------
    >>> from lowrank.nn.zoo import fit, mse
    >>> X = torch.linspace(-1, 1, 64).reshape(-1, 1); y = 3 * X
    >>> model = torch.nn.Linear(1, 1)
    >>> losses = fit(model, (X, y), loss="mse", steps=300, lr=0.05, rng=0)
    >>> mse(model, (X, y)) < 1e-4
    True
    """
    check_choice(loss, "loss", ("cross_entropy", "mse"))
    X, y = _check_data(train, "train")
    if (epochs is None) == (steps is None):
        raise ValueError("give exactly one of `epochs` and `steps`")
    if epochs is not None:
        epochs = check_int(epochs, "epochs", low=0)
    else:
        steps = check_int(steps, "steps", low=0)
    lr = check_float(lr, "lr", low=0, low_inclusive=False)
    batch_size = check_int(batch_size, "batch_size", low=1)
    weight_decay = check_float(weight_decay, "weight_decay", low=0)
    gen = torch_generator(rng)
    params = [p for p in (model.parameters() if params is None else params) if p.requires_grad]
    if not params:
        raise ValueError("`params`: nothing to train (no parameter requires grad)")
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    n = X.shape[0]
    batches_per_epoch = -(-n // batch_size)
    total = epochs * batches_per_epoch if steps is None else steps
    history = []
    model.train()
    order, cursor = None, n
    for _ in range(total):
        if cursor >= n:
            order, cursor = torch.randperm(n, generator=gen), 0
        index = order[cursor:cursor + batch_size]
        cursor += batch_size
        opt.zero_grad(set_to_none=True)
        value = _loss(loss, model(X[index]), y[index])
        if extra_loss is not None:
            value = value + extra_loss(model)
        value.backward()
        opt.step()
        history.append(float(value.detach()))
    model.eval()
    return history


def fit_classifier(model, train, *, epochs=None, steps=None, lr=1e-3, batch_size=32, weight_decay=0.0,
                   params=None, extra_loss=None, rng=None):
    """:func:`~lowrank.nn.zoo.fit` with the cross-entropy loss (labels on the last output axis; ``-100`` ignored).

    Parameters
    ----------
    model : torch.nn.Module
        Trained in place (left in eval mode).
    train : (X, y) tuple of torch tensors
        Rows are examples.
    epochs : int, optional
        Passes over ``train`` (each a fresh permutation). Exactly one of ``epochs`` and ``steps``.
    steps : int, optional
        Optimizer steps; the permutation is redrawn whenever it runs out.
    lr : float, default=1e-3
        Adam learning rate.
    batch_size : int, default=32
        Rows per step (the last batch of an epoch may be smaller).
    weight_decay : float, default=0.0
        Decoupled weight decay (AdamW).
    params : iterable of torch.nn.Parameter, optional
        What to train; default: every parameter with ``requires_grad``.
    extra_loss : callable, optional
        ``extra_loss(model) -> tensor`` added to the loss after each forward (e.g. a MoE balance term).
    rng : None, int, numpy Generator or torch.Generator, default=None
        Seeds the batch order.

    Returns
    -------
    list of float
        The training loss of every step.

    Raises
    ------
    TypeError, ValueError
        If an argument is of the wrong type or out of range.

    Examples
    --------
    >>> from lowrank.nn.zoo import fit_classifier, accuracy
    >>> X = torch.tensor([[0.0], [1.0]]).repeat(16, 1); y = X[:, 0].long()
    >>> model = torch.nn.Linear(1, 2)
    >>> _ = fit_classifier(model, (X, y), epochs=40, lr=0.1, rng=0)
    >>> accuracy(model, (X, y))
    1.0
    """
    return fit(model, train, loss="cross_entropy", epochs=epochs, steps=steps, lr=lr, batch_size=batch_size,
               weight_decay=weight_decay, params=params, extra_loss=extra_loss, rng=rng)


def fit_regressor(model, train, *, epochs=None, steps=None, lr=1e-3, batch_size=32, weight_decay=0.0,
                  params=None, extra_loss=None, rng=None):
    """:func:`~lowrank.nn.zoo.fit` with the mean-squared-error loss.

    Parameters
    ----------
    model : torch.nn.Module
        Trained in place (left in eval mode).
    train : (X, y) tuple of torch tensors
        Rows are examples.
    epochs : int, optional
        Passes over ``train`` (each a fresh permutation). Exactly one of ``epochs`` and ``steps``.
    steps : int, optional
        Optimizer steps; the permutation is redrawn whenever it runs out.
    lr : float, default=1e-3
        Adam learning rate.
    batch_size : int, default=32
        Rows per step (the last batch of an epoch may be smaller).
    weight_decay : float, default=0.0
        Decoupled weight decay (AdamW).
    params : iterable of torch.nn.Parameter, optional
        What to train; default: every parameter with ``requires_grad``.
    extra_loss : callable, optional
        ``extra_loss(model) -> tensor`` added to the loss after each forward (e.g. a MoE balance term).
    rng : None, int, numpy Generator or torch.Generator, default=None
        Seeds the batch order.

    Returns
    -------
    list of float
        The training loss of every step.

    Raises
    ------
    TypeError, ValueError
        If an argument is of the wrong type or out of range.

    Examples
    --------
    >>> from lowrank.nn.zoo import fit_regressor, mse
    >>> X = torch.linspace(-1, 1, 32).reshape(-1, 1)
    >>> model = torch.nn.Linear(1, 1)
    >>> _ = fit_regressor(model, (X, 2 * X + 1), steps=400, lr=0.05, rng=0)
    >>> mse(model, (X, 2 * X + 1)) < 1e-4
    True
    """
    return fit(model, train, loss="mse", epochs=epochs, steps=steps, lr=lr, batch_size=batch_size,
               weight_decay=weight_decay, params=params, extra_loss=extra_loss, rng=rng)


def _outputs(model, X, batch_size):
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return torch.cat([model(X[i:i + batch_size]) for i in range(0, X.shape[0], batch_size)])
    finally:
        model.train(was_training)


def evaluate(model, data, *, metric="accuracy", batch_size=1024):
    """Score ``model`` on ``data`` without gradients, in eval mode (the mode is restored after).

    Parameters
    ----------
    model : torch.nn.Module
        The model to score (its train/eval mode is restored afterwards).
    data : (X, y) tuple of torch tensors
        Inputs and labels (or regression targets).
    metric : {"accuracy", "mse"}, default="accuracy"
        ``"accuracy"``: fraction of labels equal to the argmax of the last output axis, over every
        label that is not ``-100`` (so token accuracy for sequences). ``"mse"``: mean squared error.
    batch_size : int, default=1024
        Rows per forward.

    Returns
    -------
    float

    Raises
    ------
    TypeError, ValueError
        If ``data`` is not an (X, y) pair of tensors or ``metric`` is unknown.

    Examples
    --------
    >>> from lowrank.nn.zoo import evaluate
    >>> model = torch.nn.Identity()
    >>> evaluate(model, (torch.eye(3), torch.tensor([0, 1, 1])))
    0.6666666865348816
    """
    check_choice(metric, "metric", ("accuracy", "mse"))
    X, y = _check_data(data, "data")
    batch_size = check_int(batch_size, "batch_size", low=1)
    out = _outputs(model, X, batch_size)
    if metric == "mse":
        return float(F.mse_loss(out, y.to(out.dtype)))
    keep = y != IGNORE_INDEX
    return float((out.argmax(-1)[keep] == y[keep]).float().mean())


def accuracy(model, data):
    """Classification (or token) accuracy: ``evaluate(model, data, metric="accuracy")``.

    Parameters
    ----------
    model : torch.nn.Module
        The model to score.
    data : (X, y) tuple of torch tensors
        Inputs and labels.

    Returns
    -------
    float
        Fraction of scored labels equal to the argmax of the last output axis.

    Examples
    --------
    >>> from lowrank.nn.zoo import accuracy
    >>> accuracy(torch.nn.Identity(), (torch.eye(2), torch.tensor([0, 1])))
    1.0
    """
    return evaluate(model, data, metric="accuracy")


def mse(model, data):
    """Mean squared error: ``evaluate(model, data, metric="mse")``.

    Parameters
    ----------
    model : torch.nn.Module
        The model to score.
    data : (X, y) tuple of torch tensors
        Inputs and targets.

    Returns
    -------
    float
        Mean squared error over every entry.

    Examples
    --------
    >>> from lowrank.nn.zoo import mse
    >>> mse(torch.nn.Identity(), (torch.zeros(2, 1), torch.ones(2, 1)))
    1.0
    """
    return evaluate(model, data, metric="mse")
