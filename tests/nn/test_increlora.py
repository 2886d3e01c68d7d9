"""IncreLoRA and its RankAllocator: the schedule, the budget, continuity across growth, the optimizer
state (against a hand-written Adam step), the score (against a dense autograd reference), the
orthogonality penalty, save/load of grown shapes and bad input.

The core invariants of the "increlora" method itself run in test_adapt_methods.py with every method.
"""

import copy
import math

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = nn.functional

from lowrank.nn import RankAllocator, adapt, load_adapter  # noqa: E402


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 6, 3, padding=1)
        self.fc1 = nn.Linear(6 * 16, 24)
        self.fc2 = nn.Linear(24, 3)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(torch.tanh(self.conv(x)).flatten(1))))


def _setup(seed=0, target_rank=3.0, warmup=3, interval=2, per_step=1, lr=1e-2):
    torch.manual_seed(seed)
    model = Net()
    adapter = adapt(model, "increlora", targets=["conv", "fc1", "fc2"], rank=1, rng=seed)
    opt = torch.optim.Adam(adapter.trainable_parameters(), lr=lr)
    alloc = RankAllocator(adapter, opt, target_rank=target_rank, warmup=warmup, interval=interval,
                          per_step=per_step, rng=seed)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(16, 2, 4, 4, generator=g)
    y = torch.randn(16, 3, generator=g)
    return model, adapter, opt, alloc, x, y


def _train_step(model, opt, alloc, x, y):
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).mean() + alloc.regularization()
    loss.backward()
    opt.step()


def test_ranks_grow_only_at_scheduled_calls_until_the_target():
    model, adapter, opt, alloc, x, y = _setup(target_rank=3.0, warmup=3, interval=2, per_step=2)
    totals = [sum(alloc.ranks().values())]
    for _ in range(20):
        _train_step(model, opt, alloc, x, y)
        grown = alloc.step(model)
        totals.append(sum(alloc.ranks().values()))
        assert totals[-1] - totals[-2] == len(grown)
    changed = [t for t in range(1, len(totals)) if totals[t] != totals[t - 1]]
    # scheduled calls: t > warmup and (t - warmup) % interval == 0 -> 5, 7, 9; 3 -> 9 ranks by 2 (last by 1)
    assert changed == [5, 7, 9]
    assert [totals[t] - totals[t - 1] for t in changed] == [2, 2, 2]
    assert totals[-1] / 3 <= 3.0 and totals[-1] == 9
    assert [call for call, _ in alloc.history_] == [5, 5, 7, 7, 9, 9]


def test_budget_is_never_exceeded_with_a_fractional_target():
    model, adapter, opt, alloc, x, y = _setup(target_rank=2.5, warmup=0, interval=1, per_step=3)
    for _ in range(6):
        _train_step(model, opt, alloc, x, y)
        alloc.step(model)
    assert sum(alloc.ranks().values()) == 7  # floor(2.5 * 3)
    assert sum(alloc.ranks().values()) / 3 <= 2.5


def test_outputs_are_continuous_across_a_rank_increase():
    model, adapter, opt, alloc, x, y = _setup(warmup=2, interval=1)
    grew = 0
    for _ in range(5):
        _train_step(model, opt, alloc, x, y)
        with torch.no_grad():
            before = model(x)
        grown = alloc.step(model)
        with torch.no_grad():
            after = model(x)
        grew += len(grown)
        assert (after - before).abs().max() <= 1e-6
    assert grew == 3
    # the grown terms are real parameters: they train after growth
    _train_step(model, opt, alloc, x, y)
    for m in adapter.methods().values():
        assert m.E.grad is not None and m.E.grad.shape == m.E.shape


def test_optimizer_keeps_the_old_moments_and_starts_new_ones_at_zero():
    model, adapter, opt, alloc, x, y = _setup(warmup=3, interval=1, per_step=3, lr=1e-2)
    for _ in range(3):
        _train_step(model, opt, alloc, x, y)
        assert alloc.step(model) == []
    _train_step(model, opt, alloc, x, y)
    old = {path: {n: (getattr(m, n).detach().clone(), {k: (v.clone() if torch.is_tensor(v) else v)
                                                       for k, v in opt.state[getattr(m, n)].items()})
                  for n in ("A", "B", "E")} for path, m in adapter.methods().items()}
    grown = alloc.step(model)
    assert sorted(grown) == ["conv", "fc1", "fc2"]
    trainable = {id(p) for p in adapter.trainable_parameters()}
    held = [p for group in opt.param_groups for p in group["params"]]
    assert {id(p) for p in held} == trainable and len(held) == len(trainable)
    # one more step, checked against Adam written out by hand on the padded moments
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).mean() + alloc.regularization()
    loss.backward()
    b1, b2 = opt.defaults["betas"]
    lr, eps = opt.defaults["lr"], opt.defaults["eps"]
    expected = {}
    for path, m in adapter.methods().items():
        for n in ("A", "B", "E"):
            p = getattr(m, n)
            value, state = old[path][n]
            keep = tuple(slice(0, s) for s in value.shape)
            assert torch.equal(p.detach()[keep], value)
            m1 = torch.zeros_like(p)
            m2 = torch.zeros_like(p)
            m1[keep], m2[keep] = state["exp_avg"], state["exp_avg_sq"]
            assert torch.equal(opt.state[p]["exp_avg"], m1)  # kept, zero-padded
            step = float(state["step"]) + 1
            g = p.grad
            m1 = b1 * m1 + (1 - b1) * g
            m2 = b2 * m2 + (1 - b2) * g * g
            denom = (m2 / (1 - b2 ** step)).sqrt() + eps
            expected[(path, n)] = p.detach() - lr * (m1 / (1 - b1 ** step)) / denom
    opt.step()
    for (path, n), value in expected.items():
        got = getattr(adapter.methods()[path], n).detach()
        assert torch.allclose(got, value, atol=1e-7, rtol=1e-6), (path, n)


def test_score_is_the_delta_times_its_gradient():
    # reference: the same model written functionally with W + delta W as a leaf tensor
    model, adapter, opt, alloc, x, y = _setup(warmup=100, interval=1)
    _train_step(model, opt, alloc, x, y)  # move E off zero
    alloc.step(model)
    reference = copy.deepcopy(model)
    opt.zero_grad()
    ((model(x) - y) ** 2).mean().backward()
    scores_before = dict(alloc._importance)
    alloc.step(model)
    deltas = {p: m.delta_weight().detach().clone().requires_grad_(True) for p, m in
              _methods(reference).items()}
    r = reference
    z = torch.tanh(F.conv2d(x, r.conv.base_layer.weight + deltas["conv"], r.conv.base_layer.bias, padding=1))
    z = torch.tanh(F.linear(z.flatten(1), r.fc1.base_layer.weight + deltas["fc1"], r.fc1.base_layer.bias))
    out = F.linear(z, r.fc2.base_layer.weight + deltas["fc2"], r.fc2.base_layer.bias)
    ((out - y) ** 2).mean().backward()
    for path, d in deltas.items():
        s = float((d.detach() * d.grad).abs().sum()) / math.sqrt(d.numel())
        imp = 0.85 * scores_before[path] + 0.15 * s
        assert alloc._importance[path] == pytest.approx(imp, rel=1e-5), path


def _methods(model):
    from lowrank.nn import Adapter

    return Adapter(model).methods()


def test_orthogonal_penalty_matches_the_formula():
    model, adapter, opt, alloc, x, y = _setup()
    m = adapter.methods()["fc1"]
    right, left = m.A.T, m.B
    eye = torch.eye(m.E.numel())
    manual = (((right.T @ right - eye) ** 2).sum() + ((left.T @ left - eye) ** 2).sum()) / m.E.numel()
    assert torch.allclose(m.orthogonal_penalty(), manual)
    with torch.no_grad():  # orthonormal factors: no penalty
        q, _ = torch.linalg.qr(torch.randn(96, 2))
        m.A.copy_(q.T)
        q, _ = torch.linalg.qr(torch.randn(24, 2))
        m.B.copy_(q)
    assert m.orthogonal_penalty().item() <= 1e-10
    total = sum(mm.orthogonal_penalty() for mm in adapter.methods().values()) / 3
    assert torch.allclose(alloc.regularization(), 0.1 * total)


def test_a_grown_adapter_saves_and_loads(tmp_path):
    model, adapter, opt, alloc, x, y = _setup(warmup=1, interval=1, per_step=1)
    for _ in range(4):
        _train_step(model, opt, alloc, x, y)
        alloc.step(model)
    ranks = alloc.ranks()
    assert sum(ranks.values()) == 6
    adapter.save(tmp_path / "inc.npz")
    torch.manual_seed(0)
    fresh = Net()
    loaded = load_adapter(fresh, tmp_path / "inc.npz")
    assert {p: m.active_rank for p, m in loaded.methods().items()} == ranks
    with torch.no_grad():
        assert torch.equal(fresh(x), model(x))


def test_bad_input():
    model, adapter, opt, alloc, x, y = _setup()
    with pytest.raises(ValueError, match="target_rank"):
        RankAllocator(adapter, opt, target_rank=0.5, warmup=1, interval=1)
    with pytest.raises(ValueError, match="target_rank"):
        RankAllocator(adapter, opt, target_rank=1000, warmup=1, interval=1)
    with pytest.raises(ValueError, match="interval"):
        RankAllocator(adapter, opt, target_rank=2, warmup=1, interval=0)
    with pytest.raises(ValueError, match="beta1"):
        RankAllocator(adapter, opt, target_rank=2, warmup=1, interval=1, beta1=1.0)
    with pytest.raises(ValueError, match="optimizer"):
        RankAllocator(adapter, torch.optim.Adam([nn.Parameter(torch.zeros(1))]), target_rank=2, warmup=1,
                      interval=1)
    with pytest.raises(TypeError, match="optimizer"):
        RankAllocator(adapter, "adam", target_rank=2, warmup=1, interval=1)
    lora_model = Net()
    lora = adapt(lora_model, "lora", targets="fc1", rank=2)
    with pytest.raises(ValueError, match="increlora"):
        RankAllocator(lora, torch.optim.Adam(lora.trainable_parameters()), target_rank=2, warmup=1, interval=1)
    with pytest.raises(ValueError, match="model"):
        alloc.step(Net())
    with pytest.raises(ValueError, match="`n`"):
        adapter.methods()["fc2"].grow(3, torch.Generator())  # fc2 is 24 -> 3: rank <= 3


def test_increlora_options_are_checked():
    with pytest.raises(ValueError, match="reserve"):
        adapt(Net(), "increlora", targets="fc1", reserve=-1)
    with pytest.raises(ValueError, match="init_std"):
        adapt(Net(), "increlora", targets="fc1", init_std=0.0)
    with pytest.raises(ValueError, match="rank"):
        adapt(Net(), "increlora", targets="fc2", rank=4)  # fc2 is 24 -> 3
    # the reserve shrinks to fit a layer at its maximal rank; growth stops there
    adapter = adapt(Net(), "increlora", targets="fc2", rank=3, rng=0)
    m = adapter.methods()["fc2"]
    assert m.active_rank == 3 and m.held_rank == 3
    with pytest.raises(ValueError, match="`n`"):
        m.grow(1, torch.Generator())
