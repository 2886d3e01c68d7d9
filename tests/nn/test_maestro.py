"""Maestro: nested prefixes, ordered dropout recovers the SVD of a linear map, group lasso, prune/truncate."""

import numpy as np
import pytest
from scipy.linalg import subspace_angles

torch = pytest.importorskip("torch")

from lowrank.nn import OrderedLowRankConv, OrderedLowRankLinear  # noqa: E402


def test_truncate_of_trained_equals_prefix_trained_alone():
    R, r = 6, 2
    g = torch.Generator().manual_seed(0)
    X, Y = torch.randn(64, 10, generator=g, dtype=torch.float64), torch.randn(64, 8, generator=g, dtype=torch.float64)
    full = OrderedLowRankLinear(10, 8, R, seed=1).double()
    alone = full.truncate(r)
    alone.ordered_dropout = False  # dropout off: the rank-r layer trains plainly
    opt_full = torch.optim.SGD(full.parameters(), lr=0.05)
    opt_alone = torch.optim.SGD(alone.parameters(), lr=0.05)
    for _ in range(15):
        for layer, opt, kw in ((full, opt_full, {"rank": r}), (alone, opt_alone, {})):
            opt.zero_grad()
            torch.nn.functional.mse_loss(layer(X, **kw), Y).backward()
            opt.step()
    trained = full.truncate(r)
    assert torch.allclose(trained.U, alone.U, atol=1e-12) and torch.allclose(trained.V, alone.V, atol=1e-12)
    # any prefix is a valid model and prefixes are nested
    for k in (1, 3, 4):
        assert torch.allclose(full.truncate(k).U, full.U[:, :k])
        assert torch.allclose(full.truncate(k).eval()(X), full(X, rank=k))


def test_ordered_dropout_recovers_svd_of_linear_map():
    rng = np.random.default_rng(0)
    m, n, R = 6, 8, 4
    Uq, _ = np.linalg.qr(rng.standard_normal((m, m)))
    Vq, _ = np.linalg.qr(rng.standard_normal((n, n)))
    s = np.array([4.0, 3.0, 2.0, 1.0, 0.5, 0.25])
    M = torch.as_tensor(Uq @ np.diag(s) @ Vq[:, :m].T)
    layer = OrderedLowRankLinear(n, m, R, bias=False, seed=2).double()
    X = torch.eye(n, dtype=torch.float64)  # isotropic inputs: E||M x - W_k x||^2 = ||M - W_k||_F^2 / n
    opt = torch.optim.Adam(layer.parameters(), lr=3e-2)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, 0.996)
    for _ in range(1200):
        opt.zero_grad()
        # the expectation of ordered dropout over k uniform in 1..R, taken exactly (no sampling noise)
        loss = sum(((layer(X, rank=k) - X @ M.T) ** 2).sum() for k in range(1, R + 1)) / R
        loss.backward()
        opt.step()
        sched.step()
    for k in range(1, R + 1):
        angles = subspace_angles(layer.U.detach()[:, :k].numpy(), Uq[:, :k])
        assert angles.max() < 1e-2, (k, angles)
        angles = subspace_angles(layer.V.detach()[:k].T.numpy(), Vq[:, :k])
        assert angles.max() < 1e-2, (k, angles)
    assert np.allclose(layer.importance().numpy(), s[:R], atol=1e-2)


def test_group_lasso_and_prune():
    layer = OrderedLowRankLinear(12, 10, 6, seed=3).double()
    energy = (layer.U.pow(2).sum(0) + layer.V.pow(2).sum(1)).detach()
    expected = sum(float(energy[i:].sum()) ** 0.5 for i in range(6))
    assert abs(layer.group_lasso().detach().item() - expected) < 1e-10
    with torch.no_grad():
        layer.U[:, 3:] *= 1e-3
    pruned = layer.prune(float(layer.importance()[2]) * 0.5)
    assert pruned.rank == 3
    dense = layer.truncate(6)  # 6 * 22 >= 120: past break-even, dense
    assert isinstance(dense, torch.nn.Linear)
    x = torch.randn(3, 12, dtype=torch.float64)
    assert torch.allclose(dense(x), layer.eval()(x))


def test_ordered_dropout_samples_prefix_ranks():
    layer = OrderedLowRankLinear(10, 10, 5, p_min=0.5, seed=0)
    ranks = {layer.sample_rank() for _ in range(200)}
    assert ranks == {3, 4, 5}  # ceil(p * 5) for p in (0.5, 1]


def test_bad_input():
    with pytest.raises(ValueError, match="rank"):
        OrderedLowRankLinear(4, 3, 4)
    with pytest.raises(ValueError, match="p_min"):
        OrderedLowRankLinear(4, 3, p_min=1.0)
    with pytest.raises(ValueError, match="rank"):
        OrderedLowRankLinear(4, 3, 2).truncate(3)


def test_conv_version_prefixes_equal_dense_conv():
    conv = OrderedLowRankConv(3, 8, 3, rank=6, padding=1, stride=2, seed=4).double().eval()
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    for k in (1, 3, 6):
        small = conv.truncate(k).eval()
        dense = torch.nn.functional.conv2d(x, small.weight(), conv.bias, stride=2, padding=1)
        assert torch.allclose(small(x), dense, atol=1e-10) and torch.allclose(conv(x, rank=k), dense, atol=1e-10)
        assert torch.equal(small.down, conv.down[:k])
    energy = (conv.up.pow(2).flatten(2).sum((0, 2)) + conv.down.pow(2).flatten(1).sum(1)).detach()
    expected = sum(float(energy[i:].sum()) ** 0.5 for i in range(6))
    assert abs(conv.group_lasso().detach().item() - expected) < 1e-10
    conv.train()
    assert {conv.sample_rank() for _ in range(100)} == set(range(1, 7))
