"""``compress(model, method, ...)``: one flow for every registered compressor.

Validation (``_iv``) once per call; then the body: copy the model, run the calibration data once
if the compressor needs output statistics, ask the compressor for each target's spectrum, choose
ranks (fixed / per layer / energy / global budget), build and swap the replacements that save
parameters, and report.
"""

import copy
import logging
import math
from dataclasses import dataclass

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_choice, check_float, check_int
from lowrank.nn._targets import replace_module, select_modules
from lowrank.nn.compression._ranks import _CONV, output_dim
from lowrank.nn.compression._registry import get_compressor
from lowrank.nn.compression._report import CompressionReport, LayerReport
from lowrank.nn.compression._statistics import (check_calibration, check_finite_parameters,
                                                collect_output_statistics)
from lowrank.nn.layers import count_parameters

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn

logger = logging.getLogger("lowrank.nn")


@dataclass(frozen=True)
class CompressionOptions:
    """The checked arguments of one ``compress`` call (built by ``_iv``)."""

    method: str
    targets: tuple
    rank: object
    energy: object
    budget: object
    budget_metric: str
    explicit: bool
    batch_size: int
    max_batches: object
    inplace: bool
    verbose: bool



# layers whose rank the core can bound itself; other targets (whole modules) are bounded by their compressor
_LAYERS = (nn.Linear, nn.Embedding, nn.EmbeddingBag, *_CONV)

def compress(model, method, calibration=None, *, rank=None, energy=None, budget=None, budget_metric="params",
             targets=None, batch_size=4096, max_batches=None, inplace=False, verbose=False, **options):
    """Compress a torch model's layers with a registered low-rank compressor.

    Parameters
    ----------
    model : torch.nn.Module
        Trained model (put in eval mode while calibration statistics are collected).
    method : str
        A registered compressor (:func:`list_compressors`): ``"svd"`` (truncated weight SVD, no
        calibration) or ``"afm"`` (atomic feature mimicking on calibration outputs), ...
    calibration : iterable of batches, tuple of tensors or tensor, optional
        Required by compressors that use output statistics (``"afm"``); refused by those that do
        not (``"svd"``), so that it is never silently ignored. Each batch is passed as
        ``model(*batch)`` (tuple/list), ``model(**batch)`` (dict) or ``model(batch)``; a tuple of
        tensors sharing their first dimension (or one tensor) is cut into ``batch_size`` rows.
        Labels, if present, must not be in the batches. The data is read once per call.
    rank : int or dict, optional
        The same rank for every target, or ``{layer_name: rank}`` (unnamed targets stay dense).
    energy : float in (0, 1], optional
        Per layer, the smallest rank keeping this fraction of the spectrum's energy.
    budget : float in (0, 1], optional
        Global budget: the targets keep at most this fraction of their parameters
        (``budget_metric="params"``) or multiply-adds per row (``"flops"``); rank units go where
        they keep the most relative energy per unit of cost. Exactly one of rank/energy/budget.
    budget_metric : {"params", "flops"}, default="params"
    targets : None, str, type, callable or list of str/type, default=None
        Which layers to compress: None means every supported layer (Linear, Conv1d/2d/3d,
        Embedding, EmbeddingBag); strings are fnmatch patterns on module names (``"mlp.*"``),
        types select by class, a callable gets ``(name, module)``. Layers that cannot shrink
        (rank at or above break-even, e.g. an output layer of width 1) are left as they are and
        reported with ``compressed=False``.
    batch_size : int, default=4096
        Rows per batch when ``calibration`` is a tuple of tensors.
    max_batches : int, optional
        Stop collecting after this many batches.
    inplace : bool, default=False
        Modify ``model`` itself instead of a deep copy.
    verbose : bool, default=False
        Progress bar over calibration batches.
    **options
        Options of the compressor (its ``Options`` dataclass fields).

    Returns
    -------
    compressed : torch.nn.Module
    report : CompressionReport
        Per-layer ranks, parameters before/after, energy kept and relative error.

    Raises
    ------
    ValueError
        Not exactly one of rank/energy/budget; an unknown method; a rank larger than a layer's
        output width; a ``rank`` dict key naming no target; ``max_batches`` < 1; calibration
        missing, empty, holding NaN/inf or not fitting the model; NaN/inf in the model's weights;
        a target matching no supported layer; EmbeddingBag mode "max"; a grouped convolution.
    TypeError
        A target of an unsupported type; non-integer ranks; unknown compressor options.

    References
    ----------
    H. Yu et al., "Unified Low-rank Compression Framework for Click-through Rate Prediction",
    KDD 2024, arXiv:2405.18146 (AFM). C. Eckart and G. Young, Psychometrika 1936 (truncated SVD).

    Examples
    --------
    >>> import torch
    >>> from lowrank.nn import compress
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.ReLU(), torch.nn.Linear(6, 1))
    >>> x = torch.randn(256, 2) @ torch.randn(2, 8)   # inputs in a 2-D subspace
    >>> small, report = compress(model, "afm", x, rank=2, targets=["0"])
    >>> bool(torch.allclose(small(x), model(x), atol=1e-5))
    True
    >>> report.layers[0].params_before, report.layers[0].params_after
    (54, 36)
    """
    compressor, opts = _iv(model, method, calibration, rank, energy, budget, budget_metric, targets, batch_size,
                           max_batches, inplace, verbose, options)
    return _compress(model, compressor, calibration, opts)


def _iv(model, method, calibration, rank, energy, budget, budget_metric, targets, batch_size, max_batches,
        inplace, verbose, options):
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
    cls = get_compressor(method)
    compressor = cls(cls.make_options(**options))
    if sum(x is not None for x in (rank, energy, budget)) != 1:
        raise ValueError("give exactly one of `rank`, `energy` or `budget`")
    if energy is not None:
        energy = check_float(energy, "energy", low=0.0, high=1.0, low_inclusive=False)
    if budget is not None:
        budget = check_float(budget, "budget", low=0.0, high=1.0, low_inclusive=False)
    check_choice(budget_metric, "budget_metric", ("params", "flops"))
    batch_size = check_int(batch_size, "batch_size", low=1)
    if max_batches is not None:
        max_batches = check_int(max_batches, "max_batches", low=1)
    try:
        names = select_modules(model, targets, cls.supported, check=compressor.check)
    except TypeError as err:
        kinds = ", ".join(t.__name__ for t in cls.supported)
        raise TypeError(f"{err} (only {kinds} layers can be compressed by {method!r})") from None
    explicit = targets is not None
    modules = dict(model.named_modules())
    if rank is not None:
        rank = _check_rank(rank, names, modules, explicit)
    check_finite_parameters(model)
    if compressor.statistics is not None:
        check_calibration(calibration)
    elif calibration is not None:
        raise ValueError(f"`calibration` is not used by {method!r} (it compresses the weights); pass calibration=None")
    opts = CompressionOptions(method=method, targets=tuple(names), rank=rank, energy=energy, budget=budget,
                              budget_metric=budget_metric, explicit=explicit, batch_size=batch_size,
                              max_batches=max_batches, inplace=bool(inplace), verbose=bool(verbose))
    return compressor, opts


def _check_rank(rank, names, modules, explicit):
    if isinstance(rank, dict):
        unknown = [key for key in rank if key not in names]
        if unknown:
            raise ValueError(f"`rank`: {unknown[0]!r} names no target layer (targets: {', '.join(names)})")
        rank = {name: check_int(k, f"rank[{name!r}]", low=1) for name, k in rank.items()}
        checks = rank.items()
    else:
        rank = check_int(rank, "rank", low=1)
        checks = [(name, rank) for name in names] if explicit else []
    for name, k in checks:
        if not isinstance(modules[name], _LAYERS):
            continue  # a structural target (a whole MLP or attention module): its compressor bounds the rank
        width = output_dim(modules[name])
        if k > width:
            raise ValueError(f"`rank`={k} is larger than the output width {width} of layer {name!r}")
    return rank


def _compress(model, compressor, calibration, opts):
    work = model if opts.inplace else copy.deepcopy(model)
    modules = dict(work.named_modules())
    targets = {name: modules[name] for name in opts.targets}
    stats = {}
    if compressor.statistics == "outputs":
        stats = collect_output_statistics(work, targets, calibration, opts.batch_size, opts.max_batches,
                                          opts.verbose, desc=f"{opts.method} calibration")
    elif compressor.statistics == "custom":  # the compressor runs its own calibration pass (e.g. gradients)
        stats = compressor.collect(work, targets, calibration, opts)
    spectra = {name: compressor.spectrum(name, m, stats.get(name)) for name, m in targets.items()}
    ranks = compressor.choose_ranks({name: (m, spectra[name].energies) for name, m in targets.items()}, opts.rank,
                                    opts.energy, opts.budget, opts.budget_metric, opts.explicit)
    report = CompressionReport(opts.method, model_params_before=count_parameters(model),
                               error_basis=compressor.error_basis)
    for name, module in targets.items():
        spectrum, k, full = spectra[name], ranks[name], compressor.full_rank(module)
        before = count_parameters(module)
        new = compressor.build(module, spectrum, k) if k < full else None
        after = count_parameters(new) if new is not None else before
        if new is None or after >= before:  # break-even: a factorization that saves nothing is not used
            new, after, k = None, before, full
        else:
            replace_module(work, name, new)
        report.layers.append(_layer_report(name, module, spectrum, k, full, before, after, new is not None))
    report.model_params_after = count_parameters(work)
    compressor.finish(work, report)
    logger.info("compression: %s", report)
    return work, report


def _layer_report(name, module, spectrum, k, full, before, after, compressed):
    e, total = spectrum.energies, spectrum.total
    dropped = float(e[k:].sum()) if compressed and k < e.numel() else 0.0
    return LayerReport(
        name=name, kind=type(module).__name__, rank=k, full_rank=full, params_before=before, params_after=after,
        energy_kept=float(e[:k].sum() / e.sum()) if float(e.sum()) > 0 else 1.0,
        output_relative_error=math.sqrt(max(dropped, 0.0) / total) if total > 0 else 0.0,
        compressed=compressed)
