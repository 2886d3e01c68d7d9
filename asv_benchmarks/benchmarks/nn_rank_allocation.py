"""lowrank.nn.allocation: one IncreLoRA training step with its RankAllocator call (an allocation step:
rank growth and optimizer-state swap included), one search_modules epoch and one DR-RL policy step
(LowRankAttention.reinforce_step), each at two widths.

The peer for the ratio is a plain LoRA training step of the same rank on the same model, in the same
process: the allocator's score needs ``delta W`` formed in the forward, which a LoRA step does not.
"""

try:
    import torch
except ImportError:  # the torch extra is missing: asv skips these benchmarks
    torch = None

from ._common import best_of


def _mlp(width, depth=3):
    nn = torch.nn
    layers = [nn.Linear(width, width) for _ in range(depth)]
    return nn.Sequential(*[m for layer in layers for m in (layer, nn.ReLU())])


class AllocationStep:
    """time_/peakmem_ of one train step + allocator.step (scheduled: every call grows one layer)."""

    params = [128, 512]
    param_names = ["width"]
    timeout = 300

    def setup(self, width):
        if torch is None:
            raise NotImplementedError("torch is not installed")
        from lowrank.nn import RankAllocator, adapt

        torch.set_num_threads(1)
        torch.manual_seed(0)
        self.model = _mlp(width)
        self.adapter = adapt(self.model, "increlora", rank=4, rng=0)
        self.opt = torch.optim.Adam(self.adapter.trainable_parameters(), lr=1e-3)
        self.alloc = RankAllocator(self.adapter, self.opt, target_rank=width // 2, warmup=0, interval=1, rng=0)
        self.x = torch.randn(256, width)
        self.lora_model = _mlp(width)
        self.lora = adapt(self.lora_model, "lora", rank=4, rng=0)
        self.lora_opt = torch.optim.Adam(self.lora.trainable_parameters(), lr=1e-3)

    def _step(self):
        self.opt.zero_grad()
        (self.model(self.x).square().mean() + self.alloc.regularization()).backward()
        self.opt.step()
        self.alloc.step(self.model)

    def _lora_step(self):
        self.lora_opt.zero_grad()
        self.lora_model(self.x).square().mean().backward()
        self.lora_opt.step()

    def time_allocation_step(self, width):
        self._step()

    def peakmem_allocation_step(self, width):
        self._step()

    def track_allocation_step_over_lora_step(self, width):
        self._step()
        self._lora_step()
        return best_of(self._step, repeat=5) / best_of(self._lora_step, repeat=5)

    track_allocation_step_over_lora_step.unit = "ratio"


class SearchEpoch:
    """time_/peakmem_ of search_modules over one epoch (256 train rows, batch 32: 8 alternations)."""

    params = [128, 512]
    param_names = ["width"]
    timeout = 300

    def setup(self, width):
        if torch is None:
            raise NotImplementedError("torch is not installed")
        torch.set_num_threads(1)
        torch.manual_seed(0)
        self.model = _mlp(width)
        g = torch.Generator().manual_seed(0)
        self.train = (torch.randn(256, width, generator=g), torch.randn(256, width, generator=g))
        self.val = (torch.randn(256, width, generator=g), torch.randn(256, width, generator=g))

    def _search(self):
        from lowrank.nn import search_modules

        search_modules(self.model, self.train, self.val, k=1, rank=4, steps=8, loss="mse", rng=0)

    def time_search_epoch(self, width):
        self._search()

    def peakmem_search_epoch(self, width):
        self._search()


class PolicyStep:
    """time_/peakmem_ of one DR-RL REINFORCE policy step (LowRankAttention, batch 16, length 32, 4 heads)
    at two model widths, and track_ of the factored forward's time over exact attention (same process)."""

    params = [64, 256]
    param_names = ["width"]
    timeout = 300

    def setup(self, width):
        if torch is None:
            raise NotImplementedError("torch is not installed")
        from lowrank.nn.allocation import LowRankAttention

        torch.set_num_threads(1)
        torch.manual_seed(0)
        self.attn = LowRankAttention(width, 4, ranks=(1, 2, 4, 8, 16), rng=0)
        self.opt = torch.optim.Adam(self.attn.policy.parameters(), lr=1e-2)
        self.x = torch.randn(16, 32, width)

    def time_policy_step(self, width):
        self.attn.reinforce_step(self.x, self.opt)

    def peakmem_policy_step(self, width):
        self.attn.reinforce_step(self.x, self.opt)

    def track_factored_forward_over_exact(self, width):
        def factored():
            with torch.no_grad():
                self.attn(self.x, rank=4)

        def exact():
            with torch.no_grad():
                self.attn.exact(self.x)

        factored()
        exact()
        return best_of(factored, repeat=5) / best_of(exact, repeat=5)

    track_factored_forward_over_exact.unit = "ratio"
