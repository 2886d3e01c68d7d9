"""Bad sizes and bad data at the boundary of the CTR models and trainer: clear errors naming the argument."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lowrank.ctr import DCNv2, DeepFM, MLPCTR, CTRTrainer, evaluate_ctr  # noqa: E402
from lowrank.ctr.training import predict_proba  # noqa: E402
from lowrank.datasets import synthetic_ctr  # noqa: E402

MODELS = [MLPCTR, DeepFM, DCNv2]


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("kwargs, exc, match", [
    ({"cardinalities": []}, ValueError, "cardinalities"),
    ({"cardinalities": [10, 0]}, ValueError, "cardinalities"),
    ({"cardinalities": [10, -3]}, ValueError, "cardinalities"),
    ({"cardinalities": [10, 2.5]}, TypeError, "cardinalities"),
    ({"cardinalities": "abc"}, ValueError, "cardinalities"),
    ({"embedding_dim": 0}, ValueError, "embedding_dim"),
    ({"embedding_dim": 3.0}, TypeError, "embedding_dim"),
    ({"n_dense": -1}, ValueError, "n_dense"),
    ({"hidden": (8, 0)}, ValueError, "hidden"),
    ({"hidden": (8, 2.5)}, TypeError, "hidden"),
    ({"hidden": 8}, TypeError, "hidden"),
    ({"dropout": 1.0}, ValueError, "dropout"),
    ({"dropout": -0.1}, ValueError, "dropout"),
])
def test_constructors_reject_bad_sizes(cls, kwargs, exc, match):
    args = {"cardinalities": [10, 20], "n_dense": 3, "embedding_dim": 4, "hidden": (8,)}
    args.update(kwargs)
    with pytest.raises(exc, match=f"`{match}`"):
        cls(**args)


def test_dcnv2_rejects_negative_cross_layers():
    with pytest.raises(ValueError, match="`n_cross`"):
        DCNv2([10], n_dense=2, embedding_dim=4, n_cross=-1, hidden=(8,))


@pytest.fixture(scope="module")
def data():
    return synthetic_ctr(400, n_categorical=3, rng=0)


@pytest.fixture
def model(data):
    torch.manual_seed(0)
    return MLPCTR(data.cardinalities, n_dense=data.dense.shape[1], embedding_dim=4, hidden=(8,))


def _with(data, dense=None, labels=None):
    return (data.dense if dense is None else dense, data.categorical, data.labels if labels is None else labels)


def test_bad_labels_and_features_are_errors_before_training(data, model):
    before = [p.detach().clone() for p in model.parameters()]
    nan_labels = np.asarray(data.labels, dtype=np.float32).copy()
    nan_labels[3] = np.nan
    two = np.asarray(data.labels, dtype=np.float32).copy()
    two[0] = 2.0
    nan_dense = np.asarray(data.dense, dtype=np.float32).copy()
    nan_dense[1, 0] = np.inf
    trainer = CTRTrainer(max_epochs=1, batch_size=64)
    for bad, match in [(_with(data, labels=nan_labels), "labels must be 0 or 1"),
                       (_with(data, labels=two), "labels must be 0 or 1"),
                       (_with(data, labels=np.zeros(5)), "labels must have shape"),
                       (_with(data, dense=nan_dense), "dense features contain NaN or infinite")]:
        with pytest.raises(ValueError, match=f"`train`: {match}"):
            trainer.fit(model, bad)
        with pytest.raises(ValueError, match=f"`data`: {match}"):
            evaluate_ctr(model, bad)
    with pytest.raises(ValueError, match="`valid`: labels must be 0 or 1"):
        trainer.fit(model, data, valid=_with(data, labels=two))
    # nothing was trained by any of the rejected calls
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with pytest.raises(ValueError, match="`data`: dense features contain NaN"):
        predict_proba(model, _with(data, dense=nan_dense))
    with pytest.raises(TypeError, match="categorical ids must be integers"):
        predict_proba(model, (data.dense, np.asarray(data.categorical, dtype=float)))
    with pytest.raises(TypeError, match="`data` must be a CTRData"):
        predict_proba(model, data.dense)


def test_valid_data_still_trains(data, model):
    CTRTrainer(max_epochs=2, batch_size=64, lr=1e-2).fit(model, data)
    auc = evaluate_ctr(model, data)["auc"]
    from sklearn.metrics import roc_auc_score
    assert auc == pytest.approx(roc_auc_score(data.labels, predict_proba(model, data)))
