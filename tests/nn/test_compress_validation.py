"""Bad input to compress / compress_afm / OutputStatistics gives one clear error naming the argument
(issue 26 section 3): NaN in calibration data or weights, calibration of the wrong width or dtype,
a per-layer rank naming no layer, max_batches=0, calibration where none is used or missing."""

import pytest

torch = pytest.importorskip("torch")

from lowrank.ctr import OutputStatistics, compress_afm  # noqa: E402
from lowrank.nn import compress  # noqa: E402


@pytest.fixture
def mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 4))


@pytest.fixture
def x():
    return torch.randn(64, 6, generator=torch.Generator().manual_seed(0))


class CountingModel(torch.nn.Module):
    """Counts forward calls: checks on in-memory data must happen before any batch runs."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(6, 5)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.fc(x)


@pytest.mark.parametrize("face", ["nn", "ctr"])
def test_nan_calibration(face, x):
    bad = x.clone()
    bad[3, 2] = float("nan")
    model = CountingModel()
    run = (lambda c: compress(model, "afm", c, rank=2)) if face == "nn" else (lambda c: compress_afm(model, c, rank=2))
    with pytest.raises(ValueError, match="`calibration` tensor 0 holds NaN"):
        run((bad,))
    assert model.calls == 0  # refused before the pass
    with pytest.raises(ValueError, match="`calibration`: the outputs of layer 'fc' are not finite"):
        run([(x[:32],), (bad[32:] * float("inf"),)])  # an iterable: checked once, after the pass


def test_nan_weights(mlp, x):
    with torch.no_grad():
        mlp[2].weight[1, 1] = float("nan")
    for method, calib in (("afm", (x,)), ("svd", None)):
        with pytest.raises(ValueError, match="`model`: parameter '2.weight' holds NaN"):
            compress(mlp, method, calib, rank=2)


def test_calibration_of_wrong_width_or_dtype(mlp, x):
    with pytest.raises(ValueError, match=r"`calibration`: the model failed on batch 0 \(\(64, 7\) torch.float32"):
        compress_afm(mlp, (torch.randn(64, 7),), rank=2)
    with pytest.raises(ValueError, match="`calibration`.*float64; model parameters are torch.float32"):
        compress_afm(mlp, (x.double(),), rank=2)
    with pytest.raises(ValueError, match="`calibration`: the model failed on batch 1"):
        compress_afm(mlp, [(x,), (x[:, :5],)], rank=2)
    with pytest.raises(ValueError, match=r"`calibration`: the model failed on batch 0 \(ndarray"):
        compress_afm(mlp, [(x.numpy(),)], rank=2)  # not a tensor


def test_rank_dict_naming_no_layer(mlp, x):
    with pytest.raises(ValueError, match="`rank`: 'fc9' names no target layer"):
        compress_afm(mlp, (x,), rank={"fc9": 2})
    with pytest.raises(ValueError, match="`rank`: '1' names no target layer"):  # the ReLU
        compress(mlp, "svd", rank={"0": 2, "1": 2})
    with pytest.raises(ValueError, match="`rank`: '2' names no target layer"):  # not among the targets
        compress(mlp, "svd", rank={"2": 2}, targets=["0"])
    with pytest.raises(ValueError, match="larger than the output width 4 of layer '2'"):
        compress(mlp, "svd", rank={"2": 5})
    with pytest.raises(TypeError, match=r"`rank\['0'\]` must be an integer"):
        compress(mlp, "svd", rank={"0": 2.5})


def test_batches_arguments(mlp, x):
    with pytest.raises(ValueError, match="`max_batches` must satisfy 1 <= max_batches"):
        compress_afm(mlp, (x,), rank=2, max_batches=0)
    with pytest.raises(ValueError, match="`batch_size`"):
        compress_afm(mlp, (x,), rank=2, batch_size=0)
    with pytest.raises(ValueError, match="share their first dimension"):
        compress_afm(mlp, (x, x[:3]), rank=2)
    with pytest.raises(ValueError, match="no batches"):
        compress_afm(mlp, [], rank=2)


def test_calibration_required_or_refused(mlp, x):
    with pytest.raises(ValueError, match="`calibration` is required"):
        compress(mlp, "afm", rank=2)
    with pytest.raises(ValueError, match="`calibration` is not used by 'svd'"):
        compress(mlp, "svd", (x,), rank=2)
    with pytest.raises(TypeError, match="`calibration` must be a tuple of tensors or an iterable"):
        compress(mlp, "afm", 3.0, rank=2)


def test_other_arguments(mlp, x):
    with pytest.raises(TypeError, match="`model`"):
        compress("model", "svd", rank=2)
    with pytest.raises(ValueError, match="`budget_metric`"):
        compress(mlp, "svd", budget=0.5, budget_metric="bytes")
    with pytest.raises(ValueError, match="`budget`"):
        compress(mlp, "svd", budget=0.0)
    with pytest.raises(TypeError, match="`rank` must be an integer"):
        compress(mlp, "svd", rank=True)
    with pytest.raises(ValueError, match="`rank` must satisfy"):
        compress(mlp, "svd", rank=0)


def test_output_statistics_update_checks():
    stats = OutputStatistics(3)
    with pytest.raises(ValueError, match="`Y` holds NaN"):
        stats.update(torch.tensor([[1.0, float("nan"), 0.0]]))
    with pytest.raises(TypeError, match="`Y` must be a real tensor"):
        stats.update(torch.zeros(2, 3, dtype=torch.complex64))
    with pytest.raises(ValueError, match="last dimension dim=3"):
        stats.update(torch.zeros(3, 2))  # 6 values: used to be silently reshaped to (2, 3)
    with pytest.raises(TypeError, match="`Y` must be a torch tensor"):
        stats.update([[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="`bag_weight`"):
        stats.update(torch.zeros(1, 3), bag_weight=-1.0)
    with pytest.raises(ValueError, match="`dim`"):
        OutputStatistics(0)
    assert stats.count == 0  # nothing was added by the rejected batches
