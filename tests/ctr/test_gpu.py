import pytest

torch = pytest.importorskip("torch")


@pytest.mark.gpu
def test_afm_on_cuda_matches_cpu():
    from lowrank.ctr import MLPCTR, compress_afm

    torch.manual_seed(0)
    model = MLPCTR([50, 60], n_dense=4, embedding_dim=8, hidden=(32, 16)).double()
    g = torch.Generator().manual_seed(0)
    calib = (torch.randn(1000, 4, generator=g, dtype=torch.float64), torch.stack(
        [torch.randint(0, 50, (1000,), generator=g), torch.randint(0, 60, (1000,), generator=g)], 1))
    cpu, _ = compress_afm(model, calib, rank=4)
    gpu, _ = compress_afm(model.cuda(), tuple(t.cuda() for t in calib), rank=4)
    out_cpu = cpu(*calib)
    out_gpu = gpu(*(t.cuda() for t in calib))
    assert out_gpu.is_cuda
    torch.testing.assert_close(out_gpu.cpu(), out_cpu, rtol=1e-6, atol=1e-6)
