"""MIG and DCI against hand-computed values, scikit-learn / scipy references and planted codes."""

import math

import numpy as np
import pytest
import scipy.stats
from sklearn.metrics import mutual_info_score

from lowrank.vision.metrics import dci, dci_from_importance, mig, mutual_information_matrix


def _balanced_factors(k=10):
    a = np.tile(np.repeat(np.arange(4), 2), k)  # 4 values
    b = np.tile(np.arange(2), 4 * k)  # 2 values, independent of a in this design
    return a, b


def test_mutual_information_hand_computed():
    x = np.array([0.0, 0.0, 1.0, 1.0])
    y = np.array([0, 1, 1, 1])
    # p(0,0)=1/4, p(0,1)=1/4, p(1,1)=1/2; p_x=(1/2,1/2), p_y=(1/4,3/4)
    expected = 0.25 * math.log(2) + 0.25 * math.log(2 / 3) + 0.5 * math.log(4 / 3)
    assert mutual_information_matrix(x[:, None], y)[0, 0] == pytest.approx(expected, abs=1e-12)


def test_mutual_information_matches_sklearn_on_binned_codes(rng):
    codes = rng.standard_normal((500, 3))
    factors = np.stack([(codes[:, 0] > 0).astype(int) + rng.integers(0, 2, 500), rng.integers(0, 5, 500)], axis=1)
    mi = mutual_information_matrix(codes, factors, n_bins=10)
    for i in range(3):
        edges = np.histogram(codes[:, i], bins=10)[1]
        binned = np.digitize(codes[:, i], edges[:-1])
        for j in range(2):
            assert mi[i, j] == pytest.approx(mutual_info_score(binned, factors[:, j]), abs=1e-12)


def test_mig_hand_computed():
    a, b = _balanced_factors()
    codes = np.stack([a, a // 2, b], axis=1).astype(float)
    # factor a: I(c0;a) = log 4, I(c1;a) = log 2, I(c2;a) = 0 -> gap (log4 - log2)/log4 = 1/2
    # factor b: I(c2;b) = log 2 = H(b), others 0 -> gap 1
    assert mig(codes, np.stack([a, b], axis=1)) == pytest.approx(0.75, abs=1e-12)


def test_mig_is_zero_for_duplicated_codes_and_one_for_perfect():
    a, b = _balanced_factors()
    factors = np.stack([a, b], axis=1)
    assert mig(np.stack([a, a, b, b], axis=1).astype(float), factors) == pytest.approx(0.0, abs=1e-12)
    assert mig(np.stack([a, b], axis=1) + 0.5, factors) == pytest.approx(1.0, abs=1e-12)


def test_mig_skips_constant_factors():
    a, b = _balanced_factors()
    factors = np.stack([a, np.zeros_like(a)], axis=1)
    codes = np.stack([a, b], axis=1).astype(float)
    assert mig(codes, factors) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="more than one value"):
        mig(codes, np.zeros((a.size, 1), dtype=int))


def test_dci_from_importance_hand_computed():
    R = np.array([[0.5, 0.0], [0.5, 0.0], [0.0, 1.0]])
    d, c, i, imp = dci_from_importance(R, informativeness=0.9)
    assert d == pytest.approx(1.0, abs=1e-12)
    # factor 0 is split evenly over 3 codes' two: 1 - H_3(1/2, 1/2, 0) = 1 - log 2 / log 3; factor 1 complete
    assert c == pytest.approx(0.5 * (1 - math.log(2) / math.log(3)) + 0.5, abs=1e-12)
    assert i == 0.9 and np.array_equal(imp, R)
    d2, c2, _, _ = dci_from_importance([[1.0, 1.0], [0.0, 0.0]])
    assert d2 == pytest.approx(0.0, abs=1e-12) and c2 == pytest.approx(1.0, abs=1e-12)


def test_dci_from_importance_matches_scipy_entropy_formula(rng):
    R = rng.random((5, 3))
    # disentanglement_lib's formulas, written with scipy.stats.entropy
    per_code = 1 - scipy.stats.entropy(R.T, base=3)
    per_factor = 1 - scipy.stats.entropy(R, base=5)
    d_ref = np.sum(per_code * R.sum(1) / R.sum())
    c_ref = np.sum(per_factor * R.sum(0) / R.sum())
    d, c, _, _ = dci_from_importance(R)
    assert d == pytest.approx(d_ref, abs=1e-12) and c == pytest.approx(c_ref, abs=1e-12)


@pytest.mark.parametrize("model", ["random_forest", "lasso"])
def test_dci_planted_disentangled_vs_mixed(rng, model):
    n = 800
    factors = rng.integers(0, 4, size=(n, 2))
    noise = 0.05 * rng.standard_normal((n, 2))
    good = np.column_stack([factors + noise, rng.standard_normal(n)])  # two aligned codes + one nuisance
    res = dci(good, factors, model=model, rng=0)
    assert res.disentanglement > 0.85 and res.completeness > 0.85 and res.informativeness > 0.95
    assert res.importance.shape == (3, 2)
    np.testing.assert_allclose(res.importance.sum(0), 1.0)
    mixed = np.column_stack([factors[:, 0] + factors[:, 1], factors[:, 0] - factors[:, 1]]) + noise
    res_mixed = dci(mixed, factors, model=model, rng=0)
    assert res_mixed.disentanglement < res.disentanglement - 0.3


def test_dci_is_deterministic_for_a_seed(rng):
    factors = rng.integers(0, 3, size=(300, 2))
    codes = factors + 0.3 * rng.standard_normal((300, 2))
    assert dci(codes, factors, rng=4)[:3] == dci(codes, factors, rng=4)[:3]


@pytest.mark.parametrize(
    "call,err,match",
    [
        (lambda: mig(np.ones((5, 1)), np.arange(5)), ValueError, "at least 2 columns"),
        (lambda: mig(np.ones(5), np.arange(5)), ValueError, "2-D"),
        (lambda: mig(np.ones((5, 2)), np.arange(4)), ValueError, "rows"),
        (lambda: mig(np.full((5, 2), np.nan), np.arange(5)), ValueError, "NaN"),
        (lambda: mig(np.ones((5, 2)), np.linspace(0, 1, 5)), TypeError, "integer"),
        (lambda: mig(np.ones((5, 2)), np.arange(5), n_bins=1), ValueError, "n_bins"),
        (lambda: dci(np.ones((5, 2)), np.arange(5), model="svm"), ValueError, "model"),
        (lambda: dci(np.ones((5, 2)), np.arange(5), test_size=1.0), ValueError, "test_size"),
        (lambda: dci_from_importance([[-1.0]]), ValueError, "non-negative"),
        (lambda: dci_from_importance(np.ones(3)), ValueError, "2-D"),
    ],
)
def test_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_traversal_importance_hand_computed():
    from lowrank.vision.metrics import traversal_importance

    lab = np.zeros((2, 2, 3, 2), dtype=int)
    lab[0, 0, 0, 0] = 1  # direction 0, base 0: factor 0 differs at step 0 (reference = step 1)
    lab[0, 1, :, 0] = 5  # constant along the traversal: no flip
    lab[1, :, 2, 1] = 3  # direction 1: factor 1 flips at step 2 for both bases
    R = traversal_importance(lab)
    np.testing.assert_allclose(R, [[1 / 4, 0.0], [0.0, 2 / 4]])
    np.testing.assert_allclose(traversal_importance(lab, reference_step=0), [[2 / 4, 0.0], [0.0, 2 / 4]])
    d, c, _, _ = dci_from_importance(R)
    assert d == pytest.approx(1.0) and c == pytest.approx(1.0)


def test_traversal_importance_bad_input():
    from lowrank.vision.metrics import traversal_importance

    with pytest.raises(TypeError):
        traversal_importance(np.zeros((1, 1, 3, 1)))
    with pytest.raises(ValueError):
        traversal_importance(np.zeros((1, 1, 1, 1), dtype=int))
    with pytest.raises(ValueError):
        traversal_importance(np.zeros((1, 1, 3, 1), dtype=int), reference_step=3)
