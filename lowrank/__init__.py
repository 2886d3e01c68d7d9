"""lowrank: low-rank and tensor numerics for graphs, tensors, imaging, recommendation and retrieval.

``import lowrank`` is light: it imports numpy only. Subpackages load on first
attribute access (PEP 562), so ``lowrank.linalg.randomized_svd`` works after a
bare ``import lowrank`` without paying for torch, numba, dask or tensorly.
"""

import importlib

from lowrank._utils.io import CorruptFileError

__version__ = "0.1.0"

_SUBMODULES = (
    "linalg",
    "graphs",
    "tensors",
    "vision",
    "completion",
    "streaming",
    "retrieval",
    "ctr",
    "nn",
    "datasets",
    "distributed",
)

__all__ = ["__version__", "CorruptFileError", *_SUBMODULES]


def __getattr__(name):
    if name in _SUBMODULES:
        module = importlib.import_module(f"lowrank.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'lowrank' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
