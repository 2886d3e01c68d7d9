"""Reference CTR models, trainer and the synthetic click-log generator."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lowrank.ctr import DCNv2, DeepFM, MLPCTR, CTRTrainer, compress_afm, evaluate_ctr  # noqa: E402
from lowrank.datasets import synthetic_ctr  # noqa: E402


def test_synthetic_ctr_bayes_auc_and_rate():
    data = synthetic_ctr(20000, n_categorical=5, cardinality=50, rng=0)
    assert abs(data.labels.mean() - 0.25) < 0.02
    from sklearn.metrics import roc_auc_score

    # The teacher's probabilities beat any noisy version of themselves (they are Bayes optimal).
    noisy = data.probabilities + np.random.default_rng(1).normal(0, 0.2, len(data))
    assert data.bayes_auc > roc_auc_score(data.labels, noisy)
    assert (data.categorical < np.asarray(data.cardinalities)).all()
    # Zipf: the most popular id is far more frequent than the median one.
    counts = np.bincount(data.categorical[:, 0], minlength=50)
    assert counts[0] > 5 * np.median(counts)
    again = synthetic_ctr(20000, n_categorical=5, cardinality=50, rng=0)
    np.testing.assert_array_equal(again.labels, data.labels)


@pytest.mark.parametrize("cls", [MLPCTR, DeepFM, DCNv2])
def test_models_learn_and_compress(cls):
    data = synthetic_ctr(6000, n_categorical=4, cardinality=30, rng=0)
    train, test = data.split((0.8, 0.2), rng=0)
    torch.manual_seed(0)
    model = cls(data.cardinalities, embedding_dim=8, hidden=(32, 16))
    CTRTrainer(max_epochs=6, lr=5e-3, batch_size=512).fit(model, train, test)
    auc = evaluate_ctr(model, test)["auc"]
    assert auc > 0.62  # well above chance (0.5); the teacher's Bayes AUC bounds it from above
    assert auc <= data.bayes_auc + 0.02
    calib = (torch.as_tensor(train.dense), torch.as_tensor(train.categorical))
    small, report = compress_afm(model, calib, energy=0.999)
    assert abs(evaluate_ctr(small, test)["auc"] - auc) < 0.01


def test_trainer_bad_input():
    data = synthetic_ctr(100, n_categorical=2, cardinality=5, rng=0)
    model = MLPCTR(data.cardinalities, embedding_dim=2, hidden=(4,))
    with pytest.raises(ValueError, match="`lr`"):
        CTRTrainer(lr=-1).fit(model, data)
    with pytest.raises(ValueError, match="labels"):
        CTRTrainer().fit(model, (data.dense, data.categorical))
    with pytest.raises(ValueError, match="cardinalities"):
        MLPCTR([])


def test_loaders(tmp_path):
    from lowrank.datasets import load_avazu, load_criteo

    line = "1\t" + "\t".join(["3"] * 12 + [""]) + "\t" + "\t".join(["a1"] * 26) + "\n"
    (tmp_path / "criteo.txt").write_text(line * 12 + line.replace("a1", "b2", 1).replace("1\t", "0\t", 1))
    data = load_criteo(tmp_path / "criteo.txt", min_count=2)
    assert data.dense.shape == (13, 13) and data.categorical.shape == (13, 26)
    np.testing.assert_allclose(data.dense[0, 0], np.log1p(3.0), rtol=1e-6)
    assert data.categorical[0, 0] == 1 and data.categorical[-1, 0] == 0  # rare value shares id 0
    assert data.labels[-1] == 0
    (tmp_path / "avazu.csv").write_text("id,click,hour,C1\n1,0,14102100,a\n2,1,14102101,a\n")
    av = load_avazu(tmp_path / "avazu.csv", min_count=1)
    assert av.categorical.shape == (2, 2) and av.labels.tolist() == [0.0, 1.0]
    # fields hour-of-day ("00", "01") and C1 ("a", "a"); ids by frequency from 1 (ties in value order)
    assert av.categorical.tolist() == [[1, 1], [2, 1]] and av.cardinalities == [3, 2]
    assert av.dense.shape == (2, 0)
    with pytest.raises(ValueError, match="40 tab-separated"):
        (tmp_path / "bad.txt").write_text("1\t2\n")
        load_criteo(tmp_path / "bad.txt")


def test_deepfm_fm_term_is_the_sum_of_pairwise_field_interactions():
    torch.manual_seed(0)
    model = DeepFM([7, 5, 9], n_dense=2, embedding_dim=3, hidden=(4,)).double()
    with torch.no_grad():  # silence every term but the FM one
        for p in (model.head.weight, model.head.bias, model.dense_linear.weight, model.dense_linear.bias):
            p.zero_()
    dense = torch.randn(6, 2, dtype=torch.float64)
    cat = torch.stack([torch.randint(0, c, (6,)) for c in (7, 5, 9)], dim=1)
    # fields: the three embeddings and the projected dense features; sum over pairs i < j of <v_i, v_j>
    vectors = [model.embeddings[f].weight[cat[:, f]] for f in range(3)] + [model.dense_proj(dense)]
    expected = sum((vectors[i] * vectors[j]).sum(dim=1) for i in range(4) for j in range(i + 1, 4))
    with torch.no_grad():
        torch.testing.assert_close(model(dense, cat), expected, rtol=1e-12, atol=1e-12)
