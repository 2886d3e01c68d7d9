"""WeLore: planted spectra give planted non-uniform ranks; the budget is met within one rank step."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lowrank.nn import compress  # noqa: E402


def _planted(shape, rank, seed, tail=1e-4):
    g = torch.Generator().manual_seed(seed)
    out, inp = shape
    U, _ = torch.linalg.qr(torch.randn(out, out, generator=g))
    V, _ = torch.linalg.qr(torch.randn(inp, inp, generator=g))
    n = min(shape)
    s = torch.cat([torch.linspace(1.0, 0.5, rank), tail * torch.linspace(1.0, 0.1, n - rank)])
    return 3.0 * (U[:, :n] * s) @ V[:, :n].T


def _model(spectra):
    layers = []
    for (out, inp), _, _ in spectra:
        layers += [torch.nn.Linear(inp, out), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    with torch.no_grad():
        for i, (shape, rank, seed) in enumerate(spectra):
            model[2 * i].weight.copy_(_planted(shape, rank, seed))
    return model


SPECTRA = [((40, 30), 3, 0), ((30, 40), 6, 1), ((50, 30), 10, 2)]


def test_planted_spectra_give_the_planted_ranks():
    model = _model(SPECTRA)
    dense = sum(out * inp + out for (out, inp), _, _ in SPECTRA)
    planted = sum(k * (out + inp + 1) + out for (out, inp), k, _ in SPECTRA)
    small, report = compress(model, "welore", budget=planted / dense)
    assert [r.rank for r in report.layers] == [3, 6, 10]
    assert all(r.compressed for r in report.layers)
    # the whole spectrum above the tail is kept: the weights are reproduced to the tail's size
    for r, (_, k, _) in zip(report.layers, SPECTRA):
        assert r.output_relative_error < 1e-3


@pytest.mark.parametrize("budget", [0.25, 0.4, 0.55, 0.7])
def test_reduction_within_one_rank_step_and_never_past_break_even(budget):
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(24, 40), torch.nn.ReLU(), torch.nn.Linear(40, 32), torch.nn.ReLU(),
                                torch.nn.Linear(32, 16))
    with torch.no_grad():   # different decays per layer
        for i, p in zip((0, 2, 4), (0.5, 2.0, 1.0)):
            U, s, Vh = torch.linalg.svd(model[i].weight)
            model[i].weight.copy_(U[:, :s.numel()] * torch.arange(1.0, s.numel() + 1) ** -p @ Vh[:s.numel()])
    small, report = compress(model, "welore", budget=budget)
    before = sum(r.params_before for r in report.layers)
    after = sum(r.params_after for r in report.layers)
    step = max(m.in_features + m.out_features + 1 for m in model if isinstance(m, torch.nn.Linear))
    assert after <= budget * before + 1e-9
    assert budget * before - after <= step
    for r in report.layers:
        assert r.params_after <= r.params_before
        assert r.compressed == (r.params_after < r.params_before)


def test_lrc_only_training_and_gradients_reach_both_factors():
    model = _model(SPECTRA[:2])
    with torch.no_grad():   # a flat (Gaussian) spectrum: this layer only shrinks past break-even
        model[2].weight.copy_(torch.randn(30, 40, generator=torch.Generator().manual_seed(5)))
    dense0 = 40 * 30 + 40
    budget = (3 * 71 + 40 + 30 * 40 + 30) / (dense0 + 30 * 40 + 30)   # first layer low-rank, second dense
    small, report = compress(model, "welore", budget=budget, trainable="lrc")
    assert [r.compressed for r in report.layers] == [True, False]
    assert all(p.requires_grad for p in small[0].parameters())
    assert not any(p.requires_grad for p in small[2].parameters())
    small(torch.randn(5, 30)).pow(2).sum().backward()
    assert small[0].up.weight.grad.abs().sum() > 0 and small[0].down.weight.grad.abs().sum() > 0
    full, _ = compress(model, "welore", budget=budget)
    assert all(p.requires_grad for p in full.parameters())


def test_fixed_rank_uses_the_core_rules_and_bad_input():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(12, 10))
    a, _ = compress(model, "welore", rank=3)
    b, _ = compress(model, "svd", rank=3)
    x = torch.randn(4, 12)
    torch.testing.assert_close(a(x), b(x))
    with pytest.raises(ValueError, match="trainable"):
        compress(model, "welore", budget=0.5, trainable="dense")
    with pytest.raises(ValueError, match="calibration"):
        compress(model, "welore", torch.randn(3, 12), budget=0.5)
    assert np.isfinite(compress(model, "welore", budget=0.5)[1].model_params_after)
