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
        "adapt": "adapters",
        "Adapter": "adapters",
        "load_adapter": "adapters",
        "register_method": "adapters",
        "list_methods": "adapters",
        "AdapterMethod": "adapters",
        "LoRA": "adapters",
        "LoRAConfig": "adapters",
        "QATWithLowRank": "qat",
        "RankAllocator": "allocation",
        "search_modules": "allocation",
        "LowRankAttention": "allocation",
        "SparsePlusLowRankLinear": "training",
        "SpectralLinear": "training",
        "TrainedRankPruning": "training",
        "OrderedLowRankLinear": "training",
        "OrderedLowRankConv": "training",
        "merge_experts": "structural.experts",
        "ExpertMerge": "structural.experts",
        "fuse_blocks": "structural.fusion",
        "BlockFusion": "structural.fusion",
        "CPTensorProduct": "structural.tensor_product",
    },
)

# Subpackages load on first access as well (``attach`` maps names to objects inside modules).
import importlib as _importlib

_SUBPACKAGES = ("zoo", "federated", "quant", "optim")
_attached_getattr = __getattr__


def __getattr__(name):
    if name in _SUBPACKAGES:
        return _importlib.import_module(f"{__name__}.{name}")
    return _attached_getattr(name)


__all__ = sorted([*__all__, *_SUBPACKAGES])


def __dir__():
    return list(__all__)
