import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lowrank.nn import fuse_blocks  # noqa: E402
from lowrank.nn.structural.fusion import FusedLinear, block_importance  # noqa: E402
from lowrank.nn.zoo import ResidualMLP  # noqa: E402


def _model(n_blocks=4, seed=0):
    torch.manual_seed(seed)
    return ResidualMLP(8, 3, d_model=8, d_hidden=16, n_blocks=n_blocks)


def test_zero_coefficient_is_the_neighbour():
    torch.manual_seed(0)
    base, removed = torch.nn.Linear(6, 5), torch.nn.Linear(6, 5)
    fused = FusedLinear(base, removed, rank=3)
    x = torch.randn(10, 6)
    assert torch.equal(fused(x), base(x))
    merged = fused.merge()
    assert torch.equal(merged.weight, base.weight) and torch.equal(merged.bias, base.bias)
    with torch.no_grad():  # a set coefficient gives W + (C_L C_R) * W_rm, checked densely
        fused.c_left.normal_()
        fused.c_bias.normal_()
    W = base.weight + (fused.c_left @ fused.c_right) * removed.weight
    b = base.bias + fused.c_bias * removed.bias
    torch.testing.assert_close(fused.merge()(x), x @ W.T + b)


def test_steps_zero_is_plain_removal_and_input_unchanged():
    model = _model()
    X = torch.randn(64, 8)
    before = copy.deepcopy(model.state_dict())
    result = fuse_blocks(model, "blocks", 2, X, steps=0)
    plain = copy.deepcopy(model)
    for i in sorted(result.removed, reverse=True):
        del plain.blocks[i]
    with torch.no_grad():
        assert torch.equal(result.model(X), plain(X))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert len(result.model.blocks) == 2 and len(set(result.removed)) == 2


def test_identity_block_has_minimum_importance_and_is_removed():
    model = _model(n_blocks=4)
    with torch.no_grad():
        model.blocks[2].fc2.weight.zero_()
        model.blocks[2].fc2.bias.zero_()
    X = torch.randn(64, 8)
    scores = block_importance(model, "blocks", X)
    assert np.argmin(scores) == 2 and abs(scores[2]) < 1e-12 and scores.min() < np.delete(scores, 2).min()
    # independent reference for one block: cosine of outputs with and without it
    with torch.no_grad():
        ref = model(X)
        without = copy.deepcopy(model)
        del without.blocks[1]
        cos = torch.nn.functional.cosine_similarity(ref.double(), without(X).double(), dim=1).mean()
    assert scores[1] == pytest.approx(1 - float(cos), abs=1e-10)
    result = fuse_blocks(model, "blocks", 1, X, steps=0)
    assert result.removed == (2,) and result.fused_into == (3,)


def test_distillation_reduces_the_output_error():
    model = _model(n_blocks=3, seed=3)
    X = torch.randn(256, 8)
    with torch.no_grad():
        target = model(X)
    errors = []
    for steps in (0, 150):
        small = fuse_blocks(model, "blocks", 1, X, steps=steps, rank=2, seed=0).model
        with torch.no_grad():
            errors.append(float(torch.nn.functional.mse_loss(small(X), target)))
    assert errors[1] < errors[0]


@pytest.mark.parametrize("kwargs, error, match", [
    ({"blocks": "head"}, ValueError, "blocks"),
    ({"blocks": 3}, TypeError, "blocks"),
    ({"n_remove": 4}, ValueError, "n_remove"),
    ({"calibration": torch.zeros(0, 8)}, ValueError, "calibration"),
    ({"rank": 0}, ValueError, "rank"),
    ({"steps": -1}, ValueError, "steps"),
    ({"neighbour": "left"}, ValueError, "neighbour"),
    ({"model": "x"}, TypeError, "model"),
])
def test_bad_input(kwargs, error, match):
    args = {"model": _model(), "blocks": "blocks", "n_remove": 1, "calibration": torch.randn(10, 8)}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        fuse_blocks(**args)
