"""The style-generator demo: modulated convolution against an explicit per-sample weight, traversal scoring on planted generators."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lowrank.vision import HouseholderProjector  # noqa: E402
from lowrank.vision._shapes_style import (  # noqa: E402
    STYLE_TINY,
    ModulatedConv,
    StyleShapesVAE,
    run_style_demo,
    style_config_from,
    traversal_scores,
    train_model,
)


def _reference_modconv(conv, x, style):
    """StyleGAN2's fused form: per-sample weight W * s, each output filter renormalized, one conv per sample."""
    w = conv.weight / np.sqrt(conv.in_channels * 9)
    if conv.upsample:
        x = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    out = []
    for b in range(x.shape[0]):
        wb = w * style[b][None, :, None, None]
        wb = wb / torch.sqrt(wb.pow(2).sum((1, 2, 3), keepdim=True) + 1e-8)
        out.append(torch.nn.functional.conv2d(x[b : b + 1], wb, padding=1))
    y = torch.cat(out) + conv.bias[None, :, None, None]
    return torch.nn.functional.leaky_relu(y, 0.2)


@pytest.mark.parametrize("upsample", [False, True])
def test_modulated_conv_matches_per_sample_weight(upsample):
    torch.manual_seed(0)
    conv = ModulatedConv(5, 4, upsample=upsample).double()
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(3, 5, 6, 6, dtype=torch.float64)
    s = torch.randn(3, 5, dtype=torch.float64)
    torch.testing.assert_close(conv(x, s), _reference_modconv(conv, x, s), atol=1e-10, rtol=1e-10)
    # demodulation: a positive per-sample scale of the style leaves the output unchanged
    scaled = s * torch.tensor([[0.3], [2.0], [7.0]], dtype=torch.float64)
    torch.testing.assert_close(conv(x, scaled), conv(x, s), atol=1e-6, rtol=1e-6)  # up to the 1e-8 epsilon


def test_style_model_shapes_and_projector_in_affine_stays_partial_isometry():
    torch.manual_seed(1)
    m = StyleShapesVAE(16, 4, 6, 32, 8).double()
    assert m.n_layers == 3 and m.affine.weight.shape == (24, 6)
    x = torch.rand(10, 3, 16, 16, dtype=torch.float64)
    assert m.decode(torch.randn(10, 4, dtype=torch.float64)).shape == (10, 3, 16, 16)
    m.affine = HouseholderProjector.from_linear(m.affine, 3)
    train_model(m, x, steps=8, batch_size=5, lr=1e-2, beta=1.0, seed=0)
    s = torch.linalg.svdvals(m.affine.weight.detach())
    torch.testing.assert_close(s[:3], torch.ones(3, dtype=torch.float64), atol=1e-12, rtol=0)
    assert s[3] < 1e-12
    with pytest.raises(ValueError):
        StyleShapesVAE(24, 4, 6, 32, 8)


class _PlantedGenerator(torch.nn.Module):
    """w in R^2 is the "image"; the classifier reads factor f off coordinate f (8 bins of width 0.5)."""

    latent_dim = 2

    def __init__(self):
        super().__init__()
        self.const = torch.nn.Parameter(torch.zeros(1))
        self.mapping = torch.nn.Identity()

    def decode_w(self, w):
        return w


class _PlantedClassifier:
    def __call__(self, w):
        bins = torch.clamp(torch.floor(w / 0.5) + 4, 0, 7).long()
        return [torch.nn.functional.one_hot(bins[:, f], 8).float() for f in range(2)]


def test_traversal_scores_on_planted_generator():
    cfg = style_config_from("tiny", n_codes=3000, n_attr_base=60, n_attr_steps=5, traverse_sd=1.5)
    model, clf = _PlantedGenerator(), _PlantedClassifier()
    axes = traversal_scores(model, torch.eye(2), clf, cfg, seed=0)
    c = np.sqrt(0.5)
    rotated = traversal_scores(model, torch.tensor([[c, c], [c, -c]]), clf, cfg, seed=0)
    # axis-aligned directions: each direction moves exactly one factor
    assert axes["attr_disentanglement"] > 0.999 and axes["attr_completeness"] > 0.999
    assert axes["mig"] > 0.5 and axes["dci_disentanglement"] > 0.8
    # 45 degrees: every direction moves both factors equally
    assert rotated["attr_disentanglement"] < 0.05 and rotated["mig"] < 0.1
    assert rotated["dci_disentanglement"] < axes["dci_disentanglement"] - 0.5


def test_style_demo_tiny_runs():
    cfg = style_config_from("tiny", pretrain_steps=20, finetune_steps=5, feature_steps=5, n_train=200, n_eval=100,
                            n_codes=100, n_attr_base=4)
    rows, grids, _ = run_style_demo(cfg)
    assert [r["method"] for r in rows] == ["SeFa (pre-trained)", "SeFa (fine-tuned)", "Householder projector (S = I_k)",
                                           "Householder projector (learned scales)", "random directions (floor)"]
    for r in rows:
        assert (np.isnan(r["mig"]) or 0 <= r["mig"] <= 1) and 0 <= r["attr_disentanglement"] <= 1 + 1e-9 and np.isfinite(r["frechet"])
    assert all(g.shape == (STYLE_TINY.rank, 5, 3, 16, 16) for g in grids.values())


def test_householder_demo_cli_style(tmp_path):
    from lowrank.cli import main

    rc = main(["householder-demo", "--out", str(tmp_path), "--pretrain-steps", "15", "--finetune-steps", "5",
               "--feature-steps", "5", "--n-train", "300", "--device", "cpu"])
    assert rc == 0
    result = json.loads((tmp_path / "metrics.json").read_text())
    assert len(result["rows"]) == 5 and result["config"]["w_dim"] == STYLE_TINY.w_dim
    assert len(list(tmp_path.glob("traversal_*.png"))) == 5
    assert "attr-D" in (tmp_path / "metrics.md").read_text()
