"""Low-rank layers for any torch model (requires the ``torch`` extra)."""

from lowrank._utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "LowRankLinear": "layers",
        "LowRankEmbedding": "layers",
        "LowRankEmbeddingBag": "layers",
        "merge_linear": "layers",
        "count_parameters": "layers",
        "LowRankConv": "layers",
        "compress": "compression",
        "register_compressor": "compression",
        "list_compressors": "compression",
        "CompressionReport": "compression",
        "LayerReport": "compression",
    },
)
