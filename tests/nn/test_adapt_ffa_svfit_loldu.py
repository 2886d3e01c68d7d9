"""FFA-LoRA (with federated averaging), SVFit and LoLDU: what is specific to each beyond the core
invariants that tests/nn/test_adapt_methods.py checks for every registered method."""

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from lowrank.linalg import rank_by_energy  # noqa: E402
from lowrank.nn import adapt  # noqa: E402
from lowrank.nn.adapters.loldu import ldu  # noqa: E402
from lowrank.nn.federated import fedavg  # noqa: E402


def _mlp(seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, 12), nn.ReLU(), nn.Linear(12, 3)).to(dtype)


def _train(model, adapter, X, y, steps=30, lr=0.5):
    opt = torch.optim.SGD(adapter.trainable_parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(X), y).backward()
        opt.step()


def _deltas(adapter):
    return {path: m.delta_weight().detach().clone() for path, m in adapter.methods().items()}


# -- LoLDU --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(12, 10), (10, 12), (7, 7)])
def test_ldu_reconstructs_the_matrix_and_is_triangular(shape):
    A = torch.randn(*shape, generator=torch.Generator().manual_seed(1), dtype=torch.float32)
    perm, L, D, U1 = ldu(A)
    torch.testing.assert_close((L * D) @ U1, A[perm], rtol=0, atol=1e-6)
    k = min(shape)
    assert torch.equal(torch.diagonal(L), torch.ones(k)) and torch.equal(torch.diagonal(U1), torch.ones(k))
    assert torch.equal(L, torch.tril(L)) and torch.equal(U1, torch.triu(U1))
    assert sorted(perm.tolist()) == list(range(shape[0]))


def test_loldu_trains_r_plus_one_and_full_rank_explains_the_weight():
    model = _mlp()
    W = [model[0].weight.detach().clone(), model[2].weight.detach().clone()]
    adapter = adapt(model, "loldu", rng=0)
    assert adapter.num_trainable == (10 + 1) + (3 + 1)  # min(out, in) pivots + one scale per layer
    with torch.no_grad():
        for m in adapter.methods().values():
            m.z.zero_()  # W' = W - P L diag(D) U1 = 0 when all pivots are kept
    for m, w in zip(adapter.methods().values(), W):
        torch.testing.assert_close(m.delta_weight(), -w, rtol=0, atol=1e-12)
    small = adapt(_mlp(), "loldu", rank=2, rng=0)
    assert small.num_trainable == 2 * (2 + 1)


# -- SVFit ---------------------------------------------------------------------------------------------

def test_svfit_rank_follows_the_energy_rule_of_a_numpy_svd():
    model = _mlp()
    Ws = [model[0].weight.detach().numpy(), model[2].weight.detach().numpy()]
    adapter = adapt(model, "svfit", energy=0.9, rng=0)
    expected = [rank_by_energy(np.linalg.svd(w, compute_uv=False), 0.9) for w in Ws]
    assert [m.rank for m in adapter.methods().values()] == expected
    assert adapter.num_trainable == sum(expected)  # one singular value per kept rank


def test_svfit_full_rank_reconstructs_and_acts_in_the_principal_subspace():
    model = _mlp()
    W = model[0].weight.detach().clone()
    adapter = adapt(model, "svfit", targets="0", rank=10, rng=0)
    method = adapter.methods()["0"]
    with torch.no_grad():
        method.sigma.zero_()  # U diag(s) V^T (+ an empty residual at full rank) was all of W
    torch.testing.assert_close(method.delta_weight(), -W, rtol=0, atol=1e-12)
    # a delta of rank <= r whose column space is W's top-r left singular subspace
    adapter = adapt(_mlp(), "svfit", targets="0", rank=3, rng=0)
    method = adapter.methods()["0"]
    with torch.no_grad():
        method.sigma.add_(torch.tensor([0.5, -0.2, 0.1], dtype=torch.float64))
    delta = method.delta_weight()
    U = torch.linalg.svd(W)[0][:, :3]
    assert torch.linalg.matrix_rank(delta).item() == 3
    torch.testing.assert_close(U @ (U.T @ delta), delta, rtol=0, atol=1e-12)


# -- FFA-LoRA and federated averaging ------------------------------------------------------------------

def _clients(method, n_clients=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n_clients * 20, 10, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (n_clients * 20,), generator=gen)
    base = _mlp(seed)
    states, deltas = [], []
    for c in range(n_clients):  # disjoint data, one shared initialization (same rng)
        model = copy.deepcopy(base)
        adapter = adapt(model, method, rank=2, rng=7)
        if method == "lora":
            with torch.no_grad():  # start B away from zero so that A trains too
                for m in adapter.methods().values():
                    m.B.normal_(0, 0.3, generator=torch.Generator().manual_seed(3))
        rows = slice(20 * c, 20 * (c + 1))
        _train(model, adapter, X[rows], y[rows])
        states.append(adapter.state_dict())
        deltas.append(_deltas(adapter))
    fresh = adapt(copy.deepcopy(base), method, rank=2, rng=7)
    return states, deltas, fresh


def test_ffa_lora_freezes_the_random_factor_bit_exactly():
    model = _mlp()
    adapter = adapt(model, "ffa_lora", rank=2, rng=0)
    before = {p: m.A.clone() for p, m in adapter.methods().items()}
    assert all(not m.A.requires_grad and m.B.requires_grad for m in adapter.methods().values())
    assert adapter.num_trainable == 12 * 2 + 3 * 2  # B only
    gen = torch.Generator().manual_seed(0)
    _train(model, adapter, torch.randn(30, 10, generator=gen, dtype=torch.float64), torch.randint(0, 3, (30,)))
    assert all(torch.equal(m.A, before[p]) for p, m in adapter.methods().items())
    assert any(m.B.abs().max() > 0 for m in adapter.methods().values())
    emb = adapt(nn.Sequential(nn.Embedding(20, 6)), "ffa_lora", rank=2, rng=0).methods()["0"]
    assert emb.trained == "A" and not emb.B.requires_grad and torch.equal(emb.A, torch.zeros(20, 2))


def test_fedavg_of_ffa_lora_is_the_average_of_the_deltas_and_lora_is_not():
    states, deltas, fresh = _clients("ffa_lora")
    fresh.load_state_dict(fedavg(states))
    averaged = {p: sum(d[p] for d in deltas) / len(deltas) for p in deltas[0]}
    gaps_ffa = [float((fresh.methods()[p].delta_weight().detach() - averaged[p]).abs().max()) for p in averaged]
    assert max(gaps_ffa) <= 1e-6

    states, deltas, fresh = _clients("lora")
    fresh.load_state_dict(fedavg(states))
    averaged = {p: sum(d[p] for d in deltas) / len(deltas) for p in deltas[0]}
    gaps_lora = [float((fresh.methods()[p].delta_weight().detach() - averaged[p]).abs().max()) for p in averaged]
    print(f"max |delta(fedavg) - mean(delta)|: FFA-LoRA {max(gaps_ffa):.1e}, LoRA {max(gaps_lora):.1e}")
    assert max(gaps_lora) > 1e-3


def test_fedavg_weights_and_errors():
    states, _, _ = _clients("ffa_lora", n_clients=2)
    path = next(iter(states[0]["tensors"]))
    B0, B1 = states[0]["tensors"][path]["B"], states[1]["tensors"][path]["B"]
    torch.testing.assert_close(fedavg(states, weights=[3, 1])["tensors"][path]["B"], 0.75 * B0 + 0.25 * B1)
    assert torch.equal(fedavg(states)["tensors"][path]["A"], states[0]["tensors"][path]["A"])  # copied exactly
    with pytest.raises(ValueError, match="`states` is empty"):
        fedavg([])
    with pytest.raises(ValueError, match="`weights`"):
        fedavg(states, weights=[1.0])
    with pytest.raises(ValueError, match="`weights`"):
        fedavg(states, weights=[-1.0, 2.0])
    with pytest.raises(TypeError, match=r"`states\[1\]`"):
        fedavg([states[0], {"B": B0}])
    other = adapt(_mlp(), "lora", rank=2, rng=7).state_dict()
    with pytest.raises(ValueError, match="another method"):
        fedavg([states[0], other])
