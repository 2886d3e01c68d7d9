"""Where low rank goes and how much: rank allocation during training (IncreLoRA's RankAllocator),
differentiable module search (DiffoRA's search_modules) and per-input attention ranks (DR-RL's
LowRankAttention)."""

from lowrank.nn.allocation.allocator import RankAllocator
from lowrank.nn.allocation.attention import LowRankAttention, attention_flops
from lowrank.nn.allocation.search import ModuleSearchResult, search_modules

__all__ = ["RankAllocator", "search_modules", "ModuleSearchResult", "LowRankAttention", "attention_flops"]
