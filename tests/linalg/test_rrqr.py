"""Pivoted and strong RRQR, checked on random and adversarial (Kahan) matrices."""

import numpy as np
import pytest
import scipy.linalg

from lowrank.linalg import rrqr, strong_rrqr_bounds


def kahan(n, c=0.285):
    """Kahan's matrix: column pivoting leaves it unpivoted, yet its last singular value is tiny."""
    s = np.sqrt(1 - c**2)
    K = np.triu(-c * np.ones((n, n)), 1) + np.eye(n)
    # Tiny perturbation of the diagonal so LAPACK's pivoting keeps the natural order (the known
    # failure case of plain column pivoting).
    return np.diag(s ** np.arange(n)) @ K @ np.diag(1 - 1e-10 * np.arange(n))


def _full_R(A, perm):
    return scipy.linalg.qr(A[:, perm], mode="economic")[1]


@pytest.mark.parametrize("k", [5, 20, 40])
def test_strong_rrqr_bounds_on_kahan(k):
    A = kahan(60)
    Q, R, perm = rrqr(A, k, strong=True, f=1.2)
    w, g = strong_rrqr_bounds(_full_R(A, perm), k)
    assert w <= 1.2 + 1e-9 and g <= 1.2 + 1e-9
    np.testing.assert_allclose(A[:, perm][:, :k], Q @ R[:, :k], atol=1e-10)


def test_strong_rrqr_improves_plain_pivoting_on_kahan():
    A = kahan(60)
    k = 59
    _, R_plain, perm_plain = rrqr(A, k)
    w_plain, g_plain = strong_rrqr_bounds(_full_R(A, perm_plain), k)
    _, R, perm = rrqr(A, k, strong=True, f=1.2)
    w, g = strong_rrqr_bounds(_full_R(A, perm), k)
    assert max(w_plain, g_plain) > 1.2  # plain pivoting violates the bound here
    assert max(w, g) <= 1.2 + 1e-9
    # The rank-revealing payoff: sigma_min(R11) of the strong factorization is close to sigma_k(A).
    sk = np.linalg.svd(A, compute_uv=False)[k - 1]
    smin = np.linalg.svd(R[:, :k], compute_uv=False)[-1]
    assert smin >= sk / np.sqrt(1 + 1.2**2 * k * (60 - k))


def test_factorization_and_permutation():
    A = np.random.default_rng(0).standard_normal((30, 20))
    Q, R, perm = rrqr(A)
    assert sorted(perm) == list(range(20))
    np.testing.assert_allclose(Q @ R, A[:, perm], atol=1e-12)
    np.testing.assert_allclose(Q.T @ Q, np.eye(20), atol=1e-12)
    assert np.all(np.diff(np.abs(np.diag(R))) <= 1e-12)


def test_tol_finds_numerical_rank():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((40, 4)) @ rng.standard_normal((4, 25))
    Q, R, perm = rrqr(A, tol=1e-10)
    assert Q.shape == (40, 4) and R.shape == (4, 25)
    np.testing.assert_allclose(Q @ R, A[:, perm], atol=1e-10)


def test_wide_matrix_band_selection_shape():
    V3t = np.random.default_rng(2).standard_normal((3, 31))
    Q, R, perm = rrqr(V3t, 3, strong=True)
    w, g = strong_rrqr_bounds(_full_R(V3t, perm), 3)
    assert w <= 1.2 + 1e-9 and g == 0.0


@pytest.mark.parametrize(
    "kwargs, err, msg",
    [
        ({"rank": 0}, ValueError, "rank"),
        ({"rank": 9}, ValueError, "rank"),
        ({"f": 0.5}, ValueError, "`f`"),
        ({"tol": -1.0}, ValueError, "`tol`"),
        ({"strong": "yes"}, TypeError, "`strong`"),
    ],
)
def test_bad_input(kwargs, err, msg):
    with pytest.raises(err, match=msg):
        rrqr(np.ones((8, 8)), **kwargs)
