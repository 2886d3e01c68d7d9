"""Where low rank goes and how much: rank allocation during training (IncreLoRA's RankAllocator) and
differentiable module search (DiffoRA's search_modules)."""

from lowrank.nn.allocation.allocator import RankAllocator
from lowrank.nn.allocation.search import ModuleSearchResult, search_modules

__all__ = ["RankAllocator", "search_modules", "ModuleSearchResult"]
