"""lowrank.nn.metrics against exact SVD values, analytic spectra and planted structure."""

import numpy as np
import pytest
import scipy.linalg

torch = pytest.importorskip("torch")

from lowrank.nn.metrics import effective_rank, hill_alpha, matrix_nuclear_norm, spectrum_summary  # noqa: E402


def _normalized_reference(H):
    A = H - H.mean(axis=0)
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def test_orthogonal_columns_give_the_exact_nuclear_norm():
    # Hadamard columns other than the constant one: zero mean, orthogonal, rows of equal norm
    Hd = scipy.linalg.hadamard(64)[:, 1:17].astype(float) * np.arange(1, 17)
    approx = matrix_nuclear_norm(Hd)
    exact = np.linalg.svd(_normalized_reference(Hd), compute_uv=False).sum()
    assert approx == pytest.approx(exact, rel=1e-12)
    assert matrix_nuclear_norm(Hd, exact=True) == pytest.approx(exact, rel=1e-12)


@pytest.mark.parametrize("kind", ["random", "planted"])
def test_documented_bound_and_gap(kind):
    rng = np.random.default_rng(0)
    n, d = 500, 40
    H = rng.standard_normal((n, d)) if kind == "random" else rng.standard_normal((n, 3)) @ rng.standard_normal((3, d))
    approx, exact = matrix_nuclear_norm(H), matrix_nuclear_norm(H, exact=True)
    assert exact == pytest.approx(np.linalg.svd(_normalized_reference(H), compute_uv=False).sum(), rel=1e-10)
    assert exact * (1 - 1e-12) <= approx <= np.sqrt(d) * exact
    gap = approx / exact - 1
    if kind == "random":   # near-uncorrelated features: a small gap
        assert gap < 0.25
    else:                  # rank-3 features: most of the sqrt(d) - 1 slack is used
        assert gap > 1.0


def test_wide_matrix_sums_the_top_n_columns():
    rng = np.random.default_rng(1)
    H = rng.standard_normal((10, 30))
    A = _normalized_reference(H)
    norms = np.sort(np.linalg.norm(A, axis=0))[::-1]
    assert matrix_nuclear_norm(H) == pytest.approx(norms[:10].sum(), rel=1e-12)
    exact = matrix_nuclear_norm(H, exact=True)
    assert matrix_nuclear_norm(H) >= (10 / 30) * exact


def test_torch_input_and_bad_input():
    H = torch.randn(20, 5, dtype=torch.float64)
    assert matrix_nuclear_norm(H) == pytest.approx(matrix_nuclear_norm(H.numpy()), rel=1e-12)
    with pytest.raises(ValueError, match="H"):
        matrix_nuclear_norm(np.array([[1.0, np.nan], [0.0, 1.0]]))


def test_effective_rank_analytic():
    assert effective_rank(np.diag([3.0, 3.0, 3.0, 3.0, 0.0])) == pytest.approx(4.0)
    assert effective_rank(np.outer(np.arange(1.0, 5), np.ones(3))) == pytest.approx(1.0)
    s = np.array([2.0, 1.0, 1.0])
    p = s / s.sum()
    assert effective_rank(s, singular_values=True) == pytest.approx(np.exp(-(p * np.log(p)).sum()))
    assert effective_rank(np.zeros((3, 3))) == 0.0
    with pytest.raises(ValueError, match="singular values"):
        effective_rank(np.array([1.0, -1.0]), singular_values=True)


def test_hill_alpha_recovers_a_pareto_exponent():
    alpha = 3.0
    u = (np.arange(1, 20001) - 0.5) / 20000
    x = (1 - u) ** (-1 / (alpha - 1))   # Pareto quantiles: density ~ x^-alpha
    assert hill_alpha(x) == pytest.approx(alpha, rel=0.05)


def test_spectrum_summary_on_planted_layers():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(20, 30), torch.nn.ReLU(), torch.nn.Linear(30, 10))
    U, _ = torch.linalg.qr(torch.randn(30, 20))
    V, _ = torch.linalg.qr(torch.randn(20, 20))
    s = torch.tensor([1.0] * 5 + [0.01] * 15)
    with torch.no_grad():
        model[0].weight.copy_(U * s @ V.T)
    rows = spectrum_summary(model, threshold=0.5)
    assert [r.name for r in rows] == ["0", "2"]
    assert rows[0].shape == (30, 20) and rows[0].rank_above == 5
    sn = s.double().numpy()
    assert rows[0].stable_rank == pytest.approx((sn**2).sum(), rel=1e-5)
    assert rows[0].effective_rank == pytest.approx(effective_rank(sn, singular_values=True), rel=1e-5)
    with pytest.raises(ValueError, match="threshold"):
        spectrum_summary(model, threshold=0.0)
