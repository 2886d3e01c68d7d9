"""One compressor core for any torch model: ``compress(model, method, ...)`` and its registry.

Public names are re-exported by :mod:`lowrank.nn` (``compress``, ``register_compressor``,
``list_compressors``, ``CompressionReport``, ``LayerReport``). A new compressor subclasses
:class:`Compressor` (a frozen ``Options`` dataclass, ``spectrum`` and ``build``) and registers
itself with :func:`register_compressor`; the core does the rest.
"""

from lowrank.nn.compression._base import Compressor, LayerSpectrum, NoOptions
from lowrank.nn.compression._core import compress
from lowrank.nn.compression._registry import get_compressor, list_compressors, register_compressor
from lowrank.nn.compression._report import CompressionReport, LayerReport
from lowrank.nn.compression._statistics import OutputStatistics
import lowrank.nn.structural.modegpt  # noqa: E402,F401  (registers "modegpt")

__all__ = ["Compressor", "CompressionReport", "LayerReport", "LayerSpectrum", "NoOptions", "OutputStatistics",
           "compress", "get_compressor", "list_compressors", "register_compressor"]
