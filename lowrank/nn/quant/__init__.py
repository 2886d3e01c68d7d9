"""Fake quantization of weights in torch, and quantized-plus-low-rank decompositions.

* :func:`quantize` / :func:`fake_quantize`: uniform INT-b with per-group min-max scales, or
  NormalFloat-b (QLoRA's code points from normal quantiles) with per-group absmax scales; the
  fake-quantized tensor is dense (the codes are rounded, then mapped back), and ``fake_quantize``
  passes gradients straight through inside the clipping range.
* :func:`lq_decompose`: LQ-LoRA's ``W ~ Q + L1 L2`` by alternating a rank-r SVD and quantization.
* :func:`allocate_configs`: LQ-LoRA's integer linear program over per-matrix quantization configs.
* :func:`diagonal_fisher`: mean squared gradients, the weights of the data-aware decomposition.
"""

from lowrank.nn.quant._fake import QuantConfig, fake_quantize, nf_code_points, quantize, storage_bits
from lowrank.nn.quant._fisher import diagonal_fisher
from lowrank.nn.quant._ilp import allocate_configs
from lowrank.nn.quant._layers import LQLinear, QuantLayer
from lowrank.nn.quant._lq import LQResult, lq_decompose

__all__ = ["QuantConfig", "quantize", "fake_quantize", "nf_code_points", "storage_bits", "lq_decompose",
           "LQResult", "allocate_configs", "LQLinear", "QuantLayer", "diagonal_fisher"]
