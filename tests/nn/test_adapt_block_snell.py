"""Block-LoRA (one shared down-projection block) and SNELL (sparse kernel delta): specific checks."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from lowrank.nn import adapt  # noqa: E402
from lowrank.nn.adapters.snell import competition_mask  # noqa: E402


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 8)).double()


def test_block_lora_delta_is_the_sum_of_blocks_times_one_shared_down_block():
    model = _mlp()
    adapter = adapt(model, "block_lora", rank=4, blocks=2, rng=0)
    methods = adapter.methods()
    assert methods["0"].down is methods["2"].down  # same (2, 32) down-projection shape: one block
    assert methods["4"].down is methods["0"].down  # the head reads 32 inputs too
    with torch.no_grad():
        for m in methods.values():
            m.B.normal_(generator=torch.Generator().manual_seed(1))
    m = methods["2"]
    expected = sum(m.B[i] @ m.down for i in range(2)) * m.scaling  # sum_i B_i A_s, written out
    torch.testing.assert_close(m.delta_weight(), expected, rtol=0, atol=1e-12)
    # shared A_s counted once: 2 x 32 once (layers 0, 2, 4 all read 32 inputs) + B blocks 2 x out x 2
    assert adapter.num_trainable == 2 * 32 + 2 * 2 * (32 + 32 + 8)
    state = adapter.state_dict()
    assert list(state["shared"]) == ["down_2_32"]
    unshared = adapt(_mlp(), "block_lora", rank=4, blocks=2, share_across_layers=False, rng=0)
    assert unshared.num_trainable == 3 * 2 * 32 + 2 * 2 * (32 + 32 + 8)


def test_block_lora_with_one_block_is_lora_and_errors():
    model = _mlp()
    block = adapt(model, "block_lora", targets="0", rank=3, blocks=1, share_across_layers=False, rng=0)
    lora = adapt(_mlp(), "lora", targets="0", rank=3, rng=0)
    b, lo = block.methods()["0"], lora.methods()["0"]
    with torch.no_grad():
        b.own_down.copy_(lo.A)
        lo.B.normal_(generator=torch.Generator().manual_seed(2))
        b.B[0].copy_(lo.B)
    torch.testing.assert_close(b.delta_weight(), lo.delta_weight(), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="multiple of `blocks`"):
        adapt(_mlp(), "block_lora", rank=3, blocks=2, rng=0)
    with pytest.raises(TypeError, match="`share_across_layers`"):
        adapt(_mlp(), "block_lora", rank=2, share_across_layers="yes", rng=0)


def test_snell_kernel_matches_the_formula_and_keeps_exactly_keep():
    model = _mlp()
    adapter = adapt(model, "snell", targets="2", rank=3, keep=0.25, init="paper", rng=0)
    m = adapter.methods()["2"]
    A, B = m.A.detach().numpy(), m.B.detach().numpy()
    d2 = ((A[:, None, :] - B[None, :, :]) ** 2).sum(-1)
    sq = (A ** 2).sum(1)[:, None] + (B ** 2).sum(1)[None, :]
    K = np.exp(-d2 / 6) - np.exp(-sq / 6)  # the Gaussian distance kernel, centred (r = 3)
    np.testing.assert_allclose(m.kernel().detach().numpy(), K, rtol=1e-10, atol=1e-14)
    delta = m.delta_weight().detach().numpy()
    assert np.count_nonzero(delta) == math.ceil(0.25 * delta.size)
    kept = np.abs(K)[delta != 0]
    assert kept.min() >= np.abs(K)[delta == 0].max()  # the largest entries won the competition
    assert np.linalg.matrix_rank(delta) > 3  # the kernel's rank exceeds the factors' r


def test_snell_zero_start_is_a_no_op_that_still_learns():
    model = _mlp()
    adapter = adapt(model, "snell", rank=4, keep=0.3, rng=0)
    for m in adapter.methods().values():
        assert torch.equal(m.delta_weight(), torch.zeros_like(m.delta_weight()))
    x = torch.randn(16, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    model(x).pow(2).sum().backward()
    grads = [m.B.grad for m in adapter.methods().values()]
    assert all(g is not None for g in grads) and any(g.abs().max() > 0 for g in grads)


def test_competition_mask_ties_and_bounds():
    mask = competition_mask(torch.tensor([1.0, -4.0, 3.0, 2.0]), 0.5)
    assert mask.tolist() == [False, True, True, False]
    assert competition_mask(torch.tensor([1.0, 2.0]), 1.0).all()
    with pytest.raises(ValueError, match="`keep`"):
        adapt(_mlp(), "snell", keep=0.0, rng=0)
