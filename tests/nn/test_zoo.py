"""The model zoo: determinism for a seed, stated base accuracies, data consistent with its source."""

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn.datasets import load_digits  # noqa: E402

from lowrank.nn import zoo  # noqa: E402
from lowrank.nn.zoo import accuracy, fit_classifier  # noqa: E402


def _state_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _data_equal(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def _fresh(builder, *args, **kwargs):
    """Build twice with the memo cleared in between: both are genuine trainings."""
    zoo.clear_cache()
    first = builder(*args, **kwargs)
    zoo.clear_cache()
    second = builder(*args, **kwargs)
    return first, second


def _assert_identical(first, second):
    assert _state_equal(first.model, second.model)
    assert _data_equal(first.train, second.train)
    assert _data_equal(first.test, second.test)
    assert first.info["base_metric"] == second.info["base_metric"]


def _digit_labels(X):
    """The sklearn label of every row of X, found by exact pixel match (an independent lookup)."""
    data, target = load_digits(return_X_y=True)
    index = {tuple((row / 16.0).astype(np.float32).tolist()): label for row, label in zip(data, target)}
    return np.array([index[tuple(r.tolist())] for r in X.numpy()])


# ---------------------------------------------------------------------------- digits_transfer


def test_digits_transfer_deterministic_and_leaves_global_rng_alone():
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    first, second = _fresh(zoo.digits_transfer, seed=3)
    _assert_identical(first, second)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state)
    other = zoo.digits_transfer(seed=4)
    assert not torch.equal(other.model.fc1.weight, first.model.fc1.weight)


def test_digits_transfer_pretrained_on_0_to_4():
    task = zoo.digits_transfer(seed=0)
    Xs, ys = task.info["source_test"]
    assert set(_digit_labels(Xs)) <= {0, 1, 2, 3, 4}
    assert np.array_equal(_digit_labels(Xs), ys.numpy())
    base = copy.deepcopy(task.model)
    base.head = task.info["source_head"]
    assert accuracy(base, (Xs, ys)) == pytest.approx(task.info["base_metric"])
    assert task.info["base_metric"] >= 0.98


def test_digits_transfer_split_holds_5_to_9_only():
    model, train, test, metric = zoo.digits_transfer(seed=1)
    (Xtr, ytr), (Xte, yte) = train, test
    assert Xtr.dtype == torch.float32 and ytr.dtype == torch.int64
    assert np.array_equal(_digit_labels(Xtr), ytr.numpy() + 5)
    assert np.array_equal(_digit_labels(Xte), yte.numpy() + 5)
    # 100 stratified training images, every other image of 5-9 in test, none in both
    assert np.bincount(ytr.numpy()).tolist() == [20] * 5
    _, target = load_digits(return_X_y=True)
    assert len(Xtr) + len(Xte) == int((target >= 5).sum())
    rows = {tuple(r.tolist()) for r in Xtr.numpy()}
    assert not any(tuple(r.tolist()) in rows for r in Xte.numpy())
    assert model.head.out_features == 5 and model(Xte).shape == (len(Xte), 5)
    assert metric is accuracy


def test_digits_transfer_head_only_calibration():
    """Head-only training reaches the calibration floor; the fresh head starts at chance."""
    task = zoo.digits_transfer(seed=0)
    model = copy.deepcopy(task.model)
    assert task.score(model) < 0.5
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith("head")
    fit_classifier(model, task.train, epochs=60, lr=1e-2, rng=0)
    assert task.score(model) >= 0.7
    assert torch.equal(model.fc1.weight, task.model.fc1.weight)


def test_memo_returns_independent_copies():
    a = zoo.digits_transfer(seed=0)
    with torch.no_grad():
        a.model.fc1.weight.zero_()
    a.train[0].zero_()
    b = zoo.digits_transfer(seed=0)
    assert b.model.fc1.weight.abs().sum() > 0 and b.train[0].abs().sum() > 0


def test_task_unpacks_like_a_tuple():
    task = zoo.digits_transfer(seed=0)
    model, train, test, metric = task
    assert (task[0], task[1], task[2], task[3]) == (model, train, test, metric) and len(task) == 4
    assert task.name == "digits_transfer" and task.metric_name == "accuracy" and task.higher_is_better
    assert task.info["targets"] == ["fc1", "fc2"] and task.info["head"] == "head"
    with pytest.raises(AttributeError):
        task.name = "other"


@pytest.mark.parametrize("kwargs, error", [
    ({"seed": -1}, ValueError), ({"seed": 1.5}, TypeError), ({"n_train": 2}, ValueError),
    ({"n_train": 1000}, ValueError), ({"width": 0}, ValueError),
])
def test_digits_transfer_rejects_bad_options(kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        zoo.digits_transfer(**kwargs)


# --------------------------------------------------------------------------- digits_classifier


def test_digits_classifier_accuracy_and_split():
    task = zoo.digits_classifier(seed=0)
    (Xtr, ytr), (Xte, yte) = task.train, task.test
    assert np.array_equal(_digit_labels(Xte), yte.numpy())
    assert len(Xtr) == 1347 and len(Xte) == 450
    assert task.model.head.out_features == 10
    assert task.score() == pytest.approx(task.info["base_metric"])
    assert task.info["base_metric"] >= 0.96


def test_digits_classifier_deterministic():
    _assert_identical(*_fresh(zoo.digits_classifier, seed=2))


# ------------------------------------------------------------------------------ training loop


def test_fit_is_deterministic_and_needs_one_budget():
    X = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    y = (X[:, 0] > 0).long()
    models = [zoo.models.seeded(lambda: torch.nn.Linear(3, 2), zoo.torch_generator(5)) for _ in range(2)]
    losses = [fit_classifier(m, (X, y), steps=20, rng=1) for m in models]
    assert losses[0] == losses[1] and _state_equal(*models)
    with pytest.raises(ValueError, match="exactly one"):
        fit_classifier(models[0], (X, y), rng=0)
    with pytest.raises(ValueError, match="same non-zero"):
        fit_classifier(models[0], (X, y[:3]), steps=1)


def test_evaluate_matches_a_direct_count():
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    y = torch.tensor([0, 0, -100])
    assert zoo.evaluate(torch.nn.Identity(), (X, y)) == 0.5  # the -100 row is not scored
    assert zoo.mse(torch.nn.Identity(), (X, X + 1)) == 1.0
