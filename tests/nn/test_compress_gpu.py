"""compress on CUDA gives the CPU's result (run with ``pytest -m gpu`` on a machine with a GPU)."""

import pytest

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.gpu


def _model():
    torch.manual_seed(0)
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, stride=2), nn.ReLU(),
                         nn.Flatten(), nn.Linear(16 * 7 * 7, 10)).double()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run `pytest -m gpu` on the accelerator machine)")
@pytest.mark.parametrize("method", ["svd", "afm"])
@pytest.mark.parametrize("rule", [dict(rank=4), dict(energy=0.9), dict(budget=0.3)])
def test_compress_on_cuda_matches_cpu(method, rule):
    from lowrank.nn import compress

    x = torch.rand(64, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    model = _model()
    calib = (x,) if method == "afm" else None
    cpu, rep_cpu = compress(model, method, calib, **rule)
    gpu, rep_gpu = compress(model.cuda(), method, None if calib is None else (x.cuda(),), **rule)
    assert all(p.is_cuda for p in gpu.parameters())
    assert [r.rank for r in rep_gpu.layers] == [r.rank for r in rep_cpu.layers]
    for a, b in zip(rep_gpu.layers, rep_cpu.layers):
        assert abs(a.output_relative_error - b.output_relative_error) < 1e-9
    with torch.no_grad():
        torch.testing.assert_close(gpu(x.cuda()).cpu(), cpu(x), rtol=1e-8, atol=1e-8)
