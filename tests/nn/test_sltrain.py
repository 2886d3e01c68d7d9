"""SLTrain / LOST: fixed seeded support, parameter count, sparse product vs dense, exact LOST start."""

import pytest

torch = pytest.importorskip("torch")

from lowrank.nn import SparsePlusLowRankLinear  # noqa: E402


@pytest.mark.parametrize("support", ["random", "channel"])
def test_support_fixed_during_training_and_reproducible_from_seed(support):
    layer = SparsePlusLowRankLinear(20, 12, 3, 0.1, support=support, seed=7)
    rows0, cols0 = layer.rows.clone(), layer.cols.clone()
    opt = torch.optim.Adam(layer.parameters(), lr=1e-2)
    X, Y = torch.randn(64, 20), torch.randn(64, 12)
    for _ in range(20):
        opt.zero_grad()
        torch.nn.functional.mse_loss(layer(X), Y).backward()
        opt.step()
    assert torch.equal(layer.rows, rows0) and torch.equal(layer.cols, cols0)
    assert "rows" not in layer.state_dict() and "cols" not in layer.state_dict()
    fresh = SparsePlusLowRankLinear(20, 12, 3, 0.1, support=support, seed=7)
    fresh.load_state_dict(layer.state_dict())
    assert torch.equal(fresh.rows, rows0) and torch.equal(fresh.cols, cols0)
    assert torch.equal(fresh(X), layer(X))
    other = SparsePlusLowRankLinear(20, 12, 3, 0.1, support=support, seed=8)
    assert not (torch.equal(other.rows, rows0) and torch.equal(other.cols, cols0))
    # no duplicate positions; the channel support holds whole columns
    flat = rows0 * 20 + cols0
    assert flat.unique().numel() == flat.numel()
    if support == "channel":
        assert flat.numel() == 12 * cols0.unique().numel() == 12 * round(0.1 * 20)
    else:
        assert flat.numel() == round(0.1 * 20 * 12)


def test_parameter_count():
    layer = SparsePlusLowRankLinear(48, 32, 5, 0.03, bias=False)
    nnz = round(0.03 * 48 * 32)
    assert layer.values.numel() == nnz
    assert sum(p.numel() for p in layer.parameters()) == 5 * (48 + 32) + nnz


def test_forward_equals_dense_and_init():
    layer = SparsePlusLowRankLinear(30, 10, 4, 0.2, alpha=8.0, seed=3).double()
    assert torch.count_nonzero(layer.B) == 0  # B zero at init (SLTrain)
    with torch.no_grad():
        layer.B.normal_()
        layer.bias.normal_()
    X = torch.randn(5, 7, 30, dtype=torch.float64)
    S = torch.zeros(10, 30, dtype=torch.float64)
    S[layer.rows, layer.cols] = layer.values.detach()
    W = (8.0 / 4) * layer.B.detach() @ layer.A.detach() + S
    assert torch.allclose(layer(X), X @ W.T + layer.bias.detach(), atol=1e-12)
    # gradients of the values agree with the dense reference on the support
    Sd = S.clone().requires_grad_()
    Xd, Xs = X.clone().requires_grad_(), X.clone().requires_grad_()
    weights = torch.randn(5, 7, 10, dtype=torch.float64)
    ((Xd @ ((8.0 / 4) * layer.B.detach() @ layer.A.detach() + Sd).T) * weights).sum().backward()
    (layer(Xs) * weights).sum().backward()
    assert torch.allclose(layer.values.grad, Sd.grad[layer.rows, layer.cols], atol=1e-10)
    assert torch.allclose(Xs.grad, Xd.grad, atol=1e-10)


@pytest.mark.parametrize("keep_remainder", [True, False])
def test_lost_from_linear(keep_remainder):
    torch.manual_seed(0)
    linear = torch.nn.Linear(40, 24)
    layer = SparsePlusLowRankLinear.from_linear(linear, rank=6, density=0.1, keep_remainder=keep_remainder)
    W = linear.weight.detach()
    U, s, Vh = torch.linalg.svd(W.double())
    top = (U[:, :6] * s[:6]) @ Vh[:6]
    assert torch.allclose((layer.B @ layer.A).detach().double(), top, atol=1e-5)
    residual = W.double() - top
    chosen = torch.topk(residual.norm(dim=0), 4).indices
    assert set(layer.cols.unique().tolist()) == set(chosen.tolist())
    X = torch.randn(8, 40)
    if keep_remainder:
        assert torch.allclose(layer.dense_weight().detach(), W, atol=1e-6, rtol=0)
        assert torch.allclose(layer(X), linear(X), atol=1e-5)
    else:
        S = torch.zeros_like(residual)
        S[:, chosen] = residual[:, chosen]
        assert torch.allclose(layer.dense_weight().detach().double(), top + S, atol=1e-5)
    assert sum(p.numel() for p in layer.parameters()) == 6 * 64 + 24 * 4 + 24


def test_bad_input():
    with pytest.raises(ValueError, match="rank"):
        SparsePlusLowRankLinear(4, 3, 5)
    with pytest.raises(ValueError, match="density"):
        SparsePlusLowRankLinear(4, 3, 1, 0.0)
    with pytest.raises(ValueError, match="support"):
        SparsePlusLowRankLinear(4, 3, 1, support="rows")
    with pytest.raises(TypeError, match="linear"):
        SparsePlusLowRankLinear.from_linear(torch.nn.Conv1d(2, 2, 1), 1)
