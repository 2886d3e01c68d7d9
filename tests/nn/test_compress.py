"""lowrank.nn.compress: the refactor reproduces the old ctr code, the registry, rank rules and budgets.

The reference is ``tests/nn/data/afm_reference.npz``, written by ``make_afm_reference.py`` with
the ``lowrank.ctr.afm`` of commit 4f9cacc (before the core moved here). Both the new entry point
and the ctr faces are checked against it: integer fields (ranks, parameter counts, flags) must
match exactly, floats within 1e-12 relative in float64 (bit-identical on the machine that wrote
the file: the summation order did not change; the tolerance covers another BLAS/LAPACK build) and
within float32 rounding for the float32 model.
"""

import importlib.util
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lowrank._utils.io import load_npz  # noqa: E402
from lowrank.ctr import compress_afm, compress_weight_svd  # noqa: E402
from lowrank.nn import CompressionReport, compress, list_compressors, register_compressor  # noqa: E402
from lowrank.nn.compression import Compressor, LayerSpectrum  # noqa: E402
from lowrank.nn.compression.svd import SVDCompressor  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "make_afm_reference", os.path.join(os.path.dirname(__file__), "data", "make_afm_reference.py"))
ref_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref_script)


@pytest.fixture(scope="module")
def reference():
    return load_npz(ref_script.REFERENCE, kind="afm_reference")


def _nn_afm(model, calibration, **kwargs):
    return compress(model, "afm", calibration, **kwargs)


def _nn_svd(model, **kwargs):
    return compress(model, "svd", **kwargs)


@pytest.mark.parametrize("entry", ["nn", "ctr"])
@pytest.mark.parametrize("case", sorted(ref_script.CASES))
def test_reproduces_the_old_ctr_results(reference, case, entry):
    arrays, meta = reference
    afm, svd = (_nn_afm, _nn_svd) if entry == "nn" else (compress_afm, compress_weight_svd)
    out, report = ref_script.run_case(case, afm, svd)
    got = ref_script.report_arrays(report)
    float32 = ref_script.CASES[case][0] == "ctr32"
    rtol = 2e-6 if float32 else 1e-12
    want = arrays[f"{case}/output"]
    assert out.dtype == want.dtype
    assert np.abs(out - want).max() <= rtol * np.abs(want).max()
    for key in ("rank", "full_rank", "params_before", "params_after", "compressed", "model_params"):
        np.testing.assert_array_equal(got[key], arrays[f"{case}/{key}"], err_msg=key)
    for key in ("energy_kept", "output_relative_error"):
        np.testing.assert_allclose(got[key], arrays[f"{case}/{key}"], rtol=rtol, atol=rtol, err_msg=key)
    assert [r.name for r in report.layers] == meta[case]["layers"]
    assert [r.kind for r in report.layers] == meta[case]["kinds"]
    expected_method = meta[case]["method"] if entry == "ctr" else ref_script.CASES[case][1]
    assert report.method == expected_method


def test_ctr_names_still_importable():
    from lowrank.ctr import CompressionReport as CtrReport
    from lowrank.ctr import OutputStatistics as CtrStats
    from lowrank.nn.compression import OutputStatistics

    assert CtrReport is CompressionReport and CtrStats is OutputStatistics


def _mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(20, 16, dtype=torch.float64), torch.nn.ReLU(),
                               torch.nn.Linear(16, 12, dtype=torch.float64), torch.nn.ReLU(),
                               torch.nn.Linear(12, 3, dtype=torch.float64))


def _x(n=400, d=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    scales = torch.logspace(0, -1.5, d, dtype=torch.float64)
    return torch.randn(n, d, generator=g, dtype=torch.float64) * scales


def test_registry_lists_and_dispatches_a_new_compressor():
    assert {"afm", "svd"} <= set(list_compressors())

    class HalfSpectrumSVD(SVDCompressor):
        """Records what the core asks; builds what SVD builds."""

        calls = []

        def spectrum(self, name, module, statistics):
            self.calls.append(name)
            return super().spectrum(name, module, statistics)

    register_compressor("test-recording-svd", HalfSpectrumSVD)
    model = _mlp()
    x = _x()
    mine, rep = compress(model, "test-recording-svd", rank=4)
    ref, rep_svd = compress(model, "svd", rank=4)
    assert HalfSpectrumSVD.calls == ["0", "2", "4"]
    torch.testing.assert_close(mine(x), ref(x), rtol=0, atol=0)
    assert [r.rank for r in rep.layers] == [r.rank for r in rep_svd.layers] and rep.method == "test-recording-svd"
    with pytest.raises(ValueError, match="already registered"):
        register_compressor("test-recording-svd", SVDCompressor)
    register_compressor("test-recording-svd", SVDCompressor, replace=True)
    with pytest.raises(TypeError, match="`cls`"):
        register_compressor("bad", object)
    with pytest.raises(TypeError, match="`name`"):
        register_compressor(3, SVDCompressor)

    class InputStatistics(SVDCompressor):
        statistics = "inputs"

    with pytest.raises(ValueError, match="statistics='inputs'"):
        register_compressor("test-inputs", InputStatistics)
    with pytest.raises(ValueError, match="`method`"):
        compress(model, "no-such-method", rank=2)
    with pytest.raises(TypeError, match="unknown option"):
        compress(model, "svd", rank=2, oversampling=3)


def test_a_compressor_only_states_spectrum_and_build():
    """A minimal third compressor (keep the leading weight rows' directions by QR) gets ranks,
    budget, break-even and reports from the core."""

    class RowSpaceCompressor(Compressor):
        supported = (torch.nn.Linear,)
        error_basis = "weights"

        def spectrum(self, name, module, statistics):
            W = module.weight.detach().to(torch.float64)
            s = torch.linalg.svdvals(W)
            return LayerSpectrum(energies=s**2, total=float((s**2).sum()), state=W)

        def build(self, module, spectrum, rank):
            from lowrank.nn import LowRankLinear

            W = spectrum.state
            Q = torch.linalg.svd(W, full_matrices=False)[2][:rank]  # row-space basis
            new = LowRankLinear(module.in_features, module.out_features, rank, dtype=W.dtype)
            with torch.no_grad():
                new.down.weight.copy_(Q)
                new.down.bias.zero_()
                new.up.weight.copy_(W @ Q.T)
                new.up.bias.copy_(module.bias)
            return new

    register_compressor("test-row-space", RowSpaceCompressor, replace=True)
    model = _mlp()
    small, rep = compress(model, "test-row-space", budget=0.5)
    ref, rep_svd = compress(model, "svd", budget=0.5)
    assert [r.rank for r in rep.layers] == [r.rank for r in rep_svd.layers]
    x = _x()
    torch.testing.assert_close(small(x), ref(x))  # W Q^T Q is the truncated SVD
    with pytest.raises(TypeError, match="only Linear layers"):
        compress(torch.nn.Sequential(torch.nn.Embedding(5, 3)), "test-row-space", rank=1, targets=["0"])


@pytest.mark.parametrize("method", ["svd", "afm"])
@pytest.mark.parametrize("metric", ["params", "flops"])
@pytest.mark.parametrize("budget", [0.2, 0.5])
def test_budget_is_met_and_no_layer_passes_break_even(method, metric, budget):
    model = _mlp(1)
    calib = (_x(),) if method == "afm" else None
    small, rep = compress(model, method, calib, budget=budget, budget_metric=metric)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if metric == "params":
        dense = sum(r.params_before for r in rep.layers)
        kept = sum(r.params_after for r in rep.layers)
    else:  # multiply-adds per row: x -> down (k * (in + 1)) -> up (out * (k + 1))
        dense = sum(m.in_features * m.out_features for m in linears)
        kept = sum((r.rank * (m.in_features + m.out_features + 1) + m.out_features if r.compressed
                    else m.in_features * m.out_features) for r, m in zip(rep.layers, linears))
    # Within budget, unless even rank 1 everywhere does not fit.
    assert kept <= budget * dense + 1e-9 or all(r.rank == 1 or not r.compressed for r in rep.layers)
    for r in rep.layers:
        assert (r.params_after < r.params_before) == r.compressed
        assert r.rank == r.full_rank or r.compressed


def test_energy_rule_keeps_the_asked_fraction():
    model = _mlp(2)
    x = _x()
    for energy in (0.5, 0.9, 0.99):
        _, rep = compress(model, "afm", (x,), energy=energy)
        for r in rep.layers:
            assert r.energy_kept >= energy - 1e-12
            if r.compressed and r.rank > 1:  # the smallest such rank: one less falls short
                _, one_less = compress(model, "afm", (x,), rank={r.name: r.rank - 1}, targets=[r.name])
                assert one_less.layers[0].energy_kept < energy


def test_report_is_consistent_with_measured_output_error():
    """AFM's reported error equals sqrt(E||y - y_hat||^2 / E||y||^2) measured on the calibration data."""
    model = _mlp(3)
    x = _x()
    for name in ("0", "2"):
        small, rep = compress(model, "afm", (x,), rank=3, targets=[name])
        with torch.no_grad():
            y = model.get_submodule(name)(_input_of(model, name, x))
            y_hat = small.get_submodule(name)(_input_of(model, name, x))
        measured = float(torch.sqrt(((y - y_hat) ** 2).sum(1).mean() / (y**2).sum(1).mean()))
        assert abs(rep.layers[0].output_relative_error - measured) < 1e-10
    assert isinstance(rep, CompressionReport) and rep.error_basis == "calibration outputs"
    _, rep = compress(model, "svd", rank=3)
    assert rep.error_basis == "weights" and "svd:" in str(rep)


def _input_of(model, name, x):
    seen = {}
    handle = model.get_submodule(name).register_forward_hook(lambda m, i, o: seen.update(x=i[0]))
    with torch.no_grad():
        model(x)
    handle.remove()
    return seen["x"]


def test_inplace_and_copy():
    model = _mlp(4)
    before = [p.clone() for p in model.parameters()]
    small, _ = compress(model, "svd", rank=2)
    assert small is not model and all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    same, _ = compress(model, "svd", rank=2, inplace=True)
    assert same is model and isinstance(model[0], type(small[0]))
