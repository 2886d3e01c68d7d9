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


def _random_spd(n, rng):
    M = rng.standard_normal((n, n + 3))
    return M @ M.T / n


def _sqrtm(M):
    lam, Q = np.linalg.eigh(M)
    return (Q * np.sqrt(lam)) @ Q.T


def test_kronecker_error_never_above_plain_or_diagonal_and_identity_is_plain_svd():
    from lowrank.nn.compression.fwsvd import kronecker_weighted_svd

    rng = np.random.default_rng(3)
    W = rng.standard_normal((14, 9))
    A, G = _random_spd(9, rng), _random_spd(14, rng)
    Ah, Gh = _sqrtm(A), _sqrtm(G)   # independent dense reference of the Kronecker-weighted norm

    def kron_err(B):
        return float(np.linalg.norm(Gh @ (W - B) @ Ah) ** 2)

    U0, s0, Vh0 = np.linalg.svd(W, full_matrices=False)
    gains = []
    for k in range(1, 9):
        U, s, Vh = kronecker_weighted_svd(W, A, G, k)
        e_kr = kron_err(U * s @ Vh)
        e_sv = kron_err(U0[:, :k] * s0[:k] @ Vh0[:k])
        Ud, sd, Vhd = fisher_weighted_svd(W, np.diag(G), np.diag(A), k)   # the diagonal of A ⊗ G
        e_dg = kron_err(Ud * sd @ Vhd)
        assert e_kr <= e_sv * (1 + 1e-10) and e_kr <= e_dg * (1 + 1e-10)
        # the optimum is the tail of the weighted matrix's spectrum (Eckart-Young)
        tail = np.linalg.svd(Gh @ W @ Ah, compute_uv=False)[k:]
        assert e_kr == pytest.approx(float((tail**2).sum()), rel=1e-9, abs=1e-12)
        gains.append(min(e_sv, e_dg) - e_kr)
        # identity factors: plain SVD
        U, s, Vh = kronecker_weighted_svd(W, np.eye(9), np.eye(14), k)
        np.testing.assert_allclose(U * s @ Vh, U0[:, :k] * s0[:k] @ Vh0[:k], atol=1e-10)
    assert min(gains) > 0


def test_kronecker_factors_from_the_calibration_pass():
    model, x, y = _model_and_data(4)
    F = empirical_fisher(model, {"0": model[0]}, (x, y), batch_size=64, kronecker=True)
    A, G = (t.numpy() for t in F["0"])
    # independent reference: inputs of the layer and per-batch output gradients by backward()
    A_ref, G_ref = np.zeros((10, 10)), np.zeros((16, 16))
    for start in range(0, x.shape[0], 64):
        xb = x[start:start + 64]
        h = model[0](xb)
        h.retain_grad()
        torch.nn.functional.cross_entropy(model[2](model[1](h)), y[start:start + 64]).backward()
        A_ref += xb.double().numpy().T @ xb.double().numpy()
        G_ref += h.grad.double().numpy().T @ h.grad.double().numpy()
    model.zero_grad()
    np.testing.assert_allclose(A, A_ref, rtol=1e-6)
    np.testing.assert_allclose(G, G_ref, rtol=1e-5, atol=1e-12)
    small, report = compress(model, "fwsvd", (x, y), rank=3, targets=["0"], batch_size=64, sides="kronecker")
    W = model[0].weight.detach().double().numpy()
    lam_a, lam_g = np.linalg.eigvalsh(A_ref), np.linalg.eigvalsh(G_ref)
    assert lam_a.min() > 1e-6 * lam_a.max() and lam_g.min() > 1e-6 * lam_g.max()   # the floor does not act
    Ah, Gh = _sqrtm(A_ref), _sqrtm(G_ref)
    s = np.linalg.svd(Gh @ W @ Ah, compute_uv=False)
    err = np.linalg.norm(Gh @ (W - _dense(small[0]).numpy()) @ Ah)
    assert err == pytest.approx(np.sqrt((s[3:] ** 2).sum()), rel=1e-5)
    assert report.layers[0].output_relative_error == pytest.approx(np.sqrt((s[3:] ** 2).sum() / (s**2).sum()),
                                                                   rel=1e-5)
    with pytest.raises(ValueError, match="Linear"):
        compress(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3)), "fwsvd",
                 (torch.randn(4, 3, 6, 6), torch.randn(4, 8, 4, 4)), rank=2, sides="kronecker")
