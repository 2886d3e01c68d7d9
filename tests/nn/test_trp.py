"""TRP: energy-rule ranks after truncation, the nuclear subgradient vs a dense SVD, finalize == truncated net."""

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lowrank.linalg import rank_by_energy  # noqa: E402
from lowrank.nn import LowRankConv, LowRankLinear, TrainedRankPruning  # noqa: E402


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 16, 3, stride=2),
        torch.nn.Flatten(), torch.nn.Linear(16 * 3 * 3, 40), torch.nn.ReLU(), torch.nn.Linear(40, 5),
    ).double()


def _matrix(module):
    return module.weight.detach().reshape(module.weight.shape[0], -1).numpy()


def test_truncation_rank_is_the_energy_rule():
    model = _model()
    trp = TrainedRankPruning(model, energy=0.8, period=3)
    expected = {n: rank_by_energy(np.linalg.svd(_matrix(model.get_submodule(n)), compute_uv=False), 0.8)
                for n in trp.names}
    for _ in range(2):
        trp.step()
    assert trp.ranks_ == {}  # not yet: period 3
    trp.step()
    assert trp.ranks_ == expected
    for n in trp.names:
        s = np.linalg.svd(_matrix(model.get_submodule(n)), compute_uv=False)
        assert int(np.sum(s > 1e-10 * s[0])) == expected[n]


def test_nuclear_subgradient_matches_dense_svd():
    model = _model()
    trp = TrainedRankPruning(model, energy=0.7, nuclear_weight=0.05)
    model(torch.randn(2, 3, 8, 8, dtype=torch.float64)).sum().backward()
    before = {n: model.get_submodule(n).weight.grad.clone() for n in trp.names}
    trp.regularize()
    for n in trp.names:
        U, s, Vh = np.linalg.svd(_matrix(model.get_submodule(n)), full_matrices=False)
        k = rank_by_energy(s, 0.7)
        added = (model.get_submodule(n).weight.grad - before[n]).reshape(U.shape[0], -1).numpy()
        assert np.allclose(added, 0.05 * U[:, :k] @ Vh[:k], atol=1e-10)


def test_finalize_equals_truncated_dense_network():
    model = _model()
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    trp = TrainedRankPruning(model, energy=0.6)
    truncated = copy.deepcopy(model)
    TrainedRankPruning(truncated, energy=0.6).truncate()
    out = trp.finalize()(x)
    assert torch.allclose(out, truncated(x), atol=1e-5)
    kinds = [type(m) for m in model]
    assert LowRankConv in kinds and LowRankLinear in kinds


def test_training_loop_reduces_rank():
    model = _model().float()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    trp = TrainedRankPruning(model, energy=0.9, period=5, nuclear_weight=1e-3)
    X, y = torch.randn(32, 3, 8, 8), torch.randint(0, 5, (32,))
    for _ in range(10):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(X), y).backward()
        trp.regularize()
        opt.step()
        trp.step()
    # the loop ended on a truncation step: every weight has exactly the recorded rank, below full for the convs
    for n in trp.names:
        s = np.linalg.svd(_matrix(model.get_submodule(n)).astype(np.float64), compute_uv=False)
        assert int(np.sum(s > 1e-5 * s[0])) == trp.ranks_[n]
    assert trp.ranks_["0"] < 16 and trp.ranks_["2"] < 16


def test_bad_input():
    with pytest.raises(ValueError, match="energy"):
        TrainedRankPruning(_model(), energy=1.5)
    with pytest.raises(ValueError, match="period"):
        TrainedRankPruning(_model(), period=0)
    with pytest.raises(ValueError, match="grouped"):
        TrainedRankPruning(torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3, groups=2)))
