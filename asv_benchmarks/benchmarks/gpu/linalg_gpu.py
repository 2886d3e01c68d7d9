"""randomized_svd: numpy (CPU) against torch on CUDA, same matrices (prints figures).

Run on a CUDA machine from the repository root:  python asv_benchmarks/benchmarks/gpu/linalg_gpu.py
"""

import time

import numpy as np
import torch
from sklearn.utils.extmath import randomized_svd as sk_randomized_svd

from lowrank.linalg import randomized_svd


def _best(fn, repeat=3, cuda=False):
    fn()
    best = np.inf
    for _ in range(repeat):
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    rng = np.random.default_rng(0)
    for n in (4000, 8000):
        A = ((rng.standard_normal((n, 200)) * 0.97 ** np.arange(200)) @ rng.standard_normal((200, n)) / np.sqrt(n))
        for dtype in (np.float64, np.float32):
            Ad = A.astype(dtype)
            At = torch.from_numpy(Ad).cuda()
            t_np = _best(lambda: randomized_svd(Ad, 20, rng=0))
            t_sk = _best(lambda: sk_randomized_svd(Ad, 20, random_state=0))
            t_cu = _best(lambda: randomized_svd(At, 20, rng=0), repeat=10, cuda=True)
            s_np = randomized_svd(Ad, 20, rng=0)[1]
            s_cu = randomized_svd(At, 20, rng=0)[1].cpu().numpy()
            print(f"dense {n}x{n} {np.dtype(dtype).name} rank 20: numpy {t_np:.3f}s, sklearn {t_sk:.3f}s, "
                  f"torch CUDA {t_cu * 1e3:.2f} ms -> {t_np / t_cu:.0f}x vs numpy; "
                  f"max rel diff of s {np.max(np.abs(s_np - s_cu) / s_np):.1e}")


if __name__ == "__main__":
    main()
