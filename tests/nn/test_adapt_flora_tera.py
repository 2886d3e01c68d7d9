"""FLoRA (Tucker delta in the weight's own shape) and TeRA (shared frozen random tensor network):
what is specific to each beyond the core invariants of tests/nn/test_adapt_methods.py."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from lowrank.nn import adapt, load_adapter  # noqa: E402
from lowrank.tensors import mode_dot  # noqa: E402


def _unfolding_ranks(T):
    T = T.detach().numpy()
    return [np.linalg.matrix_rank(np.moveaxis(T, k, 0).reshape(T.shape[k], -1), tol=1e-9) for k in range(T.ndim)]


def test_flora_conv_delta_has_the_given_multilinear_rank():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(6, 10, 3)).double()
    adapter = adapt(model, "flora", rank=3, spatial_rank=2, rng=0)
    method = adapter.methods()["0"]
    assert tuple(method.core.shape) == (3, 3, 2, 2)
    assert adapter.num_trainable == 3 * 3 * 2 * 2 + 10 * 3 + 6 * 3 + 3 * 2 + 3 * 2
    with torch.no_grad():
        method.core.normal_(generator=torch.Generator().manual_seed(1))
    delta = method.delta_weight()
    assert delta.shape == (10, 6, 3, 3)
    assert _unfolding_ranks(delta) == [3, 3, 2, 2]  # generic core: exactly the given ranks


def test_flora_at_full_ranks_represents_any_delta():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3)).double()
    adapter = adapt(model, "flora", ranks=(4, 3, 3, 3), rng=0)
    method = adapter.methods()["0"]
    target = torch.randn(4, 3, 3, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    # least squares through the parametrization: square orthonormal factors, so the best core is the
    # target projected on them, G = target x_k U_k^T, and it fits exactly
    core = target
    for k, U in enumerate(method.factors):
        core = mode_dot(core, U.detach().T, k)
    with torch.no_grad():
        method.core.copy_(core / method.scaling)
    torch.testing.assert_close(method.delta_weight(), target, rtol=0, atol=1e-12)


def test_flora_linear_is_u_out_g_u_in_and_bad_ranks():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(7, 5)).double()
    method = adapt(model, "flora", rank=2, rng=0).methods()["0"]
    with torch.no_grad():
        method.core.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    U_out, U_in = method.factors
    torch.testing.assert_close(method.delta_weight(), U_out @ method.core @ U_in.T, rtol=0, atol=1e-12)
    capped = adapt(nn.Sequential(nn.Linear(7, 5)), "flora", rank=6, rng=0).methods()["0"]
    assert tuple(capped.core.shape) == (5, 6)  # rank capped at each mode's size
    with pytest.raises(ValueError, match="exceed the weight shape"):
        adapt(nn.Sequential(nn.Linear(7, 5)), "flora", ranks=(6, 6), rng=0)
    with pytest.raises(ValueError, match="give 2 ranks"):
        adapt(nn.Sequential(nn.Linear(7, 5)), "flora", ranks=(2, 2, 2), rng=0)


def _tera_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 256)).double()


def test_tera_shares_one_frozen_network_per_shape_and_does_not_save_it(tmp_path):
    model = _tera_model()
    adapter = adapt(model, "tera", rng=0, seed=3)
    methods = adapter.methods()
    core2, factors2 = methods["2"].shared_tensors()
    core4, factors4 = methods["4"].shared_tensors()
    assert core2 is core4 and all(a is b for a, b in zip(factors2, factors4))  # one object for one shape
    assert methods["0"].shared_key != methods["2"].shared_key
    assert not any(t.requires_grad for t in [core2, *factors2])
    assert adapter.num_trainable == (16 + 16 + 8 + 8) + 2 * (16 + 16 + 16 + 16)  # only the vectors
    state = adapter.state_dict()
    saved = [k for ts in state["tensors"].values() for k in ts] + list(state["shared"])
    assert all(k.startswith("scales.") for k in saved), saved
    # regenerated from the seed on another model: the same network, bit for bit
    other = adapt(_tera_model(), "tera", rng=5, seed=3).methods()["2"].shared_tensors()
    assert torch.equal(other[0], core2) and all(torch.equal(a, b) for a, b in zip(other[1], factors2))
    different = adapt(_tera_model(), "tera", rng=0, seed=4).methods()["2"].shared_tensors()
    assert not torch.equal(different[0], core2)
    # save/load: the trained vectors travel, the network is regenerated
    with torch.no_grad():
        for m in methods.values():
            for s in m.scales:
                s.add_(0.1)
    adapter.save(tmp_path / "tera.npz")
    fresh = _tera_model()
    loaded = load_adapter(fresh, tmp_path / "tera.npz")
    for p, m in loaded.methods().items():
        torch.testing.assert_close(m.delta_weight(), methods[p].delta_weight(), rtol=0, atol=0)


def test_tera_delta_rank_exceeds_its_trainable_count():
    model = _tera_model()
    method = adapt(model, "tera", rng=0).methods()["2"]
    with torch.no_grad():
        method.scales[3].normal_(generator=torch.Generator().manual_seed(0))
    delta = method.delta_weight().detach().numpy()
    trained = sum(s.numel() for s in method.scales)
    rank = np.linalg.matrix_rank(delta)
    assert rank > trained, (rank, trained)  # 256 x 256 delta of rank > 64 from 64 trained numbers
