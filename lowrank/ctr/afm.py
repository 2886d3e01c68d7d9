"""Low-rank compression of CTR models by atomic feature mimicking (AFM) and by weight SVD.

Thin faces over the compressor core :func:`lowrank.nn.compress` (methods ``"afm"`` and
``"svd"``), kept with their signatures and results. AFM compresses what a layer *outputs*: on
calibration data it measures each target layer's output mean ``mu`` and covariance, keeps the
top-``k`` eigenvectors ``U_k`` and rewrites the layer so its output is ``U_k U_k^T (y - mu) + mu``;
the error on calibration outputs is exactly the dropped eigenvalues, so ranks can be chosen per
layer by an energy threshold or globally under a parameter/FLOP budget.
"""

from lowrank.nn.compression import CompressionReport, LayerReport, compress
from lowrank.nn.compression._statistics import collect_output_statistics as _collect_statistics
from lowrank.nn.compression.afm import afm_replacement as _afm_module
from lowrank.nn.compression.svd import svd_replacement as _svd_module

__all__ = ["CompressionReport", "LayerReport", "compress_afm", "compress_weight_svd"]

# Kept importable under their old private names (tests and notebooks reached into them).
_PRIVATE = (_afm_module, _collect_statistics, _svd_module)


def compress_afm(model, calibration, *, rank=None, energy=None, budget=None, budget_metric="params",
                 targets=None, batch_size=4096, max_batches=None, inplace=False, verbose=False):
    """Compress a torch model's Linear / Conv / Embedding / EmbeddingBag layers by atomic feature mimicking.

    Same as ``lowrank.nn.compress(model, "afm", calibration, ...)``.

    Parameters
    ----------
    model : torch.nn.Module
        Trained model; put in eval mode while statistics are collected.
    calibration : iterable of batches, or a tuple of tensors
        Each batch is passed as ``model(*batch)`` (tuple/list), ``model(**batch)`` (dict) or
        ``model(batch)``. A tuple of tensors sharing their first dimension is cut into batches of
        ``batch_size`` rows. Labels, if present, must not be in the batches.
    rank : int or dict, optional
        The same rank for every target, or ``{layer_name: rank}``.
    energy : float in (0, 1], optional
        Per layer, the smallest rank keeping this fraction of the output variance.
    budget : float in (0, 1], optional
        Global budget: the compressed targets keep at most this fraction of their parameters
        (``budget_metric="params"``) or multiply-adds per row (``"flops"``); ranks go where they
        keep the most output variance per unit of cost. Exactly one of rank/energy/budget.
    budget_metric : {"params", "flops"}, default="params"
    targets : None, sequence of str / module types, or callable, default=None
        Which layers to compress: None means every supported layer; strings are fnmatch patterns
        on module names (``"mlp.*"``); types select by class; a callable gets ``(name, module)``.
        Layers that cannot shrink (rank at or above break-even, e.g. an output layer of width 1)
        are left as they are and reported with ``compressed=False``.
    batch_size : int, default=4096
    max_batches : int, optional
        Stop collecting after this many batches (at least 1).
    inplace : bool, default=False
        Modify ``model`` itself instead of a deep copy.
    verbose : bool, default=False
        Progress bar over calibration batches.

    Returns
    -------
    compressed : torch.nn.Module
    report : CompressionReport

    Raises
    ------
    ValueError
        Not exactly one of rank/energy/budget; a rank larger than a layer's output width; a
        ``rank`` dict key naming no target; empty calibration data, NaN/inf in it or in the
        weights, calibration that does not fit the model; ``max_batches < 1``; a target matching
        no supported layer; EmbeddingBag with mode "max".
    TypeError
        A target that is not a Linear, Conv, Embedding or EmbeddingBag.

    References
    ----------
    H. Yu et al., "Unified Low-rank Compression Framework for Click-through Rate Prediction",
    KDD 2024, arXiv:2405.18146.

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.ReLU(), torch.nn.Linear(6, 1))
    >>> x = torch.randn(256, 2) @ torch.randn(2, 8)   # inputs in a 2-D subspace
    >>> small, report = compress_afm(model, [(x,)], rank=2, targets=["0"])
    >>> bool(torch.allclose(small(x), model(x), atol=1e-5))
    True
    """
    return compress(model, "afm", calibration, rank=rank, energy=energy, budget=budget, budget_metric=budget_metric,
                    targets=targets, batch_size=batch_size, max_batches=max_batches, inplace=inplace,
                    verbose=verbose)


def compress_weight_svd(model, *, rank=None, energy=None, budget=None, budget_metric="params", targets=None,
                        inplace=False):
    """Baseline: replace each target's weight by its truncated SVD (what AFM improves on).

    Same as ``lowrank.nn.compress(model, "svd", ...)`` with the report's method named
    ``"weight_svd"``. Same arguments as :func:`compress_afm` except that no calibration data is
    needed: ranks and energies come from the singular values of the weights (of the tables).

    Parameters
    ----------
    model : torch.nn.Module
    rank, energy, budget, budget_metric, targets, inplace
        As for :func:`compress_afm`.

    Returns
    -------
    compressed : torch.nn.Module
    report : CompressionReport (``output_relative_error`` is the relative weight error here)

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 6))
    >>> small, report = compress_weight_svd(model, rank=6)
    >>> report.layers[0].compressed   # rank 6 of a 6x8 weight cannot save anything
    False
    """
    small, report = compress(model, "svd", rank=rank, energy=energy, budget=budget, budget_metric=budget_metric,
                             targets=targets, inplace=inplace)
    report.method = "weight_svd"
    return small, report
