"""AFM on CUDA: compression time and inference speed-up at batch 4096 (prints figures).

Run on a CUDA machine from the repository root:  python asv_benchmarks/benchmarks/gpu/ctr_gpu.py
"""

import time

import torch

from lowrank.ctr import MLPCTR, compress_afm, compress_weight_svd


def _time(fn, repeat=50):
    torch.cuda.synchronize()
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / repeat


def main():
    dev = torch.device("cuda")
    for hidden in (1024, 4096):
        torch.manual_seed(0)
        model = MLPCTR([1000] * 26, embedding_dim=16, hidden=(hidden, hidden // 2, hidden // 4)).to(dev).eval()
        g = torch.Generator(device=dev).manual_seed(0)
        calib = (torch.randn(65536, 13, device=dev, generator=g), torch.randint(0, 1000, (65536, 26), device=dev, generator=g))
        batch = (calib[0][:4096], calib[1][:4096])
        t0 = time.perf_counter()
        small, rep = compress_afm(model, calib, budget=0.25, targets=["mlp.*"])
        torch.cuda.synchronize()
        t_compress = time.perf_counter() - t0
        svd, _ = compress_weight_svd(model, budget=0.25, targets=["mlp.*"])
        with torch.no_grad():
            full_t = _time(lambda: model(*batch))
            small_t = _time(lambda: small(*batch))
            rel = float((small(*batch) - model(*batch)).norm() / model(*batch).norm())
            rel_svd = float((svd(*batch) - model(*batch)).norm() / model(*batch).norm())
        mlp_before = sum(r.params_before for r in rep.layers)
        mlp_after = sum(r.params_after for r in rep.layers)
        print(f"hidden={hidden}: AFM compress {t_compress:.3f}s; MLP params {mlp_before:,}->{mlp_after:,} "
              f"(FLOP ratio {mlp_before / mlp_after:.2f}x); batch-4096 forward {full_t * 1e3:.3f} ms -> "
              f"{small_t * 1e3:.3f} ms (speed-up {full_t / small_t:.2f}x); logit rel. change AFM {rel:.4f} "
              f"vs weight-SVD {rel_svd:.4f} (random-init model)")


if __name__ == "__main__":
    main()
