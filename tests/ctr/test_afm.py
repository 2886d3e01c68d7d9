"""AFM compression against exact references: full rank is the identity, span-exactness, dense
covariance, merged layers, and AFM beating weight SVD on output error."""

import pytest

torch = pytest.importorskip("torch")

from lowrank.ctr import OutputStatistics, compress_afm, compress_weight_svd  # noqa: E402
from lowrank.nn import LowRankEmbeddingBag, LowRankLinear, merge_linear  # noqa: E402


@pytest.fixture
def mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(12, 10, dtype=torch.float64), torch.nn.ReLU(), torch.nn.Linear(10, 8, dtype=torch.float64)
    )


def _x(n=512, d=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64)


def test_streaming_statistics_equal_dense():
    Y = _x(1000, 6)
    stats = OutputStatistics(6)
    for chunk in Y.split(77):
        stats.update(chunk)
    torch.testing.assert_close(stats.mean, Y.mean(0))
    torch.testing.assert_close(stats.covariance, torch.cov(Y.T, correction=0))


def test_full_rank_is_exact(mlp):
    x = _x()
    small, report = compress_afm(mlp, [(x,)], rank=8, targets=["2"])
    torch.testing.assert_close(small(x), mlp(x))
    assert not report.layers[0].compressed  # rank 8 of a 10->8 layer saves nothing


def test_factorized_full_rank_linear_is_exact():
    """Build the AFM factors at full rank explicitly (bypassing the 'no saving' rule)."""
    from lowrank.ctr.afm import _afm_module, _collect_statistics

    torch.manual_seed(1)
    layer = torch.nn.Linear(6, 5, dtype=torch.float64)
    x = _x(300, 6)
    stats = _collect_statistics(torch.nn.Sequential(layer), {"0": layer}, [(x,)], 4096, None, False)["0"]
    _, V = stats.principal_subspace()
    new = _afm_module(layer, V, stats)
    torch.testing.assert_close(new(x), layer(x))


def test_mean_correction_exact_on_span_plus_mean():
    """Outputs lying in span(U_k) + mu are reproduced exactly by the rank-k layer."""
    torch.manual_seed(2)
    layer = torch.nn.Linear(10, 9, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    # Inputs in a 3-dim affine subspace: outputs lie in a 3-dim affine subspace of R^9.
    x = torch.randn(400, 3, generator=g, dtype=torch.float64) @ torch.randn(3, 10, generator=g, dtype=torch.float64)
    x = x + torch.randn(10, generator=g, dtype=torch.float64)
    model = torch.nn.Sequential(layer)
    small, report = compress_afm(model, [(x,)], rank=3)
    assert report.layers[0].compressed and report.layers[0].rank == 3
    torch.testing.assert_close(small(x), layer(x), rtol=1e-9, atol=1e-9)
    fresh = torch.randn(50, 3, generator=g, dtype=torch.float64) @ torch.randn(3, 10, generator=g, dtype=torch.float64)
    assert not torch.allclose(small(fresh), layer(fresh), atol=1e-6)  # off the subspace it is approximate


def test_embedding_afm_and_merge_with_next_linear():
    torch.manual_seed(4)
    emb = torch.nn.Embedding(50, 8, dtype=torch.float64)
    with torch.no_grad():  # a table whose rows lie in a 2-D affine subspace
        emb.weight.copy_(torch.randn(50, 2, dtype=torch.float64) @ torch.randn(2, 8, dtype=torch.float64) + 1.5)
    head = torch.nn.Linear(8, 3, dtype=torch.float64)
    model = torch.nn.Sequential(emb, head)
    idx = torch.arange(50)
    small, report = compress_afm(model, [(idx,)], rank=2, targets=["0"])
    torch.testing.assert_close(small(idx), model(idx))
    low = small[0]
    merged = merge_linear(low.up, head)  # fold the up-projection into the next layer
    torch.testing.assert_close(merged(low.codes(idx)), head(low(idx)))
    assert report.layers[0].params_after < report.layers[0].params_before


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_embedding_bag(mode):
    torch.manual_seed(5)
    bag = torch.nn.EmbeddingBag(40, 6, mode=mode, dtype=torch.float64)
    with torch.no_grad():
        bag.weight.copy_(torch.randn(40, 2, dtype=torch.float64) @ torch.randn(2, 6, dtype=torch.float64) + 0.7)
    g = torch.Generator().manual_seed(0)
    inputs = torch.randint(0, 40, (200, 3), generator=g)
    small, report = compress_afm(torch.nn.Sequential(bag), [(inputs,)], rank=2)
    assert isinstance(small[0], LowRankEmbeddingBag)
    torch.testing.assert_close(small(inputs), bag(inputs), rtol=1e-8, atol=1e-8)
    flat, offsets = torch.tensor([1, 2, 3, 4, 5]), torch.tensor([0, 2])
    torch.testing.assert_close(small[0](flat, offsets), bag(flat, offsets), rtol=1e-8, atol=1e-8)


def test_afm_error_is_below_weight_svd_at_every_rank():
    """AFM minimizes the output error on the calibration distribution; weight SVD does not."""
    torch.manual_seed(6)
    layer = torch.nn.Linear(30, 20, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    scales = torch.logspace(0, -2, 30, dtype=torch.float64)
    x = torch.randn(2000, 30, generator=g, dtype=torch.float64) * scales  # anisotropic inputs
    y = layer(x)
    for k in (2, 5, 10):
        a, ra = compress_afm(torch.nn.Sequential(layer), [(x,)], rank=k)
        s, _ = compress_weight_svd(torch.nn.Sequential(layer), rank=k)
        err_a = torch.linalg.norm(a(x) - y)
        err_s = torch.linalg.norm(s(x) - y)
        assert err_a < err_s
        # The report's analytic error equals the measured one.
        measured = float(torch.sqrt(((a(x) - y) ** 2).sum(1).mean() / (y**2).sum(1).mean()).detach())
        assert abs(ra.layers[0].output_relative_error - measured) < 1e-8


def test_weight_svd_matches_truncated_svd():
    torch.manual_seed(7)
    layer = torch.nn.Linear(12, 10, dtype=torch.float64)
    small, _ = compress_weight_svd(torch.nn.Sequential(layer), rank=3)
    U, s, Vh = torch.linalg.svd(layer.weight.detach())
    torch.testing.assert_close(small[0].to_linear().weight, (U[:, :3] * s[:3]) @ Vh[:3])


def test_budget_and_energy(mlp):
    x = _x()
    _, rep = compress_afm(mlp, [(x,)], budget=0.5, targets=["0", "2"])
    before = sum(r.params_before for r in rep.layers)
    after = sum(r.params_after for r in rep.layers)
    assert after <= 0.5 * before + 1e-9
    _, rep = compress_afm(mlp, [(x,)], energy=0.99, targets=["0"])
    assert rep.layers[0].energy_kept >= 0.99 or not rep.layers[0].compressed


def test_lowrank_linear_to_linear_round_trip():
    layer = LowRankLinear(7, 5, 2)
    x = torch.randn(3, 7)
    torch.testing.assert_close(layer.to_linear()(x), layer(x))


def test_bad_input(mlp):
    x = _x()
    with pytest.raises(ValueError, match="exactly one"):
        compress_afm(mlp, [(x,)])
    with pytest.raises(ValueError, match="exactly one"):
        compress_afm(mlp, [(x,)], rank=2, energy=0.9)
    with pytest.raises(ValueError, match="larger than the output width"):
        compress_afm(mlp, [(x,)], rank=9, targets=["2"])
    with pytest.raises(ValueError, match="no batches"):
        compress_afm(mlp, [], rank=2)
    with pytest.raises(TypeError, match="only Linear, Embedding"):
        compress_afm(mlp, [(x,)], rank=2, targets=["1"])
    with pytest.raises(ValueError, match="matches no module"):
        compress_afm(mlp, [(x,)], rank=2, targets=["nope*"])
    with pytest.raises(ValueError, match="mode='max'"):
        compress_afm(torch.nn.Sequential(torch.nn.EmbeddingBag(5, 3, mode="max")), [(torch.zeros(2, 2).long(),)], rank=1)
    with pytest.raises(ValueError, match="`energy`"):
        compress_afm(mlp, [(x,)], energy=1.5)
