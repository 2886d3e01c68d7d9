"""randomized_svd against LAPACK's exact SVD and scikit-learn, one test class per backend."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import aslinearoperator
from sklearn.utils.extmath import randomized_svd as sk_randomized_svd

from lowrank.linalg import randomized_svd


def _test_matrix(m, n, decay, rng):
    """A matrix with prescribed singular values: 'fast' (geometric) or 'slow' (1/sqrt(i)) decay."""
    k = min(m, n)
    U, _ = np.linalg.qr(rng.standard_normal((m, k)))
    V, _ = np.linalg.qr(rng.standard_normal((n, k)))
    i = np.arange(1, k + 1)
    s = 0.8**i if decay == "fast" else 1 / np.sqrt(i)
    return (U * s) @ V.T


def _optimal_error(A, rank):
    s = np.linalg.svd(A, compute_uv=False)
    return np.sqrt(np.sum(s[rank:] ** 2))


def _check_factorization(U, s, Vh, A_dense, rank, rel_to_optimal, atol_orth):
    assert U.shape == (A_dense.shape[0], rank) and s.shape == (rank,) and Vh.shape == (rank, A_dense.shape[1])
    assert np.all(np.diff(s) <= 1e-6 * s[0]), "singular values must be descending"
    np.testing.assert_allclose(U.T @ U, np.eye(rank), atol=atol_orth)
    np.testing.assert_allclose(Vh @ Vh.T, np.eye(rank), atol=atol_orth)
    err = np.linalg.norm(A_dense - (U * s) @ Vh)
    assert err <= (1 + rel_to_optimal) * _optimal_error(A_dense, rank) + 1e-10


class _Base:
    """Subclasses convert the dense test matrix to their backend and results back to numpy."""

    def convert(self, A):
        raise NotImplementedError

    def back(self, X):
        return np.asarray(X)

    @pytest.mark.parametrize("decay", ["fast", "slow"])
    @pytest.mark.parametrize("shape", [(120, 80), (60, 150)])
    def test_near_optimal_error(self, decay, shape):
        rng = np.random.default_rng(0)
        A = _test_matrix(*shape, decay, rng)
        U, s, Vh = randomized_svd(self.convert(A), 10, rng=1)
        _check_factorization(self.back(U), self.back(s), self.back(Vh), A, 10, 0.03, 1e-8)

    def test_exact_on_low_rank(self):
        rng = np.random.default_rng(3)
        A = rng.standard_normal((70, 6)) @ rng.standard_normal((6, 50))
        U, s, Vh = randomized_svd(self.convert(A), 6, rng=0)
        np.testing.assert_allclose(self.back(U) * self.back(s) @ self.back(Vh), A, atol=1e-9)
        np.testing.assert_allclose(self.back(s), np.linalg.svd(A, compute_uv=False)[:6], rtol=1e-10)


class TestNumpy(_Base):
    def convert(self, A):
        return A

    def test_at_least_as_accurate_as_sklearn(self):
        rng = np.random.default_rng(5)
        A = _test_matrix(200, 100, "slow", rng)
        exact = np.linalg.svd(A, compute_uv=False)[:15]
        ours = [randomized_svd(A, 15, rng=seed)[1] for seed in range(5)]
        ref = [sk_randomized_svd(A, 15, random_state=seed)[1] for seed in range(5)]
        err_ours = np.mean([np.abs(s - exact).max() for s in ours])
        err_ref = np.mean([np.abs(s - exact).max() for s in ref])
        assert err_ours <= 1.25 * err_ref + 1e-12
        np.testing.assert_allclose(ours[0], exact, rtol=0.01)

    def test_float32_preserved(self):
        A = np.random.default_rng(0).standard_normal((40, 30)).astype(np.float32)
        U, s, Vh = randomized_svd(A, 5, rng=0)
        assert U.dtype == s.dtype == Vh.dtype == np.float32

    def test_deterministic_signs_and_seed(self):
        A = np.random.default_rng(0).standard_normal((40, 30))
        U1, _, V1 = randomized_svd(A, 5, rng=3)
        U2, _, V2 = randomized_svd(A, 5, rng=3)
        np.testing.assert_array_equal(U1, U2)
        idx = np.argmax(np.abs(U1), axis=0)
        assert np.all(U1[idx, np.arange(5)] > 0)

    @pytest.mark.parametrize("normalizer", ["QR", "LU", "none"])
    def test_normalizers(self, normalizer):
        A = _test_matrix(80, 60, "fast", np.random.default_rng(1))
        U, s, Vh = randomized_svd(A, 5, power_iteration_normalizer=normalizer, n_iter=3, rng=0)
        _check_factorization(U, s, Vh, A, 5, 0.03, 1e-8)


class TestSparse(_Base):
    def convert(self, A):
        return sp.csr_array(A)

    def test_large_sparse_matches_dense_reference(self):
        A = sp.random(3000, 400, density=0.01, random_state=0, format="csr")
        U, s, Vh = randomized_svd(A, 5, rng=0)
        # A flat random spectrum is the hard case: ask only for near-optimal reconstruction.
        _check_factorization(U, s, Vh, A.toarray(), 5, 0.01, 1e-8)
        assert abs(s[0] - np.linalg.svd(A.toarray(), compute_uv=False)[0]) < 1e-4


class TestLinearOperator(_Base):
    def convert(self, A):
        return aslinearoperator(A)


class TestTorchCPU(_Base):
    def setup_method(self):
        self.torch = pytest.importorskip("torch")

    def convert(self, A):
        return self.torch.from_numpy(A)

    def back(self, X):
        assert isinstance(X, self.torch.Tensor)
        return X.cpu().numpy()


@pytest.mark.gpu
class TestTorchCUDA(TestTorchCPU):
    def convert(self, A):
        return self.torch.from_numpy(A).cuda()

    def back(self, X):
        assert X.is_cuda
        return X.cpu().numpy()


@pytest.mark.parametrize(
    "A, rank, err, msg",
    [
        (np.ones((5, 4)), 0, ValueError, "0 < rank"),
        (np.ones((5, 4)), 5, ValueError, "0 < rank"),
        (np.ones((5, 4)), 2.5, TypeError, "`rank` must be an integer"),
        (np.ones(5), 1, ValueError, "2-dimensional"),
        (np.zeros((0, 3)), 1, ValueError, "non-empty"),
        (np.array([[1.0, np.nan], [0, 1]]), 1, ValueError, "NaN"),
        (np.array([[1.0, np.inf], [0, 1]]), 1, ValueError, "NaN or infinity"),
        (np.ones((3, 3), dtype=complex), 1, TypeError, "complex"),
        (np.array([["a", "b"], ["c", "d"]]), 1, TypeError, "real numbers"),
    ],
)
def test_bad_input(A, rank, err, msg):
    with pytest.raises(err, match=msg):
        randomized_svd(A, rank)


def test_bad_options():
    A = np.ones((5, 4))
    with pytest.raises(ValueError, match="n_iter"):
        randomized_svd(A, 1, n_iter="many")
    with pytest.raises(ValueError, match="power_iteration_normalizer"):
        randomized_svd(A, 1, power_iteration_normalizer="svd")
    with pytest.raises(TypeError, match="rng"):
        randomized_svd(A, 1, rng="seed")
