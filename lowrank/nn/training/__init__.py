"""Low-rank training: layers and callbacks that make a network low rank (or low rank plus sparse) as it trains.

Public names are re-exported by :mod:`lowrank.nn`: ``SparsePlusLowRankLinear`` (SLTrain / LOST),
``SpectralLinear`` (SST), ``TrainedRankPruning`` (TRP) and ``OrderedLowRankLinear`` (Maestro). The optimizer
``ProjectedAdam`` lives in :mod:`lowrank.nn.optim`.
"""

from lowrank._utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "SparsePlusLowRankLinear": "sparse_lowrank",
        "SpectralLinear": "spectral",
        "TrainedRankPruning": "trp",
        "OrderedLowRankLinear": "maestro",
        "OrderedLowRankConv": "maestro",
    },
)
