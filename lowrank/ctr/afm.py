"""Low-rank compression of torch models by atomic feature mimicking (AFM) and by weight SVD.

AFM compresses what a layer *outputs*, not its weights: on calibration data it measures each
target layer's output mean ``mu`` and covariance, keeps the top-``k`` eigenvectors ``U_k``, and
rewrites the layer so its output is ``U_k U_k^T (y - mu) + mu``:

* ``nn.Linear`` ``y = W x + b``  ->  ``(U_k^T W, U_k^T b)`` then ``(U_k, (I - U_k U_k^T) mu)``;
* ``nn.Embedding`` table ``D``   ->  codes ``(D - mu) U_k`` then ``(U_k, mu)``;
* ``nn.EmbeddingBag`` (sum/mean) ->  the same per row, with the mean added per bagged index.

The error on calibration outputs is exactly the dropped eigenvalues, so ranks can be chosen per
layer by an energy threshold or globally under a parameter/FLOP budget.
"""

import copy
import fnmatch
import logging
from dataclasses import dataclass, field

import numpy as np

from lowrank._utils.optional import import_optional
from lowrank._utils.progress import progress
from lowrank._utils.validation import check_choice, check_float, check_int
from lowrank.ctr.statistics import OutputStatistics
from lowrank.nn.layers import LowRankEmbedding, LowRankEmbeddingBag, LowRankLinear, _bag_weights, count_parameters

torch = import_optional("torch", purpose="lowrank.ctr")
nn = torch.nn

logger = logging.getLogger("lowrank.ctr")

_SUPPORTED = (nn.Linear, nn.Embedding, nn.EmbeddingBag)


@dataclass
class LayerReport:
    """What happened to one target layer."""

    name: str
    kind: str
    rank: int
    full_rank: int
    params_before: int
    params_after: int
    energy_kept: float
    output_relative_error: float
    compressed: bool


@dataclass
class CompressionReport:
    """Per-layer ranks, parameter counts and output reconstruction errors of a compression.

    ``output_relative_error`` is ``sqrt(E||y - y_hat||^2 / E||y||^2)`` on the calibration outputs.
    """

    method: str
    layers: list = field(default_factory=list)
    model_params_before: int = 0
    model_params_after: int = 0

    @property
    def compression_ratio(self):
        """Whole-model parameters before / after."""
        return self.model_params_before / max(1, self.model_params_after)

    def __str__(self):
        lines = [f"{self.method}: {self.model_params_before:,} -> {self.model_params_after:,} parameters "
                 f"({self.compression_ratio:.2f}x)"]
        lines.append(f"{'layer':<28} {'kind':<13} {'rank':>9} {'params':>21} {'energy':>7} {'out err':>8}")
        for r in self.layers:
            rank = f"{r.rank}/{r.full_rank}"
            params = f"{r.params_before:,}->{r.params_after:,}"
            lines.append(f"{r.name:<28} {r.kind:<13} {rank:>9} {params:>21} {r.energy_kept:7.4f} "
                         f"{r.output_relative_error:8.4f}")
        return "\n".join(lines)


def compress_afm(model, calibration, *, rank=None, energy=None, budget=None, budget_metric="params",
                 targets=None, batch_size=4096, max_batches=None, inplace=False, verbose=False):
    """Compress a torch model's Linear / Embedding / EmbeddingBag layers by atomic feature mimicking.

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
        Stop collecting after this many batches.
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
        Not exactly one of rank/energy/budget; a rank larger than a layer's output width; empty
        calibration data; a target matching no supported layer; EmbeddingBag with mode "max".
    TypeError
        A target that is not a Linear, Embedding or EmbeddingBag.

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
    _check_exactly_one(rank, energy, budget)
    check_choice(budget_metric, "budget_metric", ("params", "flops"))
    batch_size = check_int(batch_size, "batch_size", low=1)
    named = _select_targets(model, targets)
    work = model if inplace else copy.deepcopy(model)
    stats = _collect_statistics(work, dict((n, m) for n, m in work.named_modules() if n in named),
                                calibration, batch_size, max_batches, verbose)
    spectra = {}
    for name, st in stats.items():
        w, V = st.principal_subspace()
        spectra[name] = (w, V)
    modules = dict(work.named_modules())
    ranks = _choose_ranks({n: modules[n] for n in named}, {n: s[0] for n, s in spectra.items()},
                          rank, energy, budget, budget_metric, explicit=targets is not None)
    report = CompressionReport("afm", model_params_before=count_parameters(model))
    for name in named:
        module = modules[name]
        w, V = spectra[name]
        st = stats[name]
        k = ranks[name]
        full = _full_rank(module)
        before = count_parameters(module)
        total = float(torch.trace(st.second_moment))
        err = float(w[k:].sum()) if k < w.numel() else 0.0
        new = _afm_module(module, V[:, :k], st) if k < full else None
        after = count_parameters(new) if new is not None else before
        if new is None or after >= before:
            new, after, k_eff, err = None, before, full, 0.0
        else:
            k_eff = k
            _replace(work, name, new)
        report.layers.append(LayerReport(
            name=name, kind=type(module).__name__, rank=k_eff, full_rank=full, params_before=before,
            params_after=after, energy_kept=float(w[:k_eff].sum() / w.sum()) if float(w.sum()) > 0 else 1.0,
            output_relative_error=float(np.sqrt(max(err, 0.0) / total)) if total > 0 else 0.0,
            compressed=new is not None))
    report.model_params_after = count_parameters(work)
    logger.info("AFM compression: %s", report)
    return work, report


def compress_weight_svd(model, *, rank=None, energy=None, budget=None, budget_metric="params", targets=None,
                        inplace=False):
    """Baseline: replace each target's weight by its truncated SVD (what AFM improves on).

    Same arguments as :func:`compress_afm` except that no calibration data is needed: ranks and
    energies come from the singular values of the weights (of the embedding tables).

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
    _check_exactly_one(rank, energy, budget)
    check_choice(budget_metric, "budget_metric", ("params", "flops"))
    named = _select_targets(model, targets)
    work = model if inplace else copy.deepcopy(model)
    modules = dict(work.named_modules())
    svds = {}
    for name in named:
        # (out, in) for a Linear, the table (num, dim) for an embedding
        W = modules[name].weight.detach().to(torch.float64)
        U, s, Vh = torch.linalg.svd(W, full_matrices=False)
        svds[name] = (U, s, Vh)
    ranks = _choose_ranks({n: modules[n] for n in named}, {n: svds[n][1] ** 2 for n in named},
                          rank, energy, budget, budget_metric, explicit=targets is not None)
    report = CompressionReport("weight_svd", model_params_before=count_parameters(model))
    for name in named:
        module = modules[name]
        U, s, Vh = svds[name]
        k, full, before = ranks[name], _full_rank(module), count_parameters(module)
        new = _svd_module(module, U[:, :k], s[:k], Vh[:k]) if k < full else None
        after = count_parameters(new) if new is not None else before
        if new is None or after >= before:
            new, after, k = None, before, full
        else:
            _replace(work, name, new)
        e = s**2
        report.layers.append(LayerReport(
            name=name, kind=type(module).__name__, rank=k, full_rank=full, params_before=before, params_after=after,
            energy_kept=float(e[:k].sum() / e.sum()) if float(e.sum()) > 0 else 1.0,
            output_relative_error=float(torch.sqrt(e[k:].sum() / e.sum())) if float(e.sum()) > 0 else 0.0,
            compressed=new is not None))
    report.model_params_after = count_parameters(work)
    return work, report


# --------------------------------------------------------------------------- targets and statistics


def _check_exactly_one(rank, energy, budget):
    given = [x is not None for x in (rank, energy, budget)]
    if sum(given) != 1:
        raise ValueError("give exactly one of `rank`, `energy` or `budget`")
    if energy is not None:
        check_float(energy, "energy", low=0.0, high=1.0, low_inclusive=False)
    if budget is not None:
        check_float(budget, "budget", low=0.0, high=1.0, low_inclusive=False)


def _select_targets(model, targets):
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
    named = [(n, m) for n, m in model.named_modules() if n]
    if targets is None:
        chosen = [n for n, m in named if isinstance(m, _SUPPORTED)]
    elif callable(targets) and not isinstance(targets, type):
        chosen = [n for n, m in named if targets(n, m)]
    else:
        if isinstance(targets, (str, type)):
            targets = [targets]
        chosen = []
        for t in targets:
            if isinstance(t, str):
                hits = [n for n, _ in named if fnmatch.fnmatchcase(n, t)]
            elif isinstance(t, type):
                hits = [n for n, m in named if isinstance(m, t)]
            else:
                raise TypeError(f"`targets` entries must be name patterns or module types, got {t!r}")
            if not hits:
                raise ValueError(f"`targets`: {t!r} matches no module of the model")
            supported = [n for n in hits if isinstance(dict(named)[n], _SUPPORTED)]
            # A pattern such as "mlp.*" also matches activations: keep its supported layers; a
            # pattern that names only unsupported modules is an error (reported below).
            hits = supported or hits
            chosen += [h for h in hits if h not in chosen]
    modules = dict(named)
    for n in chosen:
        m = modules[n]
        if not isinstance(m, _SUPPORTED):
            raise TypeError(f"`targets`: layer {n!r} is a {type(m).__name__}; only Linear, Embedding and "
                            "EmbeddingBag layers can be compressed")
        if isinstance(m, nn.EmbeddingBag) and m.mode == "max":
            raise ValueError(f"`targets`: EmbeddingBag {n!r} uses mode='max', which a low-rank table cannot mimic")
    if not chosen:
        raise ValueError("`targets` selects no Linear, Embedding or EmbeddingBag layer")
    return chosen


def _batches(calibration, batch_size):
    if isinstance(calibration, tuple) and calibration and all(torch.is_tensor(t) for t in calibration):
        n = calibration[0].shape[0]
        if any(t.shape[0] != n for t in calibration):
            raise ValueError("`calibration` tensors must share their first dimension")
        for start in range(0, n, batch_size):
            yield tuple(t[start:start + batch_size] for t in calibration)
        return
    yield from calibration


def _call(model, batch):
    if isinstance(batch, dict):
        return model(**batch)
    if isinstance(batch, (tuple, list)):
        return model(*batch)
    return model(batch)


def _collect_statistics(model, targets, calibration, batch_size, max_batches, verbose):
    stats = {name: OutputStatistics(_out_dim(m)) for name, m in targets.items()}
    handles = []
    for name, module in targets.items():
        def hook(mod, inputs, output, _name=name):
            bag_weight = None
            if isinstance(mod, nn.EmbeddingBag) and mod.mode == "sum":
                offsets = inputs[1] if len(inputs) > 1 else None
                psw = inputs[2] if len(inputs) > 2 else None
                bag_weight = float(_bag_weights(inputs[0], offsets, psw, torch.float64).sum())
            stats[_name].update(output, bag_weight)
        handles.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    n_batches = 0
    try:
        with torch.no_grad():
            for batch in progress(_batches(calibration, batch_size), desc="AFM calibration", verbose=verbose,
                                  unit="batch"):
                _call(model, batch)
                n_batches += 1
                if max_batches is not None and n_batches >= max_batches:
                    break
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if n_batches == 0:
        raise ValueError("`calibration` holds no batches")
    for name, st in stats.items():
        if st.count == 0:
            raise ValueError(f"layer {name!r} was never called on the calibration data")
    return stats


# --------------------------------------------------------------------------- rank choice


def _out_dim(m):
    return m.out_features if isinstance(m, nn.Linear) else m.embedding_dim


def _full_rank(m):
    if isinstance(m, nn.Linear):
        return min(m.in_features, m.out_features)
    return min(m.num_embeddings, m.embedding_dim)


def _unit_cost(m, metric):
    """Parameters (or multiply-adds per row) that one unit of rank costs."""
    if isinstance(m, nn.Linear):
        return m.in_features + m.out_features + 1
    if metric == "flops":
        return m.embedding_dim + 1  # read k codes, then k * dim multiply-adds of the up-projection
    return m.num_embeddings + m.embedding_dim


def _full_cost(m, metric):
    """Cost of the layer as it is: its parameters, or its multiply-adds (reads for a lookup) per row."""
    if metric == "params":
        return count_parameters(m)
    if isinstance(m, nn.Linear):
        return m.in_features * m.out_features
    return m.embedding_dim


def _choose_ranks(modules, spectra, rank, energy, budget, metric, explicit=True):
    ranks = {}
    for name, m in modules.items():
        full = _full_rank(m)
        if rank is not None:
            k = rank.get(name, full) if isinstance(rank, dict) else rank
            k = check_int(k, f"rank[{name!r}]" if isinstance(rank, dict) else "rank", low=1)
            if k > _out_dim(m):
                if explicit:
                    raise ValueError(f"`rank`={k} is larger than the output width {_out_dim(m)} of layer {name!r}")
                k = full  # a layer picked by default (e.g. a width-1 output layer) is left as it is
            ranks[name] = min(k, full)
        elif energy is not None:
            w = spectra[name].cpu().numpy()
            frac = np.cumsum(w) / w.sum() if w.sum() > 0 else np.ones_like(w)
            ranks[name] = min(int(np.searchsorted(frac, energy - 1e-12) + 1), full)
    if budget is None:
        return ranks
    # Global budget: every layer starts at rank 1; then rank units go, best first, to the layer
    # whose next eigenvalue keeps the most relative output variance per unit of cost. A layer
    # never grows to its break-even rank (where the factors would cost as much as the original).
    increments = []
    spent = 0.0
    total = 0.0
    for name, m in modules.items():
        w = spectra[name].cpu().numpy()
        unit, fixed, full_cost = _unit_cost(m, metric), _out_dim(m), _full_cost(m, metric)
        total += full_cost
        spent += unit + fixed
        ranks[name] = 1
        share = w / w.sum() if w.sum() > 0 else np.zeros_like(w)
        k_max = min(_full_rank(m), w.size)
        while k_max > 1 and k_max * unit + fixed >= full_cost:
            k_max -= 1
        for i in range(1, k_max):
            increments.append((share[i] / unit, unit, name))
    allowance = budget * total - spent
    for _, cost, name in sorted(increments, key=lambda t: -t[0]):
        if allowance < cost:
            continue
        ranks[name] += 1
        allowance -= cost
    return ranks


# --------------------------------------------------------------------------- building modules


def _afm_module(module, Uk, stats):
    dtype, device = module.weight.dtype, module.weight.device
    U = Uk.to(device=device, dtype=torch.float64)
    mu = stats.mean.to(device=device, dtype=torch.float64)
    k = U.shape[1]
    W = module.weight.detach().to(torch.float64)
    with torch.no_grad():
        if isinstance(module, nn.Linear):
            new = LowRankLinear(module.in_features, module.out_features, k, bias=True, device=device, dtype=dtype)
            b = module.bias.detach().to(torch.float64) if module.bias is not None else torch.zeros_like(mu)
            new.down.weight.copy_(U.T @ W)
            new.down.bias.copy_(U.T @ b)
            new.up.weight.copy_(U)
            new.up.bias.copy_(mu - U @ (U.T @ mu))
            return new
        if isinstance(module, nn.Embedding):
            new = LowRankEmbedding(module.num_embeddings, module.embedding_dim, k, device=device, dtype=dtype)
            new.codes.weight.copy_((W - mu) @ U)
            new.up.weight.copy_(U)
            new.up.bias.copy_(mu)
            return new
        row_mean = mu if module.mode == "mean" else mu * stats.count / max(stats.weight_total, 1e-300)
        new = LowRankEmbeddingBag(module.num_embeddings, module.embedding_dim, k, mode=module.mode,
                                  device=device, dtype=dtype)
        new.codes.weight.copy_((W - row_mean) @ U)
        new.up.weight.copy_(U)
        new.mean.copy_(row_mean)
        return new


def _svd_module(module, Uk, sk, Vhk):
    dtype, device = module.weight.dtype, module.weight.device
    k = sk.numel()
    with torch.no_grad():
        if isinstance(module, nn.Linear):
            new = LowRankLinear(module.in_features, module.out_features, k, bias=module.bias is not None,
                                device=device, dtype=dtype)
            new.down.weight.copy_(Vhk)
            new.down.bias.zero_()
            new.up.weight.copy_(Uk * sk)
            if module.bias is not None:
                new.up.bias.copy_(module.bias)
            return new
        if isinstance(module, nn.Embedding):
            new = LowRankEmbedding(module.num_embeddings, module.embedding_dim, k, device=device, dtype=dtype)
            new.codes.weight.copy_(Uk * sk)
            new.up.weight.copy_(Vhk.T)
            new.up.bias.zero_()
            return new
        new = LowRankEmbeddingBag(module.num_embeddings, module.embedding_dim, k, mode=module.mode,
                                  device=device, dtype=dtype)
        new.codes.weight.copy_(Uk * sk)
        new.up.weight.copy_(Vhk.T)
        return new


def _replace(model, name, new):
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    parent._modules[child] = new
