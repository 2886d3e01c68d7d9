"""CoSpaDi: column-sparse codes, planted union-of-subspaces recovery, DictLinear = dense product."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lowrank.nn import compress  # noqa: E402
from lowrank.nn.compression.cospadi import ksvd, whitening  # noqa: E402
from lowrank.nn.layers_dict import DictLinear  # noqa: E402


def _planted(d, k, s, n, seed):
    rng = np.random.default_rng(seed)
    D0 = rng.standard_normal((d, k))
    D0 /= np.linalg.norm(D0, axis=0)
    C0 = np.zeros((k, n))
    for j in range(n):
        C0[rng.choice(k, s, replace=False), j] = rng.standard_normal(s)
    return D0, C0


def test_ksvd_codes_are_column_sparse_and_recover_a_planted_union_of_subspaces():
    D0, C0 = _planted(16, 8, 2, 200, seed=4)
    Y = D0 @ C0
    D, C, errors = ksvd(Y, 8, 2, n_iter=100, n_init=8, tol=1e-20, rng=0)
    assert ((C != 0).sum(axis=0) <= 2).all()
    assert np.linalg.norm(Y - D @ C) / np.linalg.norm(Y) <= 1e-6
    np.testing.assert_allclose(np.linalg.norm(D, axis=0), 1.0, rtol=1e-12)
    # the learned atoms are the planted ones up to sign and order
    match = np.abs(D0.T @ D).max(axis=1)
    assert match.min() > 1 - 1e-6
    # random signals: still at most s non-zeros per column
    _, C, _ = ksvd(np.random.default_rng(1).standard_normal((10, 50)), 6, 3, n_iter=5)
    assert ((C != 0).sum(axis=0) <= 3).all()


def _planted_model(seed=4):
    D0, C0 = _planted(16, 8, 2, 120, seed)
    model = torch.nn.Sequential(torch.nn.Linear(16, 120))
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(C0.T @ D0.T))   # W^T = D0 C0: rows in a union of 2-D spans
    g = torch.Generator().manual_seed(0)
    # correlated, unequally scaled inputs: the whitening is far from the identity
    scale = torch.linspace(0.5, 2.0, 16, dtype=torch.float64)
    mix = torch.eye(16, dtype=torch.float64) + 0.3 * torch.randn(16, 16, generator=g, dtype=torch.float64) / 4
    x = (torch.randn(600, 16, generator=g, dtype=torch.float64) * scale) @ mix
    return model.double(), x


def test_compress_recovers_planted_weights_and_beats_whitened_svd_at_equal_storage():
    model, x = _planted_model()
    small, report = compress(model, "cospadi", x, rank=8, density=0.25, n_iter=100, n_init=8)
    layer = small[0]
    assert isinstance(layer, DictLinear) and layer.nonzeros_per_column == 2
    W = model[0].weight.detach().numpy()
    W_hat = layer.to_dense().numpy()
    L = whitening((x.T @ x / x.shape[0]).numpy(), 1e-6)
    err = np.linalg.norm(L.T @ (W - W_hat).T) / np.linalg.norm(L.T @ W.T)
    assert err <= 1e-6
    assert report.layers[0].output_relative_error == pytest.approx(err, abs=1e-9)
    # whitened SVD (the optimum over one subspace) at no more parameters than the dictionary
    r = report.layers[0].params_after // (16 + 120 + 1)
    U, s, Vt = np.linalg.svd(L.T @ W.T, full_matrices=False)
    svd_err = np.linalg.norm(s[r:]) / np.linalg.norm(s)
    assert r >= 1 and err <= svd_err
    out = small(x).detach().numpy()
    ref = (x.numpy() @ W.T) + model[0].bias.detach().numpy()
    assert np.linalg.norm(out - ref) / np.linalg.norm(ref) < 1e-5


def test_dict_linear_equals_the_dense_product_and_trains():
    rng = np.random.default_rng(0)
    D = torch.from_numpy(rng.standard_normal((7, 5)))
    idx = torch.from_numpy(np.stack([rng.choice(5, 2, replace=False) for _ in range(9)]))
    val = torch.from_numpy(rng.standard_normal((9, 2)))
    b = torch.from_numpy(rng.standard_normal(9))
    layer = DictLinear(D, idx, val, b)
    C = np.zeros((5, 9))
    for o in range(9):
        C[idx[o].numpy(), o] = val[o].numpy()
    W = C.T @ D.numpy().T            # independent dense construction
    x = torch.from_numpy(rng.standard_normal((4, 3, 7)))
    np.testing.assert_allclose(layer(x).detach().numpy(), x.numpy() @ W.T + b.numpy(), atol=1e-12)
    np.testing.assert_allclose(layer.to_dense().numpy(), W, atol=1e-12)
    layer(x).sum().backward()
    assert layer.values.grad is not None and layer.dictionary.grad is not None
    assert sum(p.numel() for p in layer.parameters()) == 7 * 5 + 9 * 2 + 9
    with pytest.raises(ValueError, match="indices"):
        DictLinear(D, idx + 5, val)
    with pytest.raises(ValueError, match="dictionary"):
        DictLinear(D, idx, val[:, :1])


def test_bad_input():
    model = torch.nn.Sequential(torch.nn.Linear(8, 16))
    x = torch.randn(50, 8)
    with pytest.raises(ValueError, match="density"):
        compress(model, "cospadi", x, rank=2, density=0.0)
    with pytest.raises(ValueError, match="calibration"):
        compress(model, "cospadi", None, rank=2)
    with pytest.raises(TypeError, match="cospadi"):
        compress(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)), "cospadi", torch.randn(2, 3, 5, 5), rank=2,
                 targets=["0"])
