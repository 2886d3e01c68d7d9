"""Convolutions: SVD of the reshaped kernel against numpy's SVD and torch's dense convolution; AFM's
error equals the dropped eigenvalues of the channel covariance computed densely; the compressed
model trains (gradients reach both factors, checked against finite differences)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from lowrank.nn import LowRankConv, compress  # noqa: E402
from lowrank.nn.compression._statistics import collect_output_statistics  # noqa: E402
from lowrank.nn.compression.afm import afm_replacement  # noqa: E402

CONVS = {
    1: (torch.nn.Conv1d, F.conv1d, (14,)),
    2: (torch.nn.Conv2d, F.conv2d, (9, 8)),
    3: (torch.nn.Conv3d, F.conv3d, (5, 6, 5)),
}
GEOMETRY = [dict(stride=1, padding=0, dilation=1), dict(stride=2, padding=1, dilation=1),
            dict(stride=1, padding=2, dilation=2)]


def _conv(dims, geometry, seed=0, out=10, inc=3, k=3, bias=True):
    torch.manual_seed(seed)
    return CONVS[dims][0](inc, out, k, bias=bias, dtype=torch.float64, **geometry)


def _images(dims, n=24, inc=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    # Correlated channels and smooth-ish signals, so the output spectrum decays.
    base = torch.randn(n, 1, *CONVS[dims][2], generator=g, dtype=torch.float64)
    mix = torch.randn(inc, 1, dtype=torch.float64, generator=g)
    return base * mix.reshape(1, inc, *([1] * dims)) + 0.1 * torch.randn(n, inc, *CONVS[dims][2], generator=g,
                                                                         dtype=torch.float64)


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("geometry", GEOMETRY)
def test_svd_conv_is_the_truncated_reshaped_kernel(dims, geometry):
    conv = _conv(dims, geometry)
    k = 4
    small, rep = compress(torch.nn.Sequential(conv), "svd", rank=k)
    W = conv.weight.detach().numpy()
    U, s, Vh = np.linalg.svd(W.reshape(W.shape[0], -1), full_matrices=False)
    truncated = ((U[:, :k] * s[:k]) @ Vh[:k]).reshape(W.shape)
    x = _images(dims)
    want = CONVS[dims][1](x, torch.from_numpy(truncated), conv.bias, **geometry)
    torch.testing.assert_close(small(x), want, rtol=1e-10, atol=1e-10)
    assert isinstance(small[0], LowRankConv) and small[0].rank == k
    e = s**2
    assert abs(rep.layers[0].output_relative_error - np.sqrt(e[k:].sum() / e.sum())) < 1e-12
    assert rep.layers[0].params_after == k * (W[0].size + 1 + W.shape[0]) + W.shape[0]


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("geometry", GEOMETRY)
def test_afm_conv_error_is_the_dropped_eigenvalues(dims, geometry):
    conv = _conv(dims, geometry, seed=dims, out=16, inc=4)
    x = _images(dims, seed=1, inc=4)
    with torch.no_grad():
        y = conv(x)
    rows = y.movedim(1, -1).reshape(-1, y.shape[1]).numpy()  # batch and positions pooled
    eig = np.linalg.eigvalsh(np.cov(rows.T, bias=True))[::-1]
    for k in (1, 3, 6):
        small, rep = compress(torch.nn.Sequential(conv), "afm", x, rank=k)
        assert rep.layers[0].compressed
        with torch.no_grad():
            y_hat = small(x)
        err2 = ((y - y_hat) ** 2).sum(1).mean().item()  # mean over batch and positions of ||y - y_hat||^2
        np.testing.assert_allclose(err2, eig[k:].sum(), rtol=1e-9, atol=1e-12)
        rel = np.sqrt(eig[k:].sum() / (rows**2).sum(1).mean())
        assert abs(rep.layers[0].output_relative_error - rel) < 1e-10
        assert abs(rep.layers[0].energy_kept - eig[:k].sum() / eig.sum()) < 1e-10
        # The best rank-k affine reconstruction: weight SVD at the same rank does no better.
        svd, _ = compress(torch.nn.Sequential(conv), "svd", rank=k)
        with torch.no_grad():
            assert err2 <= ((y - svd(x)) ** 2).sum(1).mean().item() + 1e-12


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_afm_conv_at_full_rank_is_exact_and_merges_back(dims):
    conv = _conv(dims, GEOMETRY[1], seed=5, out=6)
    x = _images(dims, seed=2)
    stats = collect_output_statistics(torch.nn.Sequential(conv), {"0": conv}, (x,), 4096, None, False)["0"]
    _, V = stats.principal_subspace()
    new = afm_replacement(conv, V, stats)
    with torch.no_grad():
        torch.testing.assert_close(new(x), conv(x), rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(new.to_conv()(x), conv(x), rtol=1e-10, atol=1e-10)


def test_afm_conv_without_bias_and_unbatched_input():
    conv = _conv(1, GEOMETRY[0], seed=6, bias=False)
    x = _images(1, seed=3)
    small, rep = compress(torch.nn.Sequential(conv), "afm", [(xi,) for xi in x], rank=4)  # (C, L) batches
    batched, rep_batched = compress(torch.nn.Sequential(conv), "afm", x, rank=4)
    with torch.no_grad():
        torch.testing.assert_close(small(x), batched(x), rtol=1e-9, atol=1e-9)
    assert abs(rep.layers[0].output_relative_error - rep_batched.layers[0].output_relative_error) < 1e-10


class ConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            # Tanh, not ReLU: a finite difference across a kink would not test the gradient.
            torch.nn.Conv2d(3, 12, 3, padding=1, dtype=torch.float64), torch.nn.Tanh(),
            torch.nn.Conv2d(12, 16, 3, stride=2, dtype=torch.float64), torch.nn.Tanh())
        self.head = torch.nn.Linear(16 * 16, 5, dtype=torch.float64)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


@pytest.mark.parametrize("method", ["svd", "afm"])
def test_compressed_model_trains(method):
    torch.manual_seed(0)
    model = ConvNet()
    x = torch.randn(8, 3, 9, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    target = torch.randn(8, 5, dtype=torch.float64)
    calib = (x,) if method == "afm" else None
    small, rep = compress(model, method, calib, rank=3, targets=["features.*"])
    assert all(r.compressed for r in rep.layers)
    factors = {n: p for n, p in small.named_parameters() if ".down." in n or ".up." in n}
    assert len(factors) == 8  # two convolutions x (down, up) x (weight, bias)
    loss = F.mse_loss(small(x), target)
    loss.backward()
    for name, p in factors.items():
        assert p.grad is not None and float(p.grad.abs().max()) > 0, name
        # The gradient is the true derivative: a central finite difference along a random direction.
        d = torch.randn_like(p)
        with torch.no_grad():
            p += 1e-6 * d
            up = F.mse_loss(small(x), target)
            p -= 2e-6 * d
            down = F.mse_loss(small(x), target)
            p += 1e-6 * d
        fd = (up - down) / 2e-6
        assert abs(float((p.grad * d).sum()) - float(fd)) <= 1e-6 * max(1.0, abs(float(fd))), name
    opt = torch.optim.SGD(small.parameters(), lr=0.05)
    first = float(loss.detach())
    for _ in range(5):
        opt.zero_grad()
        loss = F.mse_loss(small(x), target)
        loss.backward()
        opt.step()
    assert float(F.mse_loss(small(x), target).detach()) < first


def test_grouped_conv_is_refused():
    model = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3, groups=2))
    with pytest.raises(ValueError, match="groups=2"):
        compress(model, "svd", rank=2)


def test_low_rank_conv_validates_sizes():
    with pytest.raises(ValueError, match="`rank`"):
        LowRankConv(3, 8, 3, rank=9, dims=2)  # rank <= min(8, 27)
    with pytest.raises(ValueError, match="`in_channels`"):
        LowRankConv(0, 8, 3, rank=1)
    with pytest.raises(TypeError, match="`out_channels`"):
        LowRankConv(3, 8.5, 3, rank=1)
    with pytest.raises(ValueError, match="`kernel_size`"):
        LowRankConv(3, 8, (3, 3, 3), rank=1, dims=2)
    with pytest.raises(ValueError, match="`dims`"):
        LowRankConv(3, 8, 3, rank=1, dims=4)
