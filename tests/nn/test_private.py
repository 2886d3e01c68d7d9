"""DP-SGD through Opacus on adapter parameters: exact SGD without noise, clipping, privacy bookkeeping."""

import copy

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")
nn = torch.nn

from lowrank.nn import adapt  # noqa: E402
from lowrank.nn.private import private_fit  # noqa: E402


def _setup(method="ffa_lora", seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    adapter = adapt(model, method, rank=2, rng=seed)
    if method == "lora":
        with torch.no_grad():
            for m in adapter.methods().values():
                m.B.normal_(0, 0.1)
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(48, 6, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (48,), generator=gen)
    return model, adapter, X, y


@pytest.mark.parametrize("method", ["ffa_lora", "lora"])
def test_without_noise_or_clipping_it_is_plain_sgd(method):
    model, adapter, X, y = _setup(method)
    reference = copy.deepcopy(model)
    private_fit(model, (X, y), epochs=1, lr=0.3, batch_size=12, max_grad_norm=1e9, noise_multiplier=0.0,
                poisson_sampling=False, rng=5)
    # the same batches (DataLoader shuffled by a generator seeded 5), plain autograd SGD
    params = [p for p in reference.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.3)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=12, shuffle=True,
                                         generator=torch.Generator().manual_seed(5))
    for xb, yb in loader:
        opt.zero_grad()
        nn.functional.cross_entropy(reference(xb), yb).backward()
        opt.step()
    for a, b in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_clipping_bounds_each_update_and_only_trained_tensors_move():
    model, adapter, X, y = _setup("ffa_lora")
    A_before = {p: m.A.clone() for p, m in adapter.methods().items()}
    B_before = {p: m.B.detach().clone() for p, m in adapter.methods().items()}
    base_before = [p.detach().clone() for p in model.parameters() if not p.requires_grad]
    C, lr = 1e-3, 1.0
    private_fit(model, (X, y), epochs=1, lr=lr, batch_size=48, max_grad_norm=C, noise_multiplier=0.0,
                poisson_sampling=False, rng=0)
    step = torch.sqrt(sum(((m.B.detach() - B_before[p]) ** 2).sum() for p, m in adapter.methods().items()))
    assert 0 < step <= lr * C * (1 + 1e-9)  # one step: the mean of gradients clipped to norm C
    assert all(torch.equal(m.A, A_before[p]) for p, m in adapter.methods().items())
    assert all(torch.equal(a, b) for a, b in zip(base_before, [p for p in model.parameters() if not p.requires_grad]))


def test_epsilon_matches_the_rdp_accountant_and_target_epsilon_is_met():
    from opacus.accountants import RDPAccountant

    model, _, X, y = _setup("ffa_lora")
    eps = private_fit(model, (X, y), epochs=3, lr=0.1, batch_size=12, max_grad_norm=1.0, noise_multiplier=1.1, rng=0)
    accountant = RDPAccountant()
    for _ in range(3 * 4):  # epochs * expected batches per epoch (Poisson rate 12 / 48)
        accountant.step(noise_multiplier=1.1, sample_rate=12 / 48)
    assert eps == pytest.approx(accountant.get_epsilon(1e-5), rel=0.05)
    model, _, X, y = _setup("ffa_lora")
    spent = private_fit(model, (X, y), epochs=2, lr=0.1, batch_size=12, max_grad_norm=1.0, target_epsilon=8.0, rng=0)
    assert spent <= 8.0 * 1.05


def test_bad_arguments():
    model, _, X, y = _setup()
    with pytest.raises(ValueError, match="exactly one of `noise_multiplier` or `target_epsilon`"):
        private_fit(model, (X, y), epochs=1, lr=0.1, batch_size=8, max_grad_norm=1.0)
    with pytest.raises(ValueError, match="`max_grad_norm`"):
        private_fit(model, (X, y), epochs=1, lr=0.1, batch_size=8, max_grad_norm=0.0, noise_multiplier=1.0)
    frozen = nn.Sequential(nn.Linear(6, 3)).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameter"):
        private_fit(frozen, (X, y), epochs=1, lr=0.1, batch_size=8, max_grad_norm=1.0, noise_multiplier=1.0)
    bn = nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4))
    with pytest.raises(ValueError, match="running statistics"):
        private_fit(bn, (X, y), epochs=1, lr=0.1, batch_size=8, max_grad_norm=1.0, noise_multiplier=1.0)
