"""search_modules (DiffoRA-style gates, DARTS bi-level) on a planted task with a known answer, and bad input.

Planted task: six parallel Linear branches, each reading its own block of the input, summed into the
output. The targets are the frozen model's outputs plus a low-rank correction on the blocks of two
known branches; the other branches read inputs that are pure noise, unrelated to the target. Only
the two known branches' adapters can reduce the loss, so the search must return exactly them.
"""

import copy

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from lowrank.nn import adapt, search_modules  # noqa: E402

M, D, OUT = 6, 8, 4
PLANTED = ["branches.1", "branches.4"]


class Branches(nn.Module):
    def __init__(self):
        super().__init__()
        self.branches = nn.ModuleList(nn.Linear(D, OUT) for _ in range(M))

    def forward(self, x):
        return sum(b(x[:, i * D:(i + 1) * D]) for i, b in enumerate(self.branches))


def _task(seed, n=384):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = Branches()
    x = torch.randn(n, M * D, generator=g)
    with torch.no_grad():
        y = model(x)
        for name in PLANTED:
            i = int(name.split(".")[1])
            correction = torch.randn(OUT, 2, generator=g) @ torch.randn(2, D, generator=g)
            y += x[:, i * D:(i + 1) * D] @ correction.T
        y += 0.05 * torch.randn(y.shape, generator=g)
    half = n // 2
    return model, (x[:half], y[:half]), (x[half:], y[half:])


@pytest.mark.parametrize("seed", [0, 1])
def test_search_finds_the_planted_modules(seed):
    model, train, val = _task(seed)
    before = copy.deepcopy(model.state_dict())
    chosen = search_modules(model, train, val, k=2, rank=2, steps=150, loss="mse", rng=seed)
    assert list(chosen) == PLANTED
    assert set(chosen.gates) == {f"branches.{i}" for i in range(M)}
    others = [g for n, g in chosen.gates.items() if n not in PLANTED]
    assert min(chosen.gates[n] for n in PLANTED) > max(others)
    # the user's model is untouched, and the result feeds adapt()
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    adapter = adapt(model, "lora", targets=list(chosen), rank=2, rng=0)
    assert adapter.targets == PLANTED


def test_bad_input():
    model, train, val = _task(0, n=64)
    with pytest.raises(ValueError, match="`k`"):
        search_modules(model, train, val, k=7, loss="mse")
    with pytest.raises(ValueError, match="`k`"):
        search_modules(model, train, val, k=0, loss="mse")
    with pytest.raises(TypeError, match="`train`"):
        search_modules(model, train[0], val, k=2, loss="mse")
    with pytest.raises(ValueError, match="`val`"):
        search_modules(model, train, (val[0], val[1][:3]), k=2, loss="mse")
    with pytest.raises(ValueError, match="`loss`"):
        search_modules(model, train, val, k=2, loss="hinge")
    with pytest.raises(ValueError, match="also_train"):
        search_modules(model, train, val, k=2, loss="mse", also_train="head")
    with pytest.raises(ValueError, match="steps"):
        search_modules(model, train, val, k=2, loss="mse", steps=0)
    with pytest.raises(TypeError, match="`model`"):
        search_modules("model", train, val, k=2, loss="mse")
