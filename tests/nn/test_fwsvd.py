"""FWSVD: Fisher from squared task-loss gradients, and the weighted error it minimizes."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lowrank.nn import compress  # noqa: E402
from lowrank.nn.compression.fwsvd import empirical_fisher, fisher_weighted_svd, importance  # noqa: E402


def _model_and_data(seed=0, n=256):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    x = torch.randn(n, 10)
    y = (x[:, :4] * torch.arange(1.0, 5)).argmax(dim=1)
    return model, x, y


def _reference_fisher(model, x, y, batch_size, loss=torch.nn.functional.cross_entropy):
    sums = [torch.zeros_like(model[0].weight, dtype=torch.float64), torch.zeros_like(model[2].weight,
                                                                                      dtype=torch.float64)]
    for start in range(0, x.shape[0], batch_size):
        model.zero_grad()
        loss(model(x[start:start + batch_size]), y[start:start + batch_size]).backward()
        sums[0] += model[0].weight.grad.double() ** 2
        sums[1] += model[2].weight.grad.double() ** 2
    model.zero_grad()
    return sums


def _dense(layer):
    return (layer.up.weight.double() @ layer.down.weight.double()).detach()


def test_fisher_matches_backward_on_each_batch():
    model, x, y = _model_and_data()
    F = empirical_fisher(model, {"0": model[0], "2": model[2]}, (x, y), batch_size=64)
    ref = _reference_fisher(model, x, y, 64)
    torch.testing.assert_close(F["0"], ref[0], rtol=1e-6, atol=1e-12)
    torch.testing.assert_close(F["2"], ref[1], rtol=1e-6, atol=1e-12)
    assert all(p.grad is None for p in model.parameters())   # the model's gradients are untouched
    # float targets use MSE by default
    yf = torch.randn(x.shape[0], 4)
    F = empirical_fisher(model, {"2": model[2]}, (x, yf), batch_size=128)
    ref = _reference_fisher(model, x, yf, 128, loss=torch.nn.functional.mse_loss)
    torch.testing.assert_close(F["2"], ref[1], rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("sides", ["rows", "both"])
def test_weighted_error_never_above_plain_svd(sides):
    model, x, y = _model_and_data(1)
    F = _reference_fisher(model, x, y, 64)[0].numpy()
    r = importance(F, 1e-3, axis=1) ** 2
    c = importance(F, 1e-3, axis=0) ** 2 if sides == "both" else np.ones(F.shape[1])
    W = model[0].weight.detach().double().numpy()

    def weighted(E):
        return float((r[:, None] * c[None, :] * E**2).sum())

    gains = []
    for k in range(1, 6):   # up to break-even of a 16 x 10 layer
        fw, _ = compress(model, "fwsvd", (x, y), rank=k, targets=["0"], batch_size=64, sides=sides)
        sv, _ = compress(model, "svd", rank=k, targets=["0"])
        e_fw, e_sv = weighted(W - _dense(fw[0]).numpy()), weighted(W - _dense(sv[0]).numpy())
        assert e_fw <= e_sv * (1 + 1e-10) + 1e-14
        gains.append(e_sv - e_fw)
    assert max(gains) > 0   # the weighting changes the solution somewhere


def test_uniform_fisher_is_plain_svd():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((12, 9))
    U0, s0, Vh0 = np.linalg.svd(W, full_matrices=False)
    for k in (1, 4, 9):
        U, s, Vh = fisher_weighted_svd(W, importance(np.full(W.shape, 0.3), 1e-3) ** 2, None, k)
        np.testing.assert_allclose(U * s @ Vh, U0[:, :k] * s0[:k] @ Vh0[:k], atol=1e-10)


def test_floor_and_dead_units():
    F = np.array([[4.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(importance(F, 0.01), [2.0, 0.02, 1.0])
    np.testing.assert_allclose(importance(np.zeros((3, 2)), 0.01), np.ones(3))   # no signal: plain SVD
    model, x, y = _model_and_data(2)
    with torch.no_grad():
        model[0].bias[:5] = -1e3   # five dead ReLU units: zero Fisher rows
    small, report = compress(model, "fwsvd", (x, y), rank=3, targets=["0"])
    assert report.layers[0].compressed and torch.isfinite(small(x)).all()


def test_conv_layer_and_report():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(8 * 4 * 4, 2))
    x, y = torch.randn(32, 3, 6, 6), torch.randint(0, 2, (32,))
    small, report = compress(model, "fwsvd", (x, y), rank=2, targets=["0"])
    assert report.error_basis == "Fisher-weighted weights"
    F = empirical_fisher(model, {"0": model[0]}, (x, y))["0"].reshape(8, -1).numpy()
    r = importance(F, 1e-3) ** 2
    W = model[0].weight.detach().double().reshape(8, -1).numpy()
    s = np.linalg.svd(np.sqrt(r)[:, None] * W, compute_uv=False)
    assert report.layers[0].output_relative_error == pytest.approx(np.sqrt((s[2:] ** 2).sum() / (s**2).sum()))


def test_bad_input():
    model, x, y = _model_and_data()
    with pytest.raises(ValueError, match="inputs, targets"):
        compress(model, "fwsvd", x, rank=2)
    with pytest.raises(ValueError, match="calibration"):
        compress(model, "fwsvd", None, rank=2)
    with pytest.raises(TypeError, match="loss_fn"):
        compress(model, "fwsvd", (x, y), rank=2, loss_fn=3)
    with pytest.raises(ValueError, match="floor"):
        compress(model, "fwsvd", (x, y), rank=2, floor=0.0)
    with pytest.raises(ValueError, match="sides"):
        compress(model, "fwsvd", (x, y), rank=2, sides="left")
    with pytest.raises(ValueError, match="not finite"):
        compress(model, "fwsvd", (x, y), rank=2, loss_fn=lambda out, t: out.sum() * float("nan"))
