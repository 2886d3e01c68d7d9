"""SST: orthonormal factors after training, full sampling equals joint training, masking of undrawn pairs."""

import pytest

torch = pytest.importorskip("torch")

from lowrank.nn import SpectralLinear  # noqa: E402


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(128, 12, generator=g, dtype=torch.float64)
    M = torch.randn(12, 9, generator=g, dtype=torch.float64)
    return X, X @ M


def test_orthonormal_after_training_and_weight_kept_by_reorthogonalize():
    layer = SpectralLinear(12, 9, n_sample=3, seed=1).double()
    X, Y = _data()
    opt = torch.optim.SGD(layer.parameters(), lr=0.05)
    for round_ in range(6):
        layer.resample()
        for _ in range(10):
            opt.zero_grad()
            torch.nn.functional.mse_loss(layer(X), Y).backward()
            opt.step()
        before = layer.weight().detach().clone()
        layer.reorthogonalize()
        assert torch.allclose(layer.weight().detach(), before, atol=1e-10)
    eye = torch.eye(9, dtype=torch.float64)
    assert torch.allclose(layer.U.T @ layer.U, eye, atol=1e-5)
    assert torch.allclose(layer.V.T @ layer.V, eye, atol=1e-5)


def test_only_drawn_pairs_move_with_sgd():
    layer = SpectralLinear(12, 9, n_sample=2, seed=2).double()
    X, Y = _data(1)
    layer.resample()
    U0, V0, s0 = layer.U.detach().clone(), layer.V.detach().clone(), layer.s.detach().clone()
    opt = torch.optim.SGD(layer.parameters(), lr=0.05)
    torch.nn.functional.mse_loss(layer(X), Y).backward()
    opt.step()
    idle = ~layer.active
    assert torch.equal(layer.U.detach()[:, idle], U0[:, idle]) and torch.equal(layer.V.detach()[:, idle], V0[:, idle])
    assert not torch.equal(layer.U.detach()[:, layer.active], U0[:, layer.active])
    assert (layer.s.detach() != s0).all()  # s always trains


def test_full_sampling_equals_joint_training():
    layer = SpectralLinear(12, 9, n_sample=9, seed=3).double()
    U, s, V = (p.detach().clone().requires_grad_() for p in (layer.U, layer.s, layer.V))
    b = layer.bias.detach().clone().requires_grad_()
    X, Y = _data(2)
    opt = torch.optim.Adam(layer.parameters(), lr=1e-2)
    ref = torch.optim.Adam([U, s, V, b], lr=1e-2)
    for _ in range(15):
        layer.resample()
        opt.zero_grad()
        ref.zero_grad()
        torch.nn.functional.mse_loss(layer(X), Y).backward()
        torch.nn.functional.mse_loss(X @ (U * s @ V.T).T + b, Y).backward()
        opt.step()
        ref.step()
    assert torch.allclose(layer.weight().detach(), (U * s @ V.T).detach(), atol=1e-10)


def test_from_linear_and_sampling_prefers_large_values():
    torch.manual_seed(0)
    linear = torch.nn.Linear(10, 10).double()
    layer = SpectralLinear.from_linear(linear, n_sample=1)
    X = torch.randn(4, 10, dtype=torch.float64)
    assert torch.allclose(layer(X), linear(X), atol=1e-10)
    with torch.no_grad():
        layer.s.copy_(torch.tensor([100.0] + [1e-3] * 9))
    counts = 0
    for _ in range(50):
        layer.resample()
        counts += int(layer.active[0])
    assert counts >= 48


def test_bad_input():
    with pytest.raises(ValueError, match="rank"):
        SpectralLinear(4, 3, 4)
    with pytest.raises(ValueError, match="n_sample"):
        SpectralLinear(4, 3, 2, n_sample=3)
    with pytest.raises(TypeError, match="linear"):
        SpectralLinear.from_linear(torch.nn.Conv1d(2, 2, 1))
