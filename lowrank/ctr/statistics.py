"""Streaming output statistics (moved to :mod:`lowrank.nn.compression`; re-exported here)."""

from lowrank.nn.compression._statistics import OutputStatistics

__all__ = ["OutputStatistics"]
