"""LQ-LoRA: the alternation's error, the Fisher-weighted variant, the "lq" compressor with uniform and
ILP-allocated bits, fine-tuning and merging, and the "lq_lora" adapter."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from lowrank.nn import adapt, compress  # noqa: E402
from lowrank.nn.quant import LQLinear, QuantConfig, lq_decompose, quantize, storage_bits  # noqa: E402


def _planted(m=48, n=80, k=6, noise=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(m, k, generator=g, dtype=torch.float64) @ torch.randn(k, n, generator=g, dtype=torch.float64)
    return low + noise * torch.randn(m, n, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("bits, kind", [(2, "nf"), (3, "nf"), (4, "int")])
def test_alternation_error_non_increasing_and_below_plain_quantization(bits, kind):
    W = _planted()
    Q, L1, L2, errors = lq_decompose(W, 6, bits, 32, kind)
    plain = float((W - quantize(W, bits, 32, kind)).norm())
    assert errors[0] == pytest.approx(plain, rel=1e-12)
    assert all(b < a for a, b in zip(errors, errors[1:])) and len(errors) > 1
    assert float((W - Q - L1 @ L2).norm()) == pytest.approx(errors[-1], rel=1e-12)
    # Q really is a b-bit grid: at most 2^b values in every group
    for group in Q.reshape(-1, 32):
        assert len(torch.unique(group)) <= 2**bits
    # on a planted low-rank-plus-noise matrix the low-rank part takes most of what quantization loses
    assert errors[-1] < 0.8 * errors[0]


def test_fisher_weighted_variant_minimizes_the_weighted_error():
    W = _planted(seed=1)
    g = torch.Generator().manual_seed(5)
    rows = torch.rand(W.shape[0], 1, generator=g, dtype=torch.float64) ** 4 + 1e-3
    cols = torch.rand(1, W.shape[1], generator=g, dtype=torch.float64) ** 4 + 1e-3
    fisher = rows * cols
    Qw, L1w, L2w, errors = lq_decompose(W, 4, 3, 32, fisher=fisher)
    Qu, L1u, L2u, _ = lq_decompose(W, 4, 3, 32)
    weighted = lambda Q, L1, L2: float(torch.sqrt((fisher * (W - Q - L1 @ L2) ** 2).sum()))  # noqa: E731
    assert weighted(Qw, L1w, L2w) == pytest.approx(errors[-1], rel=1e-12)
    assert errors[-1] < weighted(Qu, L1u, L2u)
    assert all(b < a for a, b in zip(errors, errors[1:]))


def test_randomized_svd_path_matches_exact_closely():
    W = _planted(64, 64, 4, 0.05, seed=2)
    exact = lq_decompose(W, 4, 4, 64, svd="exact").errors[-1]
    randomized = lq_decompose(W, 4, 4, 64, svd="randomized", rng=0).errors[-1]
    assert randomized == pytest.approx(exact, rel=0.05)


def test_bad_arguments():
    W = _planted()
    with pytest.raises(ValueError, match="rank"):
        lq_decompose(W, 100)
    with pytest.raises(TypeError, match="weight"):
        lq_decompose(np.ones((3, 3)), 1)
    with pytest.raises(ValueError, match="fisher"):
        lq_decompose(W, 2, fisher=torch.ones(3, 3))
    with pytest.raises(ValueError, match="fisher"):
        lq_decompose(W, 2, fisher=-torch.ones_like(W))
    model = nn.Sequential(nn.Linear(16, 8))
    with pytest.raises(ValueError, match="budget_bits"):
        compress(model, "lq", rank=2, bits=3, budget_bits=3.5)
    with pytest.raises(ValueError, match="budget"):
        compress(model, "lq", rank=2, budget_bits=1.0)
    with pytest.raises(ValueError, match="bits"):
        compress(model, "lq", rank=2, bits=12)


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 96), nn.ReLU(), nn.Linear(96, 48), nn.ReLU(), nn.Linear(48, 10)).double()


def test_compressor_layers_are_q_plus_low_rank_and_report_the_error():
    model = _mlp()
    small, report = compress(model, "lq", rank=4, bits=3, targets=["0", "2"])
    x = torch.randn(5, 64, dtype=torch.float64)
    h = x
    for name, row in zip(["0", "2"], report.layers):
        layer, W = small.get_submodule(name), model.get_submodule(name).weight.detach()
        assert isinstance(layer, LQLinear) and layer.config.bits == 3
        Q, L1, L2, errors = lq_decompose(W, 4, 3, 64)  # independent call: the same decomposition
        torch.testing.assert_close(layer.q_weight, Q, rtol=0, atol=0)
        assert row.output_relative_error == pytest.approx(errors[-1] / float(W.norm()), rel=1e-9)
        h = torch.relu(h @ (Q + L1 @ L2).T + model.get_submodule(name).bias)
    reference = h @ model[4].weight.T + model[4].bias
    torch.testing.assert_close(small(x), reference, rtol=1e-10, atol=1e-10)


def test_merge_after_finetuning_equals_unmerged():
    model = _mlp()
    small, _ = compress(model, "lq", rank=4, bits=3, targets=["0", "2"])
    trainable = [p for n, p in small.named_parameters() if "L1" in n or "L2" in n]
    for p in small.parameters():
        p.requires_grad_(any(p is q for q in trainable))
    opt = torch.optim.Adam(trainable, lr=1e-2)
    g = torch.Generator().manual_seed(0)
    before = {n: b.clone() for n, b in small.named_buffers()}
    for _ in range(10):
        x, y = torch.randn(32, 64, generator=g, dtype=torch.float64), torch.randint(0, 10, (32,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(small(x), y).backward()
        opt.step()
    assert all(torch.equal(before[n], b) for n, b in small.named_buffers())  # Q frozen
    merged = nn.Sequential(*[m.merged() if isinstance(m, LQLinear) else m for m in small])
    x = torch.randn(7, 64, dtype=torch.float64)
    assert all(type(m) is not LQLinear for m in merged)
    torch.testing.assert_close(merged(x), small(x), rtol=1e-12, atol=1e-12)


def test_ilp_allocation_is_feasible_and_no_worse_than_uniform():
    model = _mlp(1)
    targets = ["0", "2"]
    budget = 3.25
    configs = ((2, 32), (2, 64), (3, 64), (4, 64), (4, 128), (8, 128))
    small, _ = compress(model, "lq", rank=4, budget_bits=budget, configs=configs, targets=targets)
    sizes = [model.get_submodule(t).weight.numel() for t in targets]
    chosen = [small.get_submodule(t).config for t in targets]
    avg = sum(storage_bits(c) * s for c, s in zip(chosen, sizes)) / sum(sizes)
    assert avg <= budget
    uniform, _ = compress(model, "lq", rank=4, bits=3, group_size=64, targets=targets)  # 3.25 bits each

    def total_error(m):
        return sum(float(((model.get_submodule(t).weight - m.get_submodule(t).merged().weight) ** 2).sum().detach())
                   for t in targets)

    assert total_error(small) <= total_error(uniform) * (1 + 1e-12)


def test_lq_lora_adapter_is_q_plus_low_rank_and_merges_dense():
    model = _mlp()
    W = model[0].weight.detach().clone()
    adapter = adapt(model, "lq_lora", targets=["0"], rank=4, bits=3, group_size=32, rng=0)
    Q, L1, L2, _ = lq_decompose(W, 4, 3, 32)
    x = torch.randn(6, 64, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model[0](x), x @ (Q + L1 @ L2).T + model[0].bias, rtol=1e-12, atol=1e-12)
    assert adapter.num_trainable == 4 * (64 + 96)
    adapter.merge()
    torch.testing.assert_close(model[0].weight, Q + L1 @ L2, rtol=1e-12, atol=1e-12)


def test_diagonal_fisher_matches_analytic_and_drives_the_weighted_compressor():
    from lowrank.nn.quant import diagonal_fisher

    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 12)).double()
    X, T = torch.randn(20, 16, generator=g, dtype=torch.float64), torch.randn(20, 12, generator=g, dtype=torch.float64)
    batches = [(X[i:i + 1], T[i:i + 1]) for i in range(20)]
    fisher = diagonal_fisher(model, batches, lambda m, b: 0.5 * ((m(b[0]) - b[1]) ** 2).sum(), ["0"])
    with torch.no_grad():
        R = model(X) - T  # per-example gradient of W is r_i x_i^T
    expected = ((R[:, :, None] * X[:, None, :]) ** 2).mean(0)
    torch.testing.assert_close(fisher["0"], expected, rtol=1e-12, atol=1e-14)
    assert all(p.requires_grad for p in model.parameters())  # flags restored
    small, report = compress(model, "lq", rank=2, bits=3, group_size=16, fisher=fisher)
    Q, L1, L2, errors = lq_decompose(model[0].weight, 2, 3, 16, fisher=fisher["0"])
    torch.testing.assert_close(small[0].merged().weight, Q + L1 @ L2, rtol=0, atol=1e-12)
    unweighted = lq_decompose(model[0].weight, 2, 3, 16)
    assert not torch.allclose(unweighted.L1 @ unweighted.L2, L1 @ L2)  # the Fisher weights were used
    assert report.layers[0].compressed and len(errors) > 1
    with pytest.raises(ValueError, match="fisher"):
        compress(model, "lq", rank=2, bits=3, fisher={"0": torch.ones(3, 3)})


def test_lq_lora_at_init_is_q_plus_low_rank_on_every_layer_kind():
    """What replaces the core's no-op-at-init invariant for lq_lora: each adapted layer starts at
    Q + L1 L2 of its weight matrix, computed here by an independent lq_decompose call."""
    import copy

    from tests.nn.test_adapt_methods import _inputs, _model

    model = _model(torch.float64)
    reference = copy.deepcopy(model)
    adapt(model, "lq_lora", rank=2, bits=3, group_size=16, rng=0)
    with torch.no_grad():
        for name in ["emb", "bag", "bagmax", "c1", "c2", "c3", "fc"]:
            layer = reference.get_submodule(name)
            W = layer.weight
            M = W if name in ("emb", "bag", "bagmax") else W.reshape(W.shape[0], -1)
            Q, L1, L2, _ = lq_decompose(M, 2, 3, 16)
            layer.weight.copy_((Q + L1 @ L2).reshape(W.shape))
        x = _inputs(dtype=torch.float64)
        torch.testing.assert_close(model(*x), reference(*x), rtol=1e-10, atol=1e-10)
        assert (model(*x) - _model(torch.float64)(*x)).abs().max() > 1e-3  # and it is not the base model
