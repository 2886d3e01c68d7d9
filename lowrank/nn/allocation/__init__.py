"""Where low rank goes and how much: rank allocation during training (IncreLoRA's RankAllocator)."""

from lowrank.nn.allocation.allocator import RankAllocator

__all__ = ["RankAllocator"]
