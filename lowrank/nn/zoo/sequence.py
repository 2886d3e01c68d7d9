"""A tiny encoder transformer trained on a synthetic sequence task (sort or copy)."""

import dataclasses

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_choice, check_float, check_int
from lowrank.nn.zoo._task import ZooTask, cached_task
from lowrank.nn.zoo._train import IGNORE_INDEX, accuracy, fit_classifier, torch_generator
from lowrank.nn.zoo.models import TinyTransformer, seeded

torch = import_optional("torch", purpose="lowrank.nn.zoo")

__all__ = ["sequence_task", "sequence_data"]


def sequence_data(n, *, kind="sort", seq_len=12, vocab_size=10, generator=None):
    """Token sequences and their per-position targets.

    ``"sort"``: ``x`` is ``seq_len`` uniform tokens in ``[0, vocab_size)``, the target at every
    position is ``sorted(x)``. ``"copy"``: the input is ``x``, a separator token ``vocab_size`` and
    ``seq_len`` blank tokens ``vocab_size + 1``; the targets of the blank positions are ``x`` and
    the other positions are not scored (label ``-100``), so the model must move each token
    ``seq_len + 1`` places by attention.

    Parameters
    ----------
    n : int
        Number of sequences.
    kind : {"sort", "copy"}, default="sort"
    seq_len : int, default=12
        Tokens to sort or copy.
    vocab_size : int, default=10
        Distinct tokens.
    generator : torch.Generator, optional
        Draws the tokens.

    Returns
    -------
    tokens : torch.Tensor, int64, shape (n, seq_len) for sort, (n, 2 * seq_len + 1) for copy
    targets : torch.Tensor, int64, same shape (``-100`` where not scored)

    Examples
    --------
    >>> from lowrank.nn.zoo.sequence import sequence_data
    >>> x, y = sequence_data(2, seq_len=5, generator=torch.Generator().manual_seed(0))
    >>> bool((y == x.sort(dim=1).values).all())
    True
    """
    x = torch.randint(0, vocab_size, (n, seq_len), generator=generator)
    if kind == "sort":
        return x, x.sort(dim=1).values
    marks = torch.full((n, 1), vocab_size)
    blanks = torch.full((n, seq_len), vocab_size + 1)
    unscored = torch.full((n, seq_len + 1), IGNORE_INDEX)
    return torch.cat([x, marks, blanks], dim=1), torch.cat([unscored, x], dim=1)


@dataclasses.dataclass(frozen=True)
class _SequenceOptions:
    seed: int
    kind: str
    seq_len: int
    vocab_size: int
    attention: str
    n_train: int
    n_test: int
    steps: int
    lr: float


def _iv(seed, kind, seq_len, vocab_size, attention, n_train, n_test, steps, lr):
    return _SequenceOptions(
        seed=check_int(seed, "seed", low=0),
        kind=check_choice(kind, "kind", ("sort", "copy")),
        seq_len=check_int(seq_len, "seq_len", low=2),
        vocab_size=check_int(vocab_size, "vocab_size", low=2),
        attention=check_choice(attention, "attention", ("separate", "torch")),
        n_train=check_int(n_train, "n_train", low=1),
        n_test=check_int(n_test, "n_test", low=1),
        steps=check_int(steps, "steps", low=1),
        lr=check_float(lr, "lr", low=0, low_inclusive=False),
    )


def sequence_task(seed=0, *, kind="sort", seq_len=12, vocab_size=10, attention="separate", n_train=8000,
                  n_test=1000, steps=400, lr=3e-3):
    """A 2-layer, d_model 64, 4-head encoder transformer trained to sort (or copy) token sequences.

    :class:`~lowrank.nn.zoo.TinyTransformer` (pre-norm blocks ``blocks[i]`` with
    ``attn`` and ``mlp.fc1``/``mlp.fc2`` (256 wide, GELU), learned positions, per-position ``head``)
    trained with Adam (batch 64) on ``n_train`` sequences of :func:`~lowrank.nn.zoo.sequence_data`.

    Parameters
    ----------
    seed : int, default=0
        Seeds the sequences, the initialization and the batch order.
    kind : {"sort", "copy"}, default="sort"
        The task; see :func:`~lowrank.nn.zoo.sequence_data`.
    seq_len : int, default=12
        Tokens to sort or copy (longer sequences need more ``steps``).
    vocab_size : int, default=10
        Distinct tokens (the copy task adds a separator and a blank).
    attention : {"separate", "torch"}, default="separate"
        The zoo's :class:`~lowrank.nn.zoo.SelfAttention` (``q``, ``k``, ``v``, ``o`` Linears)
        or ``torch.nn.MultiheadAttention``.
    n_train, n_test : int, default=8000, 1000
        Training and test sequences.
    steps : int, default=400
        Adam steps.
    lr : float, default=3e-3
        Adam learning rate.

    Returns
    -------
    ZooTask
        ``metric = accuracy`` over the scored tokens (``metric_name = "token_accuracy"``), inputs are
        int64 token ids. ``info``: ``base_metric`` (test token accuracy, >= 0.97 with the defaults),
        ``targets`` (every attention and MLP Linear), ``attention`` (the attention modules' names),
        ``mlp`` (the blocks' ``mlp`` names), ``vocab_size``, ``seq_len``, ``kind``.

    Raises
    ------
    TypeError, ValueError
        If an option is of the wrong type or out of range.

    Examples
    --------
    >>> from lowrank.nn.zoo import sequence_task
    >>> task = sequence_task(seed=0, n_train=64, n_test=8, steps=2)
    >>> task.model(task.test[0]).shape
    torch.Size([8, 12, 10])
    """
    options = _iv(seed, kind, seq_len, vocab_size, attention, n_train, n_test, steps, lr)
    return cached_task(("sequence_task", options), lambda: _sequence_task(options))


def _sequence_task(o):
    gen = torch_generator(o.seed)
    X, y = sequence_data(o.n_train + o.n_test, kind=o.kind, seq_len=o.seq_len, vocab_size=o.vocab_size,
                         generator=gen)
    train, test = (X[:o.n_train], y[:o.n_train]), (X[o.n_train:], y[o.n_train:])
    vocab = o.vocab_size + (2 if o.kind == "copy" else 0)
    model = seeded(lambda: TinyTransformer(vocab, X.shape[1], o.vocab_size, attention=o.attention), gen)
    fit_classifier(model, train, steps=o.steps, lr=o.lr, batch_size=64, rng=gen)
    attention = [f"blocks.{i}.attn" for i in range(len(model.blocks))]
    mlp = [f"blocks.{i}.mlp" for i in range(len(model.blocks))]
    if o.attention == "separate":
        attn_linears = [f"{a}.{p}" for a in attention for p in "qkvo"]
    else:
        attn_linears = [f"{a}.out_proj" for a in attention]
    info = {
        "base_metric": accuracy(model, test),
        "targets": attn_linears + [f"{m}.{fc}" for m in mlp for fc in ("fc1", "fc2")],
        "attention": attention,
        "mlp": mlp,
        "head": "head",
        "kind": o.kind,
        "seq_len": o.seq_len,
        "vocab_size": o.vocab_size,
    }
    return ZooTask(model, train, test, accuracy, "sequence_task", "token_accuracy", True, info)
