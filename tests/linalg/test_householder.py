"""householder_product: orthonormality, agreement with an explicit product and with torch/LAPACK, gradients."""

import numpy as np
import pytest
import scipy.linalg

from lowrank.linalg._householder import householder_product, householder_vectors

try:
    import torch
except ImportError:  # the numpy tests still run without the torch extra
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="needs the torch extra")


def _explicit_product(V):
    """H_1 H_2 ... H_k formed one dense reflection at a time, in float64."""
    V = np.asarray(V, dtype=np.float64)
    Q = np.eye(V.shape[0])
    for i in range(V.shape[1]):
        v = V[:, i : i + 1]
        Q = Q @ (np.eye(V.shape[0]) - 2.0 * (v @ v.T) / float((v * v).sum()))
    return Q


def _lapack_orgqr(A, tau):
    """LAPACK dorgqr on the same vectors (an independent implementation of the tau convention)."""
    m, n = A.shape
    (orgqr,) = scipy.linalg.get_lapack_funcs(("orgqr",), (A,))
    q, work, info = orgqr(np.array(A, order="F"), tau, lwork=max(1, 64 * n))
    assert info == 0
    return q[:, :n]


@pytest.mark.parametrize("d,k", [(1, 1), (5, 3), (40, 40), (64, 10), (30, 70)])
def test_matches_explicit_product_float64(rng, d, k):
    V = rng.standard_normal((d, k))
    Q = householder_product(V)
    assert Q.shape == (d, d) and Q.dtype == np.float64
    np.testing.assert_allclose(Q, _explicit_product(V), atol=1e-13)


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("k", [10, 64, 512])
def test_orthonormality(rng, dtype, tol, k):
    V = rng.standard_normal((512, k)).astype(dtype)
    Q = householder_product(V)
    assert Q.dtype == dtype
    err = np.abs(Q.T.astype(np.float64) @ Q.astype(np.float64) - np.eye(512)).max()
    assert err <= tol


def test_n_columns_is_leading_block(rng):
    V = rng.standard_normal((20, 20))
    full = householder_product(V)
    np.testing.assert_allclose(householder_product(V, n_columns=4), full[:, :4], atol=1e-14)


def test_lapack_convention_matches_orgqr(rng):
    A = rng.standard_normal((9, 6))
    tau = 2.0 / (1.0 + (np.tril(A, -1) ** 2).sum(0))[:5]  # 5 reflections, 6 columns
    tau_full = np.concatenate([tau, [0.0]])  # orgqr needs k == n: a zero tau is the identity factor
    np.testing.assert_allclose(householder_product(A, tau), _lapack_orgqr(A, tau_full), atol=1e-13)
    # arbitrary (non-reflection) tau values, including 0: still the product I - tau_i v_i v_i^T
    tau2 = np.array([0.3, 0.0, 1.7, 2.0, 0.9, 1.1])
    np.testing.assert_allclose(householder_product(A, tau2), _lapack_orgqr(A, tau2), atol=1e-12)


def test_batched_numpy_matches_loop(rng):
    V = rng.standard_normal((3, 2, 7, 4))
    Q = householder_product(V)
    for idx in np.ndindex(3, 2):
        np.testing.assert_allclose(Q[idx], householder_product(V[idx]), atol=1e-14)


def test_integer_input_becomes_float64():
    Q = householder_product(np.array([[1, 0], [1, 1]]))
    assert Q.dtype == np.float64
    np.testing.assert_allclose(Q, _explicit_product([[1, 0], [1, 1]]), atol=1e-15)


def test_householder_vectors_round_trip(rng):
    for d in (1, 2, 3, 17):
        Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
        if np.linalg.det(Q) * (-1) ** d < 0:
            Q[:, 0] *= -1
        V = householder_vectors(Q)
        np.testing.assert_allclose(householder_product(V), Q, atol=1e-13)
    # already-reduced columns (identity and -identity) take the fallback branches
    for Q in (np.eye(4), -np.eye(5), np.diag([1.0, -1, 1, -1])):
        np.testing.assert_allclose(householder_product(householder_vectors(Q)), Q, atol=1e-15)


def test_householder_vectors_rejects_wrong_determinant():
    with pytest.raises(ValueError, match="determinant"):
        householder_vectors(np.eye(3))


@pytest.mark.parametrize(
    "kwargs,err,match",
    [
        ({"V": np.ones(3)}, ValueError, "at least 2 dimensions"),
        ({"V": np.zeros((3, 0))}, ValueError, "non-empty"),
        ({"V": np.array([[1.0, np.nan], [0, 1]])}, ValueError, "NaN"),
        ({"V": np.array([[1.0, 0.0], [0, 0]])}, ValueError, "nonzero"),
        ({"V": np.ones((3, 2), dtype=complex)}, TypeError, "real"),
        ({"V": np.array([["a"]])}, TypeError, "real"),
        ({"V": np.ones((3, 2)), "n_columns": 4}, ValueError, "n_columns"),
        ({"V": np.ones((3, 2)), "n_columns": 1.5}, TypeError, "n_columns"),
        ({"V": np.ones((3, 2)), "tau": np.ones(3)}, ValueError, "m >= n >= k"),
        ({"V": np.ones((3, 2)), "tau": np.ones((2, 1))}, ValueError, "batch shape"),
        ({"V": np.ones((3, 2)), "tau": np.array([1.0, np.inf])}, ValueError, "tau"),
        ({"V": np.ones((3, 2)), "tau": np.ones(2), "n_columns": 1}, ValueError, "only supported"),
    ],
)
def test_bad_input(kwargs, err, match):
    with pytest.raises(err, match=match):
        householder_product(**kwargs)


# ----------------------------------------------------------------------------- torch
@needs_torch
def test_torch_matches_numpy_and_keeps_dtype(rng):
    V = rng.standard_normal((30, 12))
    for dtype in (torch.float32, torch.float64):
        Qt = householder_product(torch.tensor(V, dtype=dtype))
        assert isinstance(Qt, torch.Tensor) and Qt.dtype == dtype
        tol = 1e-5 if dtype == torch.float32 else 1e-13
        np.testing.assert_allclose(Qt.numpy(), _explicit_product(V), atol=tol)


@needs_torch
@pytest.mark.parametrize("dtype,tol", [("float32", 1e-5), ("float64", 1e-12)])
def test_torch_orthonormality_d512(dtype, tol, one_torch_thread):
    dtype = getattr(torch, dtype)
    gen = torch.Generator().manual_seed(0)
    V = torch.randn(512, 512, dtype=dtype, generator=gen)
    Q = householder_product(V)
    err = (Q.double().T @ Q.double() - torch.eye(512, dtype=torch.float64)).abs().max()
    assert err <= tol


@needs_torch
def test_torch_lapack_convention_matches_torch_householder_product(one_torch_thread):
    gen = torch.Generator().manual_seed(1)
    A = torch.randn(4, 11, 7, dtype=torch.float64, generator=gen)
    tau = torch.rand(4, 5, dtype=torch.float64, generator=gen) * 2
    torch.testing.assert_close(householder_product(A, tau), torch.linalg.householder_product(A, tau), atol=1e-12, rtol=0)


@needs_torch
def test_torch_gradients_match_torch_householder_product(one_torch_thread):
    gen = torch.Generator().manual_seed(2)
    A0 = torch.randn(10, 6, dtype=torch.float64, generator=gen)
    tau0 = 2.0 / (1.0 + torch.tril(A0, -1).pow(2).sum(0))
    W = torch.randn(10, 6, dtype=torch.float64, generator=gen)  # a random linear functional of Q
    grads = []
    for fn in (householder_product, torch.linalg.householder_product):
        A, tau = A0.clone().requires_grad_(), tau0.clone().requires_grad_()
        (fn(A, tau) * W).sum().backward()
        grads.append((A.grad, tau.grad))
    torch.testing.assert_close(grads[0][0], grads[1][0], atol=1e-10, rtol=1e-8)
    torch.testing.assert_close(grads[0][1], grads[1][1], atol=1e-10, rtol=1e-8)


@needs_torch
def test_torch_gradcheck_finite_differences(one_torch_thread):
    gen = torch.Generator().manual_seed(3)
    V = torch.randn(6, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: householder_product(v, n_columns=3), (V,))
    A = torch.randn(7, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    tau = torch.rand(3, dtype=torch.float64, generator=gen).requires_grad_()
    assert torch.autograd.gradcheck(householder_product, (A, tau))


@needs_torch
def test_torch_batched_and_mixed_inputs_rejected():
    V = torch.randn(2, 5, 3)
    Q = householder_product(V)
    torch.testing.assert_close(Q[1], householder_product(V[1]))
    with pytest.raises(TypeError, match="both"):
        householder_product(V[0], np.ones(3))
    with pytest.raises(TypeError, match="dtype and device"):
        householder_product(V[0].double(), torch.ones(3))
    with pytest.raises(TypeError, match="real floating"):
        householder_product(torch.ones(3, 2, dtype=torch.int64))


@needs_torch
@pytest.mark.gpu
def test_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(4)
    V = torch.randn(256, 64, dtype=torch.float64, generator=gen)
    Qc = householder_product(V.cuda())
    assert Qc.is_cuda
    torch.testing.assert_close(Qc.cpu(), householder_product(V), atol=1e-12, rtol=0)
    A = torch.randn(128, 64, dtype=torch.float64, generator=gen).cuda().requires_grad_()
    tau = (2.0 / (1.0 + torch.tril(A.detach(), -1).pow(2).sum(0))).requires_grad_()
    householder_product(A, tau).sum().backward()
    g = A.grad.clone()
    A.grad = None
    torch.linalg.householder_product(A, tau).sum().backward()
    torch.testing.assert_close(g, A.grad, atol=1e-9, rtol=1e-7)


def test_public_export():
    import lowrank.linalg

    assert lowrank.linalg.householder_product is householder_product
