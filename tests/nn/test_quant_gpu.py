"""The quantization pieces on CUDA give the CPU results (skipped without a GPU)."""

import pytest

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

from lowrank.nn import QATWithLowRank, adapt  # noqa: E402
from lowrank.nn.quant import fake_quantize, quantize  # noqa: E402


@pytest.mark.parametrize("kind", ["nf", "int"])
def test_fake_quantize_on_cuda_matches_cpu(kind):
    w = torch.randn(256, 300, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    cpu = quantize(w, 3, 64, kind)
    wc = w.cuda().requires_grad_(True)
    q = fake_quantize(wc, 3, 64, kind)
    assert q.device.type == "cuda"
    torch.testing.assert_close(q.detach().cpu(), cpu, rtol=0, atol=1e-12)
    q.sum().backward()
    assert wc.grad.device.type == "cuda" and torch.all(wc.grad == 1)


def test_qat_and_lq_lora_train_on_cuda():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4)).cuda()
    qat = QATWithLowRank(model, total_steps=12, bits=4, rank=8)
    opt = torch.optim.Adam(qat.parameters(), lr=1e-2)
    for _ in range(12):
        opt.zero_grad()
        model(torch.randn(16, 32, device="cuda")).pow(2).mean().backward()
        opt.step()
        qat.step(opt)
    assert qat.ranks() == {"0": 0, "2": 0}
    final = qat.finalize()
    x = torch.randn(5, 32, device="cuda")
    w0 = quantize(final[0].weight.detach(), 4, 64, "int")
    ref = torch.nn.functional.linear(torch.relu(torch.nn.functional.linear(x, w0, final[0].bias)),
                                     quantize(final[2].weight.detach(), 4, 64, "int"), final[2].bias)
    torch.testing.assert_close(final(x), ref, rtol=1e-5, atol=1e-5)
    plain = torch.nn.Sequential(torch.nn.Linear(32, 64)).cuda()
    adapter = adapt(plain, "lq_lora", rank=4, bits=3, rng=0)
    assert all(p.device.type == "cuda" for p in adapter.trainable_parameters())
    with torch.no_grad():
        unmerged = plain(x)
        adapter.merge()
        torch.testing.assert_close(plain(x), unmerged, rtol=1e-5, atol=1e-5)
