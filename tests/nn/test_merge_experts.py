import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lowrank.nn import merge_experts  # noqa: E402
from lowrank.nn.zoo import MoEMLP  # noqa: E402


def _moe(n_experts=4, top_k=1, seed=0):
    torch.manual_seed(seed)
    return MoEMLP(8, 16, n_experts=n_experts, top_k=top_k)


def _copy_expert(moe, src, dst):
    moe.experts[dst].load_state_dict(moe.experts[src].state_dict())


def test_identical_experts_merge_exactly():
    moe = _moe()
    with torch.no_grad():
        _copy_expert(moe, 0, 1)
        _copy_expert(moe, 2, 3)
        # router rows shared inside each pair, so the routing decision is the same before and after
        moe.router.weight[1] = moe.router.weight[0]
        moe.router.bias[1] = moe.router.bias[0]
        moe.router.weight[3] = moe.router.weight[2]
        moe.router.bias[3] = moe.router.bias[2]
    X = torch.randn(200, 8)
    merged, groups = merge_experts(moe, 2, X)  # k-means on output similarity
    assert groups == ((0, 1), (2, 3))
    for g, e in enumerate((0, 2)):
        for fc in ("fc1", "fc2"):
            a, b = getattr(merged.experts[g], fc), getattr(moe.experts[e], fc)
            torch.testing.assert_close(a.weight, b.weight, atol=1e-6, rtol=0)
            torch.testing.assert_close(a.bias, b.bias, atol=1e-6, rtol=0)
    with torch.no_grad():
        torch.testing.assert_close(merged(X), moe(X), atol=1e-5, rtol=0)


def test_one_expert_per_group_is_unchanged():
    moe = _moe(n_experts=5, top_k=2)
    X = torch.randn(100, 8)
    merged, groups = merge_experts(moe, 5, X)
    assert groups == tuple((e,) for e in range(5))
    with torch.no_grad():
        assert torch.equal(merged(X), moe(X))


def test_router_sends_inputs_to_their_top_experts_group():
    moe = _moe(n_experts=6)
    groups = ((0, 3), (1, 4, 5), (2,))
    with torch.no_grad():
        for g in groups:  # router rows equal within a group; the experts themselves all differ
            for e in g[1:]:
                moe.router.weight[e] = moe.router.weight[g[0]]
                moe.router.bias[e] = moe.router.bias[g[0]]
    X = torch.randn(300, 8)
    merged, _ = merge_experts(moe, 3, X, groups=[[1, 4, 5], [0, 3], [2]])
    group_of = {e: i for i, g in enumerate(groups) for e in g}
    with torch.no_grad():
        top = moe.router(X).argmax(-1)
        new = merged.router(X).argmax(-1)
    assert [group_of[int(e)] for e in top] == new.tolist()


def test_full_rank_equals_frequency_weighted_average_and_truncation_projects():
    moe = _moe(n_experts=4, top_k=2, seed=1)
    X = torch.randn(400, 8)
    groups = ((0, 2), (1, 3))
    result = merge_experts(moe, 2, X, groups=groups)
    idx = moe.router(X).topk(2, dim=-1).indices.numpy().ravel()
    freq = np.bincount(idx, minlength=4) / idx.size  # independent count
    np.testing.assert_allclose(result.frequency, freq)
    truncated = merge_experts(moe, 2, X, groups=groups, rank=5).moe
    for g, members in enumerate(groups):
        w = freq[list(members)] / freq[list(members)].sum()
        for fc in ("fc1", "fc2"):
            Ws = [getattr(moe.experts[e], fc).weight.detach().double().numpy() for e in members]
            average = sum(wi * W for wi, W in zip(w, Ws))
            got = getattr(result.moe.experts[g], fc).weight.detach().double().numpy()
            np.testing.assert_allclose(got, average, atol=1e-5)
            U = np.linalg.svd(np.hstack(Ws), full_matrices=False)[0][:, :5]
            got = getattr(truncated.experts[g], fc).weight.detach().double().numpy()
            np.testing.assert_allclose(got, U @ U.T @ average, atol=1e-5)
        rows = moe.router.weight.detach().double().numpy()[list(members)]
        np.testing.assert_allclose(result.moe.router.weight.detach().numpy()[g], w @ rows, atol=1e-6)


def test_uniform_weighting_and_input_left_alone():
    moe = _moe()
    before = {k: v.clone() for k, v in moe.state_dict().items()}
    merged = merge_experts(moe, 1, torch.randn(50, 8), weighting="uniform").moe
    mean = torch.stack([e.fc1.weight for e in moe.experts]).mean(0)
    torch.testing.assert_close(merged.experts[0].fc1.weight, mean, atol=1e-6, rtol=0)
    assert all(torch.equal(before[k], v) for k, v in moe.state_dict().items())


@pytest.mark.parametrize("kwargs, error, match", [
    ({"n_groups": 0}, ValueError, "n_groups"),
    ({"n_groups": 5}, ValueError, "n_groups"),
    ({"calibration": torch.zeros(4, 3)}, ValueError, "calibration"),
    ({"calibration": torch.full((4, 8), float("nan"))}, ValueError, "calibration"),
    ({"groups": [[0, 1], [1, 2]]}, ValueError, "groups"),
    ({"rank": 0}, ValueError, "rank"),
    ({"weighting": "mean"}, ValueError, "weighting"),
    ({"moe": torch.nn.Linear(8, 4)}, TypeError, "experts"),
])
def test_bad_input(kwargs, error, match):
    args = {"moe": _moe(), "n_groups": 2, "calibration": torch.randn(10, 8)}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        merge_experts(**args)
