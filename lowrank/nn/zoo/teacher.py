"""Teacher-student regression: a seeded teacher MLP with planted heavy-tailed singular values."""

import dataclasses

import numpy as np

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_float, check_int
from lowrank.nn.zoo._task import ZooTask, cached_task
from lowrank.nn.zoo._train import mse, torch_generator
from lowrank.nn.zoo.models import MLP, seeded

torch = import_optional("torch", purpose="lowrank.nn.zoo")

__all__ = ["teacher_regression"]


@dataclasses.dataclass(frozen=True)
class _TeacherOptions:
    seed: int
    sizes: tuple
    tail_index: float
    noise: float
    n_train: int
    n_test: int


def _orthonormal(rows, cols, gen):
    q, r = np.linalg.qr(gen.standard_normal((rows, cols)))
    return q * np.sign(np.diag(r))  # Haar-distributed columns (fixes QR's sign freedom)


def _planted_weight(out, inp, tail_index, input_moment, gen):
    """``U diag(s) V^T`` with Pareto(tail_index) singular values, scaled for unit pre-activations."""
    k = min(out, inp)
    s = np.sort(1.0 + gen.pareto(tail_index, k))[::-1]
    # E||W x||^2 = input_moment * ||W||_F^2 for isotropic x: aim at unit variance per output unit
    s *= np.sqrt(out / (input_moment * np.sum(s**2)))
    return _orthonormal(out, k, gen) @ np.diag(s) @ _orthonormal(inp, k, gen).T, s


def teacher_regression(seed=0, *, sizes=(64, 256, 256, 16), tail_index=1.5, noise=0.0, n_train=10000,
                       n_test=2000):
    """Regress the outputs of a teacher MLP whose weights have planted heavy-tailed spectra.

    The teacher is an :class:`~lowrank.nn.zoo.MLP` of the given ``sizes`` (ReLU, zero
    hidden biases) with every weight ``U diag(s) V^T``: Haar-random orthonormal ``U``, ``V`` and singular
    values ``s = 1 + Pareto(tail_index)`` sorted (a power-law tail: a few large directions over a
    flat bulk), scaled so each layer keeps unit pre-activation variance; the last layer is then
    scaled, and given a bias, so that the targets have zero mean and unit variance (pooled over the
    outputs, on the generated inputs). Inputs are standard normal; targets are the
    teacher's outputs plus ``noise`` times standard normal noise. ``model`` is a *fresh* student
    with the teacher's architecture (seeded, untrained): the low-rank training methods train it from
    scratch.

    Parameters
    ----------
    seed : int, default=0
        Seeds the teacher, the inputs, the noise and the student's initialization.
    sizes : tuple of int, default=(64, 256, 256, 16)
        Widths from input to output (at least two).
    tail_index : float, default=1.5
        Pareto tail index of the singular values (smaller: heavier tail).
    noise : float, default=0.0
        Standard deviation of the target noise.
    n_train, n_test : int, default=10000, 2000
        Training and test examples.

    Returns
    -------
    ZooTask
        ``metric = mse`` (lower is better). ``info``: ``teacher`` (the teacher MLP),
        ``spectra`` (the planted singular values of ``fc1``, ``fc2``, ..., ``head``, after scaling),
        ``base_metric`` (the untrained student's test MSE), ``constant_mse`` (test MSE of
        predicting the training mean, ~1), ``targets`` (the student's Linear layers), ``n_params``.

    Raises
    ------
    TypeError, ValueError
        If an option is of the wrong type or out of range.

    Examples
    --------
    >>> from lowrank.nn.zoo import teacher_regression
    >>> task = teacher_regression(seed=0, n_train=100, n_test=50)
    >>> tuple(task.train[1].shape), task.metric_name, task.higher_is_better
    ((100, 16), 'mse', False)
    """
    sizes = tuple(check_int(s, "sizes", low=1) for s in sizes)
    if len(sizes) < 2:
        raise ValueError(f"`sizes` must hold at least an input and an output width, got {sizes}")
    options = _TeacherOptions(check_int(seed, "seed", low=0), sizes,
                              check_float(tail_index, "tail_index", low=0, low_inclusive=False),
                              check_float(noise, "noise", low=0), check_int(n_train, "n_train", low=1),
                              check_int(n_test, "n_test", low=1))
    return cached_task(("teacher_regression", options), lambda: _teacher_regression(options))


def _teacher_regression(o):
    gen = np.random.default_rng(o.seed)
    torch_gen = torch_generator(o.seed)
    n_in, *hidden, n_out = o.sizes
    teacher = seeded(lambda: MLP(n_in, hidden, n_out), torch_gen)
    layers = [getattr(teacher, f"fc{i}") for i in range(1, len(hidden) + 1)] + [teacher.head]
    X = gen.standard_normal((o.n_train + o.n_test, n_in)).astype(np.float32)
    spectra = []
    with torch.no_grad():
        for i, layer in enumerate(layers):
            # inputs of the first layer are N(0, 1); after a ReLU of a unit-variance unit, 1/2
            W, s = _planted_weight(layer.out_features, layer.in_features, o.tail_index, 1.0 if i == 0 else 0.5,
                                   gen)
            layer.weight.copy_(torch.from_numpy(W))
            layer.bias.zero_()
            spectra.append(s)
        clean = teacher(torch.from_numpy(X)).double()
        # zero-mean, unit-variance targets (pooled over outputs), so a constant predictor scores ~1
        scale = float(clean.var(0).mean().sqrt())
        layers[-1].weight.div_(scale)
        layers[-1].bias.copy_(-clean.mean(0) / scale)
        spectra[-1] = spectra[-1] / scale
        clean = teacher(torch.from_numpy(X))
    y = clean + o.noise * torch.from_numpy(gen.standard_normal(clean.shape).astype(np.float32))
    X = torch.from_numpy(X)
    train, test = (X[:o.n_train], y[:o.n_train]), (X[o.n_train:], y[o.n_train:])
    student = seeded(lambda: MLP(n_in, hidden, n_out), torch_gen)
    names = [f"fc{i}" for i in range(1, len(hidden) + 1)] + ["head"]
    info = {
        "teacher": teacher,
        "spectra": spectra,
        "base_metric": mse(student, test),
        "constant_mse": float(((test[1] - train[1].mean(0)) ** 2).mean()),
        "targets": names,
        "n_params": sum(p.numel() for p in student.parameters()),
    }
    return ZooTask(student, train, test, mse, "teacher_regression", "mse", False, info)
