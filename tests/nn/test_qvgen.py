"""QVGen's QAT helper: Phi starts at the SVD of the quantization error, its rank decays to exactly 0,
re-factoring keeps the function, and the final model is a plain fake-quantized model."""

import copy

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = nn.functional

from lowrank.nn import QATWithLowRank  # noqa: E402
from lowrank.nn.quant import QuantLayer, quantize  # noqa: E402


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 6, 3, padding=1)
        self.fc1 = nn.Linear(6 * 16, 24)
        self.fc2 = nn.Linear(24, 5)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(torch.relu(self.conv(x)).flatten(1))))


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(16, 2, 4, 4, generator=g, dtype=torch.float64), torch.randint(0, 5, (16,), generator=g)


def _net(seed=0):
    torch.manual_seed(seed)
    return _Net().double()


def _plain_reference(model, x, bits, group):
    """The model's forward with each weight replaced by quantize(W), in torch's functional form."""
    w = {n: quantize(getattr(model, n).weight.detach(), bits, group, "int") for n in ("conv", "fc1", "fc2")}
    h = torch.relu(F.conv2d(x, w["conv"], model.conv.bias, padding=1)).flatten(1)
    return F.linear(torch.relu(F.linear(h, w["fc1"], model.fc1.bias)), w["fc2"], model.fc2.bias)


def test_full_rank_phi_reproduces_the_full_precision_model():
    model = _net()
    base = copy.deepcopy(model)
    QATWithLowRank(model, total_steps=10, bits=3, group_size=16, rank=200)  # rank capped per layer: Phi = W - Q(W)
    x, _ = _data()
    with torch.no_grad():
        torch.testing.assert_close(model(x), base(x), rtol=1e-10, atol=1e-10)


def _train(model, qat, steps, seed=0):
    opt = torch.optim.Adam(qat.parameters(), lr=1e-2)
    history = []
    for step in range(steps):
        x, y = _data(seed + step)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        qat.step(opt)
        history.append(qat.ranks())
    return history


def test_rank_non_increasing_and_zero_at_the_end_then_plain_quantized_model():
    model = _net()
    qat = QATWithLowRank(model, total_steps=40, bits=4, group_size=16, rank=8, shrink=0.5)
    assert qat.stage_ranks == [8, 4, 2, 1, 0]
    history = _train(model, qat, 40)
    for name in qat.layers:
        ranks = [h[name] for h in history]
        assert all(b <= a for a, b in zip(ranks, ranks[1:]))
        cap = qat.layers[name].gamma.numel()  # the conv's (6, 18) matrix allows rank 6
        assert ranks[0] == min(8, cap) and ranks[-1] == 0
        assert set(ranks) >= {min(k, cap) for k in (8, 4, 2, 1, 0)}
    final = qat.finalize()
    assert all(isinstance(getattr(final, n), QuantLayer) for n in ("conv", "fc1", "fc2"))
    assert not any(n.endswith((".A", ".B")) or "gamma" in n for n, _ in final.named_parameters())
    assert not any("gamma" in n for n, _ in final.named_buffers())
    x, _ = _data(99)
    with torch.no_grad():
        torch.testing.assert_close(final(x), _plain_reference(final, x, 4, 16), rtol=1e-12, atol=1e-12)


def test_refactoring_keeps_phi():
    model = _net()
    qat = QATWithLowRank(model, total_steps=100, bits=3, group_size=16, rank=4, decay_start=0.5)
    _train(model, qat, 49)  # moves Phi off its SVD form, before the first decay stage
    layer = qat.layers["fc1"]
    before = layer.phi_weight().detach().clone()
    layer.refactor(4)
    torch.testing.assert_close(layer.phi_weight(), before, rtol=1e-10, atol=1e-12)
    A, B = layer.A.detach(), layer.B.detach()
    s = torch.linalg.svdvals(before)
    # after re-factoring, component j carries the j-th singular value (B_j and A_j share it)
    torch.testing.assert_close(B.norm(dim=0) * A.norm(dim=1), s[:4], rtol=1e-8, atol=1e-12)


def test_rank_zero_is_plain_qat_and_finalize_needs_the_schedule():
    model = _net()
    qat = QATWithLowRank(model, total_steps=5, bits=4, group_size=16, rank=0)
    x, _ = _data()
    with torch.no_grad():
        torch.testing.assert_close(model(x), _plain_reference(_net(), x, 4, 16), rtol=1e-12, atol=1e-12)
    assert qat.ranks() == {"conv": 0, "fc1": 0, "fc2": 0}
    other = _net()
    pending = QATWithLowRank(other, total_steps=10, rank=2)
    with pytest.raises(ValueError, match="not gone"):
        pending.finalize()


@pytest.mark.parametrize("bad, exc", [(dict(total_steps=0), ValueError), (dict(shrink=1.0), ValueError),
                                      (dict(decay_start=0.8, decay_end=0.5), ValueError),
                                      (dict(bits=1), ValueError), (dict(kind="fp"), ValueError),
                                      (dict(rank=1.5), TypeError)])
def test_bad_options(bad, exc):
    kwargs = dict(total_steps=10) | bad
    with pytest.raises(exc, match=next(iter(bad))):
        QATWithLowRank(_net(), **kwargs)
