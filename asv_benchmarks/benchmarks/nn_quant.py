"""lowrank.nn.quant: LQ-LoRA decomposition time / peak memory per matrix at two sizes, the ILP's solve
time for 100 matrices, fake-quantization time, and the LQ error relative to plain quantization.

The peer of the quality ratio is plain NF quantization at the same bits (what LQ-LoRA improves on),
measured on the same matrix in the same process; no installed library offers NF-b fake
quantization at arbitrary b on the CPU (bitsandbytes and torchao store NF4 only).
"""

import numpy as np

try:
    import torch
except ImportError:  # the torch extra is missing: asv skips these benchmarks
    torch = None


def _matrix(n, seed=0):
    """An ``n x n`` weight with a decaying spectrum plus noise (as trained layers have)."""
    g = torch.Generator().manual_seed(seed)
    k = max(n // 16, 1)
    low = torch.randn(n, k, generator=g, dtype=torch.float64) @ torch.randn(k, n, generator=g, dtype=torch.float64)
    return low / k**0.5 + 0.3 * torch.randn(n, n, generator=g, dtype=torch.float64)


class LQDecompose:
    """One matrix, rank 16, 3-bit NF, group 64."""

    params = [256, 1024]
    param_names = ["n"]
    timeout = 300
    number = 1
    repeat = 3

    def setup(self, n):
        if torch is None:
            raise NotImplementedError("torch is not installed")
        torch.set_num_threads(1)
        self.W = _matrix(n)

    def time_lq_decompose(self, n):
        from lowrank.nn.quant import lq_decompose

        lq_decompose(self.W, 16, 3, 64, n_iter=10)

    def peakmem_lq_decompose(self, n):
        from lowrank.nn.quant import lq_decompose

        lq_decompose(self.W, 16, 3, 64, n_iter=10)

    def time_fake_quantize_nf(self, n):
        from lowrank.nn.quant import fake_quantize

        fake_quantize(self.W, 3, 64)

    def track_lq_error_over_plain_quantization(self, n):
        from lowrank.nn.quant import lq_decompose, quantize

        err = lq_decompose(self.W, 16, 3, 64, n_iter=10).errors[-1]
        return err / float((self.W - quantize(self.W, 3, 64)).norm())

    track_lq_error_over_plain_quantization.unit = "ratio"


class ILP:
    """LQ-LoRA's bit allocation: 100 matrices x 12 configs (bits {2,3,4,8} x groups {32,64,128})."""

    params = [100]
    param_names = ["n_matrices"]
    timeout = 300

    def setup(self, n_matrices):
        rng = np.random.default_rng(0)
        bits = np.array([b + 16 / g for b in (2, 3, 4, 8) for g in (32, 64, 128)])
        self.bits = bits
        self.sizes = rng.integers(10_000, 1_000_000, n_matrices)
        # per-matrix error falling geometrically with bits, at its own rate and scale
        self.errors = rng.uniform(0.5, 5, (n_matrices, 1)) * 2.0 ** (-rng.uniform(1, 2, (n_matrices, 1)) * bits)

    def time_allocate(self, n_matrices):
        from lowrank.nn.quant import allocate_configs

        allocate_configs(self.errors, self.bits, self.sizes, 3.3)

    def track_error_over_uniform_3bit(self, n_matrices):
        from lowrank.nn.quant import allocate_configs

        choice = allocate_configs(self.errors, self.bits, self.sizes, 3.25)
        uniform = int(np.argmin(np.abs(self.bits - 3.25)))  # 3 bits, group 64
        return float(self.errors[np.arange(n_matrices), choice].sum() / self.errors[:, uniform].sum())

    track_error_over_uniform_3bit.unit = "ratio"
