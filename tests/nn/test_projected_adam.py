"""ProjectedAdam against torch.optim.Adam on the full and on the projected problem."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lowrank.linalg import dct_basis  # noqa: E402
from lowrank.nn.optim import ProjectedAdam  # noqa: E402


def _grads(shape, n_steps, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(n_steps)]


def _run(opt_factory, W0, grads, extra=None):
    """Feed fixed gradients (a linear loss <G_t, W>) so both optimizers see identical inputs."""
    W = torch.nn.Parameter(W0.clone())
    b = torch.nn.Parameter(torch.zeros(W0.shape[0], dtype=W0.dtype))
    opt = opt_factory([W, b])
    for G in grads:
        opt.zero_grad()
        ((W * G).sum() + (b * G[:, 0]).sum()).backward()
        opt.step()
    return W.detach(), b.detach(), opt


def test_identity_basis_full_rank_equals_adam():
    W0 = torch.randn(6, 9, dtype=torch.float64)
    grads = _grads((6, 9), 25)
    kw = dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-8)
    ref_W, ref_b, _ = _run(lambda p: torch.optim.Adam(p, **kw), W0, grads)
    eye = torch.eye(6, dtype=torch.float64)
    W, b, _ = _run(lambda p: ProjectedAdam(p, 6, basis=eye, scale=1.0, **kw), W0, grads)
    assert torch.allclose(W, ref_W, atol=1e-6, rtol=0)
    assert torch.allclose(b, ref_b, atol=1e-6, rtol=0)


@pytest.mark.parametrize("shape", [(6, 9), (9, 6)])
def test_any_orthonormal_basis_equals_adam_on_projected_problem(shape):
    side, r, scale, lr = min(shape), 3, 0.5, 1e-2
    rng = np.random.default_rng(1)
    P = torch.as_tensor(np.linalg.qr(rng.standard_normal((side, r)))[0])
    W0 = torch.randn(shape, dtype=torch.float64)
    grads = _grads(shape, 20, seed=2)
    W, _, _ = _run(lambda p: ProjectedAdam(p, r, basis=P, scale=scale, lr=lr), W0, grads)
    # reference: torch Adam on Z (the projected coordinates) with gradient P^T G (or G P), mapped back by P
    left = shape[0] <= shape[1]
    Z = torch.nn.Parameter(torch.zeros((r, shape[1]) if left else (shape[0], r), dtype=torch.float64))
    opt = torch.optim.Adam([Z], lr=lr * scale)
    for G in grads:
        opt.zero_grad()
        Z.grad = P.T @ G if left else G @ P
        opt.step()
    ref = W0 + (P @ Z.detach() if left else Z.detach() @ P.T)
    assert torch.allclose(W, ref, atol=1e-10)


@pytest.mark.parametrize("basis", ["svd", "dct", "random"])
def test_state_is_order_n_r(basis):
    m, n, r = 12, 40, 3
    W0 = torch.randn(m, n, dtype=torch.float64)
    _, _, opt = _run(lambda p: ProjectedAdam(p, r, basis=basis, update_gap=5, rng=0), W0, _grads((m, n), 7))
    state = next(s for s in opt.state.values() if "left" in s)
    assert state["exp_avg"].shape == (r, n) and state["exp_avg_sq"].shape == (r, n)
    if basis == "dct":
        assert "projector" not in state and state["indices"].shape == (r,)
        assert state["indices"].dtype == torch.int64
    else:
        assert state["projector"].shape == (m, r)
    tensors = sum(v.numel() for v in state.values() if torch.is_tensor(v))
    assert tensors <= 2 * r * n + m * r  # O(n r), never an (m, n) moment


def test_dct_selects_the_best_aligned_columns_and_basis_is_orthonormal():
    m, n, r = 16, 30, 4
    D = dct_basis(m)
    assert np.allclose(D.T @ D, np.eye(m), atol=1e-12)
    # a gradient living in DCT columns {2, 5, 11, 13}: those are the ones chosen
    coeff = np.zeros((m, n))
    coeff[[2, 5, 11, 13]] = np.random.default_rng(0).standard_normal((4, n)) * [[4], [3], [2], [1]]
    G = torch.as_tensor(D @ coeff)
    W = torch.nn.Parameter(torch.zeros(m, n, dtype=torch.float64))
    opt = ProjectedAdam([W], r, basis="dct")
    W.grad = G
    opt.step()
    assert opt.state[W]["indices"].tolist() == [2, 5, 11, 13]


def test_svd_basis_spans_gradient_top_subspace():
    m, n, r = 10, 20, 2
    rng = np.random.default_rng(3)
    G = torch.as_tensor(rng.standard_normal((m, r)) @ rng.standard_normal((r, n)))
    W = torch.nn.Parameter(torch.zeros(m, n, dtype=torch.float64))
    opt = ProjectedAdam([W], r, basis="svd", rng=0)
    W.grad = G
    opt.step()
    P = opt.state[W]["projector"]
    assert torch.allclose(P @ (P.T @ G), G, atol=1e-8)


def test_bad_input():
    p = [torch.nn.Parameter(torch.zeros(3, 3))]
    with pytest.raises(ValueError, match="basis"):
        ProjectedAdam(p, 2, basis="qr")
    with pytest.raises(ValueError, match="orthonormal"):
        ProjectedAdam(p, 2, basis=torch.ones(3, 2))
    with pytest.raises(ValueError, match="rank"):
        ProjectedAdam(p, 0)
    with pytest.raises(ValueError, match="update_gap"):
        ProjectedAdam(p, 1, update_gap=0)
    with pytest.raises(ValueError, match="basis"):
        opt = ProjectedAdam(p, 1, basis=torch.eye(4)[:, :1])
        p[0].grad = torch.ones(3, 3)
        opt.step()
