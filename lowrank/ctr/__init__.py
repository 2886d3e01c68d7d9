"""Click-through-rate models and their low-rank compression by atomic feature mimicking (AFM).

Requires the ``torch`` extra.
"""

from lowrank._utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "compress_afm": "afm",
        "compress_weight_svd": "afm",
        "OutputStatistics": "statistics",
        "CompressionReport": "afm",
        "MLPCTR": "models",
        "DeepFM": "models",
        "DCNv2": "models",
        "CTRTrainer": "training",
        "evaluate_ctr": "training",
    },
)
