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
