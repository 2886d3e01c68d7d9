"""GPU figures for lowrank.tensors: HOSVD / Tucker / CP / TT on CUDA torch tensors vs the same code on numpy.

Run on the accelerator machine:  python benchmarks/gpu/tensors_gpu.py
Prints one line per (method, size): seconds on CUDA (after a warm-up), seconds on numpy, relative errors.
"""

import time

import numpy as np
import torch

from lowrank.tensors import cp_als, hosvd, st_hosvd, tt_svd, tucker


def planted(n, rank, seed=0):
    rng = np.random.default_rng(seed)
    A = [rng.standard_normal((n, rank)) for _ in range(3)]
    T = np.einsum("ir,jr,kr->ijk", *A)
    E = rng.standard_normal(T.shape)
    return T + 0.01 * np.linalg.norm(T) / np.linalg.norm(E) * E


def dense(D):
    return D.to_tensor() if not isinstance(D.factors[0], torch.Tensor) else None


def rel(D, X):
    import tensorly as tl

    if isinstance(D.factors[0], torch.Tensor):
        tl.set_backend("pytorch")
        R = D.to_tensor().double().cpu().numpy()
        tl.set_backend("numpy")
    else:
        R = D.to_tensor()
    return float(np.linalg.norm(R - X) / np.linalg.norm(X))


def timed(fn, sync=False):
    if sync:
        torch.cuda.synchronize()
    t = time.perf_counter()
    out = fn()
    if sync:
        torch.cuda.synchronize()
    return out, time.perf_counter() - t


def main():
    assert torch.cuda.is_available(), "needs CUDA"
    rank = 10
    for n in (200, 400):
        X = planted(n, rank)
        for dtype in (torch.float64, torch.float32):
            Xt = torch.tensor(X, device="cuda", dtype=dtype)
            for name, fn in [("hosvd", lambda A: hosvd(A, rank)), ("st_hosvd", lambda A: st_hosvd(A, rank)),
                             ("tucker", lambda A: tucker(A, rank)), ("cp_als", lambda A: cp_als(A, rank, rng=0)),
                             ("tt_svd", lambda A: tt_svd(A, rank))]:
                fn(Xt)  # warm-up (cuSOLVER handles, kernels)
                D, t_gpu = timed(lambda: fn(Xt), sync=True)
                line = f"{name:9s} n={n} {str(dtype)[6:]:8s} cuda {t_gpu:7.3f}s err {rel(D, X):.5f}"
                if dtype == torch.float64:
                    Dn, t_np = timed(lambda: fn(X))
                    line += f" | numpy {t_np:7.3f}s err {rel(Dn, X):.5f} | speed-up {t_np / t_gpu:.1f}x"
                print(line, flush=True)
        mask = torch.rand(Xt.shape, device="cuda") < 0.5
        D, t = timed(lambda: tucker(torch.tensor(X, device="cuda"), rank, mask=mask), sync=True)
        print(f"tucker+mask n={n} cuda {t:.3f}s err {rel(D, X):.5f}", flush=True)


if __name__ == "__main__":
    main()
