"""LoRA against HF PEFT's LoRA (same model, targets, rank, alpha and initial factors): outputs,
adapter gradients and merged weights after identical SGD steps; plus LoRA's own closed forms."""

import copy
import math

import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")
nn = torch.nn
F = nn.functional

from lowrank.nn import adapt  # noqa: E402


class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 6, padding_idx=1)
        self.conv = nn.Conv2d(2, 4, 3, padding=1, stride=2)
        self.fc1 = nn.Linear(4 * 3 * 3 + 6, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, img, idx):
        h = torch.cat([self.conv(img).relu().flatten(1), self.emb(idx).mean(1)], 1)
        return self.fc2(self.fc1(h).relu())


def _batch(seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(8, 2, 6, 6, generator=g), torch.randint(0, 20, (8, 5), generator=g), torch.randn(8, 3, generator=g)


def _peft_factors(peft_model, path):
    layer = peft_model.base_model.model.get_submodule(path)
    if hasattr(layer, "lora_embedding_A") and "default" in layer.lora_embedding_A:
        # PEFT stores an embedding's A as (r, num); ours is (num, r)
        return layer.lora_embedding_A["default"], layer.lora_embedding_B["default"], True
    return layer.lora_A["default"].weight, layer.lora_B["default"].weight, False


def _copy_factors_into_peft(adapter, peft_model):
    with torch.no_grad():
        for path, m in adapter.methods().items():
            A, B, emb = _peft_factors(peft_model, path)
            A.copy_(m.A.T if emb else m.A)
            B.copy_(m.B.reshape(B.shape))


def _grads_match(adapter, peft_model, tol):
    for path, m in adapter.methods().items():
        A, B, emb = _peft_factors(peft_model, path)
        gA = A.grad.T if emb else A.grad
        assert torch.allclose(m.A.grad, gA, atol=tol, rtol=0), path
        assert torch.allclose(m.B.grad, B.grad.reshape(m.B.shape), atol=tol, rtol=0), path


@pytest.mark.parametrize("targets", [["fc1", "fc2"], ["conv"], ["emb"], ["emb", "conv", "fc1", "fc2"]])
def test_lora_equals_peft_after_sgd_steps(targets):
    torch.manual_seed(0)
    model = Mixed()
    reference = peft.get_peft_model(copy.deepcopy(model), peft.LoraConfig(
        r=2, lora_alpha=6, target_modules=targets, lora_dropout=0.0))
    adapter = adapt(model, "lora", targets=targets, rank=2, alpha=6, rng=0)
    # move both off the zero factor (else the first gradient of the other factor is zero)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in adapter.trainable_parameters():
            p.copy_(0.2 * torch.randn(p.shape, generator=g))
    _copy_factors_into_peft(adapter, reference)
    ours = torch.optim.SGD(adapter.trainable_parameters(), lr=0.02)
    theirs = torch.optim.SGD([p for p in reference.parameters() if p.requires_grad], lr=0.02)
    assert sum(p.numel() for p in reference.parameters() if p.requires_grad) == adapter.num_trainable
    for step in range(4):
        img, idx, y = _batch(step)
        out, ref = model(img, idx), reference(img, idx)
        assert torch.allclose(out, ref, atol=1e-5, rtol=0)
        ours.zero_grad()
        theirs.zero_grad()
        F.mse_loss(out, y).backward()
        F.mse_loss(ref, y).backward()
        _grads_match(adapter, reference, 1e-5)
        assert torch.isfinite(out).all()
        ours.step()
        theirs.step()
    img, idx, _ = _batch(99)
    with torch.no_grad():
        assert torch.allclose(model(img, idx), reference(img, idx), atol=1e-5, rtol=0)
        adapter.merge()
        merged_peft = reference.merge_and_unload()
        for path in targets:
            ours_w = model.get_submodule(path).base_layer.weight
            assert torch.allclose(ours_w, merged_peft.get_submodule(path).weight, atol=1e-6, rtol=0), path


def test_default_init_zeroes_the_factor_peft_zeroes():
    torch.manual_seed(0)
    model = Mixed()
    reference = peft.get_peft_model(copy.deepcopy(model), peft.LoraConfig(
        r=2, target_modules=["emb", "conv", "fc1"], lora_dropout=0.0))
    adapter = adapt(model, "lora", targets=["emb", "conv", "fc1"], rank=2, rng=0)
    for path, m in adapter.methods().items():
        A, B, emb = _peft_factors(reference, path)
        assert bool((A == 0).all()) == bool((m.A == 0).all()), path
        assert bool((B == 0).all()) == bool((m.B == 0).all()), path
        if not emb:  # PEFT: kaiming-uniform(a=sqrt(5)) A, bound 1/sqrt(fan_in)
            bound = 1 / math.sqrt(m.A[0].numel())
            assert m.A.abs().max() <= bound and m.A.abs().max() > 0.5 * bound


def test_lora_delta_is_scaled_product_of_factors():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(7, 5), nn.Conv1d(5, 3, 2), nn.Embedding(9, 4))
    adapter = adapt(model, targets=["0", "1", "2"], rank=2, alpha=3.0, rng=0, init="gaussian")
    with torch.no_grad():
        for p in adapter.trainable_parameters():
            p.normal_(generator=torch.Generator().manual_seed(p.numel()))
    m = adapter.methods()
    s = 3.0 / 2
    assert torch.allclose(m["0"].delta_weight(), s * m["0"].B @ m["0"].A)
    assert torch.allclose(m["1"].delta_weight(), s * torch.einsum("or,rik->oik", m["1"].B, m["1"].A))
    assert torch.allclose(m["2"].delta_weight(), s * m["2"].A @ m["2"].B.T)
    assert adapter.num_trainable == 2 * (7 + 5) + 2 * (5 * 2 + 3) + 2 * (9 + 4)


def test_same_seed_same_factors_and_alpha_default():
    make = lambda: nn.Sequential(nn.Linear(6, 6), nn.Linear(6, 6))  # noqa: E731
    a, b = adapt(make(), rng=3, rank=2), adapt(make(), rng=3, rank=2)
    c = adapt(make(), rng=4, rank=2)
    assert a.config.alpha == 2.0 and a.methods()["0"].scaling == 1.0
    assert torch.equal(a.methods()["0"].A, b.methods()["0"].A)
    assert not torch.equal(a.methods()["0"].A, c.methods()["0"].A)
    assert not torch.equal(a.methods()["0"].A, a.methods()["1"].A)  # each layer its own stream


def test_dropout_is_on_the_adapter_branch_only():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 32))
    base = copy.deepcopy(model)
    adapter = adapt(model, rank=4, dropout=0.5, rng=0)
    with torch.no_grad():
        adapter.methods()["0"].B.fill_(0.1)
    x = torch.randn(16, 32)
    model.train()
    a, b = model(x), model(x)
    assert not torch.equal(a, b)  # stochastic in training
    m = adapter.methods()["0"]
    model.eval()  # eval: no dropout, the exact base + (alpha / r) B A x
    expected = base(x) + F.linear(F.linear(x, m.A), m.B) * m.scaling
    assert torch.allclose(model(x), expected, atol=1e-6)
