"""lowrank.nn structural compression: time/peak memory of merge_experts (Sub-MoE), fuse_blocks (FuseGPT)
and compress(..., "modegpt") at two model widths, plus a track_ of MoDeGPT's output error relative to
per-matrix weight SVD at the same parameter budget (randomly initialized models, same process).
"""

try:
    import torch
except ImportError:  # the torch extra is missing: asv skips these benchmarks
    torch = None


def _setup_torch():
    if torch is None:
        raise NotImplementedError("torch is not installed")
    torch.set_num_threads(1)


class MergeExperts:
    """``merge_experts`` 8 -> 4 experts of a zoo MoEMLP (d_model = 32 or 128, hidden 2x)."""

    params = [32, 128]
    param_names = ["d_model"]
    timeout = 300

    def setup(self, d_model):
        _setup_torch()
        from lowrank.nn import merge_experts
        from lowrank.nn.zoo import MoEMLP

        torch.manual_seed(0)
        self.merge = merge_experts
        self.moe = MoEMLP(d_model, 2 * d_model, n_experts=8, top_k=2)
        self.x = torch.randn(1024, d_model)

    def time_merge_experts(self, d_model):
        self.merge(self.moe, 4, self.x)

    def peakmem_merge_experts(self, d_model):
        self.merge(self.moe, 4, self.x)


class FuseBlocks:
    """``fuse_blocks`` removing 2 of 6 blocks of a zoo ResidualMLP with 20 distillation steps each."""

    params = [32, 128]
    param_names = ["d_model"]
    timeout = 300

    def setup(self, d_model):
        _setup_torch()
        from lowrank.nn import fuse_blocks
        from lowrank.nn.zoo import ResidualMLP

        torch.manual_seed(0)
        self.fuse = fuse_blocks
        self.model = ResidualMLP(64, 10, d_model=d_model, d_hidden=2 * d_model, n_blocks=6)
        self.x = torch.randn(512, 64)

    def time_fuse_blocks(self, d_model):
        self.fuse(self.model, "blocks", 2, self.x, steps=20)

    def peakmem_fuse_blocks(self, d_model):
        self.fuse(self.model, "blocks", 2, self.x, steps=20)


def _transformer(d_model):
    from lowrank.nn.zoo import TransformerBlock

    torch.manual_seed(0)
    return torch.nn.Sequential(*(TransformerBlock(d_model, 4, 2 * d_model) for _ in range(2))).eval()


class MoDeGPT:
    """``compress(model, "modegpt", budget=0.7)`` on two zoo transformer blocks (d_model = 32 or 128)."""

    params = [32, 128]
    param_names = ["d_model"]
    timeout = 300

    def setup(self, d_model):
        _setup_torch()
        from lowrank.nn import compress

        self.compress = compress
        self.model = _transformer(d_model)
        self.x = torch.randn(64, 16, d_model)

    def time_modegpt(self, d_model):
        self.compress(self.model, "modegpt", self.x, budget=0.7)

    def peakmem_modegpt(self, d_model):
        self.compress(self.model, "modegpt", self.x, budget=0.7)

    def track_modegpt_over_svd_output_error(self, d_model):
        small, report = self.compress(self.model, "modegpt", self.x, budget=0.7)
        linears = [n for n, m in self.model.named_modules() if isinstance(m, torch.nn.Linear)]
        svd, _ = self.compress(self.model, "svd", budget=0.7, targets=linears)
        with torch.no_grad():
            y = self.model(self.x)
            return float((small(self.x) - y).norm() / (svd(self.x) - y).norm())

    track_modegpt_over_svd_output_error.unit = "ratio"


class CPTensorProductSpeed:
    """The tensor-product op at L = 1, 2 (one copy of every l <= L), batch 4096: CP (rank 7 L^2) vs e3nn."""

    params = [1, 2]
    param_names = ["L"]
    timeout = 300

    def setup(self, L):
        _setup_torch()
        try:
            from lowrank.nn import CPTensorProduct

            irreps = "+".join(f"{l}{'e' if l % 2 == 0 else 'o'}" for l in range(L + 1))
            self.cp = CPTensorProduct(irreps, irreps, irreps, n_restarts=0)
        except ImportError:  # e3nn (the mlip extra) is missing
            raise NotImplementedError("e3nn is not installed")
        self.exact = self.cp.reference
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(4096, (L + 1) ** 2, generator=g)
        self.y = torch.randn(4096, (L + 1) ** 2, generator=g)
        torch.set_grad_enabled(False)

    def teardown(self, L):
        torch.set_grad_enabled(True)

    def time_cp_tensor_product(self, L):
        self.cp(self.x, self.y)

    def time_e3nn_tensor_product(self, L):
        self.exact(self.x, self.y)

    def peakmem_cp_tensor_product(self, L):
        self.cp(self.x, self.y)

    def track_e3nn_over_cp_time(self, L):
        import timeit

        cp = min(timeit.repeat(lambda: self.cp(self.x, self.y), number=5, repeat=5))
        exact = min(timeit.repeat(lambda: self.exact(self.x, self.y), number=5, repeat=5))
        return exact / cp

    track_e3nn_over_cp_time.unit = "ratio"
