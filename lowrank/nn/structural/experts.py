"""Sub-MoE: merge the experts of a mixture-of-experts layer by clustering and a joint SVD per cluster.

The MoE interface
-----------------
Any module ``moe`` with

* ``moe.experts``: an ``nn.ModuleList`` of experts of one architecture (the same ``nn.Linear``
  names and shapes inside each; everything else in an expert is copied from the cluster's first expert),
* ``moe.router``: an ``nn.Linear(d_model, len(moe.experts))`` whose row ``e`` scores expert ``e``,
* optionally ``moe.top_k`` (int, experts mixed per input; 1 if absent),

and whose forward routes with those attributes (the zoo's :class:`~lowrank.nn.zoo.MoEMLP` does).
"""

import copy
import dataclasses

import numpy as np

from lowrank._utils.optional import import_optional
from lowrank._utils.rng import as_seed
from lowrank._utils.validation import check_int

torch = import_optional("torch", purpose="lowrank.nn.merge_experts")
nn = torch.nn

__all__ = ["merge_experts", "ExpertMerge"]


@dataclasses.dataclass(frozen=True)
class _MergeOptions:
    n_groups: int
    groups: tuple  # tuple of tuples of expert ids, or None for k-means
    rank: int  # None keeps the full joint SVD
    weighting: str
    seed: int


@dataclasses.dataclass(frozen=True, eq=False)
class ExpertMerge:
    """Result of :func:`merge_experts`; unpacks like ``(moe, groups)``.

    Attributes
    ----------
    moe : torch.nn.Module
        The merged MoE layer (a modified deep copy; the input is left unchanged), ``n_groups`` experts.
    groups : tuple of tuple of int
        Original expert ids merged into each new expert, ordered by their smallest id.
    frequency : numpy.ndarray of shape (n_experts,)
        Fraction of the top-k routing slots each original expert received on the calibration data.
    similarity : numpy.ndarray of shape (n_experts, n_experts)
        Cosine similarity of the experts' outputs on the calibration data (what k-means clustered).
    """

    moe: object
    groups: tuple
    frequency: np.ndarray
    similarity: np.ndarray

    def __iter__(self):
        return iter((self.moe, self.groups))

    def __len__(self):
        return 2


def _iv(moe, n_groups, calibration, groups, rank, weighting, seed):
    if not isinstance(moe, nn.Module):
        raise TypeError(f"`moe` must be a torch.nn.Module, got {type(moe).__name__}")
    experts, router = getattr(moe, "experts", None), getattr(moe, "router", None)
    if not isinstance(experts, nn.ModuleList) or len(experts) == 0:
        raise TypeError("`moe` must have an `experts` attribute that is a non-empty nn.ModuleList")
    if not isinstance(router, nn.Linear) or router.out_features != len(experts):
        raise TypeError(f"`moe.router` must be an nn.Linear with out_features == len(moe.experts) = {len(experts)}")
    shapes = [[(n, tuple(m.weight.shape), m.bias is not None) for n, m in e.named_modules() if isinstance(m, nn.Linear)]
              for e in experts]
    if not shapes[0] or any(s != shapes[0] for s in shapes):
        raise TypeError("every expert in `moe.experts` must hold nn.Linear layers of the same names and shapes")
    n_experts = len(experts)
    n_groups = check_int(n_groups, "n_groups", low=1, high=n_experts)
    if not isinstance(calibration, torch.Tensor) or calibration.ndim < 2 or calibration.shape[-1] != router.in_features:
        raise ValueError(f"`calibration` must be a tensor of MoE inputs with last dimension {router.in_features}")
    if not torch.isfinite(calibration).all():
        raise ValueError("`calibration` must be finite")
    if groups is not None:
        groups = tuple(tuple(int(e) for e in g) for g in groups)
        flat = sorted(e for g in groups for e in g)
        if len(groups) != n_groups or flat != list(range(n_experts)) or any(len(g) == 0 for g in groups):
            raise ValueError(f"`groups` must split the expert ids 0..{n_experts - 1} into `n_groups` = {n_groups} "
                             "non-empty groups")
        groups = tuple(sorted(groups, key=min))
    if rank is not None:
        rank = check_int(rank, "rank", low=1)
    if weighting not in ("frequency", "uniform"):
        raise ValueError(f"`weighting` must be 'frequency' or 'uniform', got {weighting!r}")
    return _MergeOptions(n_groups, groups, rank, weighting, as_seed(seed, name="seed"))


def merge_experts(moe, n_groups, calibration, *, groups=None, rank=None, weighting="frequency", seed=0):
    """Merge the experts of an MoE layer into ``n_groups`` experts (Sub-MoE).

    1. Routing frequency ``f_e`` (share of the top-k slots) and expert outputs ``O_e = expert_e(X)``
       on the calibration inputs ``X``; experts are clustered by k-means (scikit-learn) on the rows
       of the cosine-similarity matrix of their flattened outputs.
    2. For every Linear of a cluster ``G``: joint SVD of the side-by-side weights
       ``[W_1, ..., W_k] = U S [V_1^T, ..., V_k^T]`` (shared ``U S``, one ``V_e`` block per expert),
       merged ``W = U_r S_r (sum_e w_e V_{e,r})^T`` with ``w_e = f_e / sum_G f`` (``rank`` keeps
       the top ``r`` shared directions; the intra-expert step). Biases and router rows
       are merged with the same weights ``w_e``.

    At full rank ``U S V_e^T = W_e``, so the merged weight equals the frequency-weighted average of the
    cluster's weights exactly; the joint SVD changes the result only when ``rank`` truncates the
    shared subspace (docs/nn.md reports both).

    Parameters
    ----------
    moe : torch.nn.Module
        An MoE layer with the interface of this module's docstring (``experts``, ``router``, ``top_k``).
    n_groups : int
        Number of experts after merging (``1 <= n_groups <= len(moe.experts)``).
    calibration : torch.Tensor of shape (..., d_model)
        Inputs of the MoE layer (not of the whole model).
    groups : sequence of sequences of int, optional
        Fixed clusters (a partition of the expert ids) instead of k-means.
    rank : int, optional
        Rank of the shared subspace kept per Linear (default: full, ``min`` of the joint matrix's sides).
    weighting : {"frequency", "uniform"}, default="frequency"
        Merge weights ``w_e``: routing frequency (Sub-MoE) or equal.
    seed : int, default=0
        Seed of k-means.

    Returns
    -------
    ExpertMerge
        ``(moe, groups)`` plus ``frequency`` and ``similarity``.

    Raises
    ------
    TypeError
        If ``moe`` does not follow the MoE interface.
    ValueError
        If ``n_groups``, ``calibration``, ``groups``, ``rank`` or ``weighting`` is invalid.

    References
    ----------
    .. [1] Li et al., "Sub-MoE: Efficient Mixture-of-Expert LLMs Compression via Subspace Expert
       Merging", 2025, arXiv:2506.23266.

    Examples
    --------
    >>> import torch
    >>> from lowrank.nn import merge_experts
    >>> from lowrank.nn.zoo import MoEMLP
    >>> _ = torch.manual_seed(0)
    >>> moe = MoEMLP(8, 16, n_experts=4, top_k=1)
    >>> merged, groups = merge_experts(moe, 2, torch.randn(64, 8))
    >>> len(merged.experts), merged.router.out_features, sorted(e for g in groups for e in g)
    (2, 2, [0, 1, 2, 3])
    """
    options = _iv(moe, n_groups, calibration, groups, rank, weighting, seed)
    return _merge_experts(moe, calibration, options)


@torch.no_grad()
def _statistics(moe, X):
    X = X.reshape(-1, X.shape[-1])
    n_experts = len(moe.experts)
    top_k = min(int(getattr(moe, "top_k", 1)), n_experts)
    indices = moe.router(X).topk(top_k, dim=-1).indices
    frequency = torch.bincount(indices.reshape(-1), minlength=n_experts).double() / indices.numel()
    outputs = torch.stack([expert(X).reshape(-1) for expert in moe.experts]).double()
    unit = outputs / outputs.norm(dim=1, keepdim=True).clamp_min(1e-30)
    return frequency.numpy(), (unit @ unit.T).numpy()


def _cluster(similarity, n_groups, seed):
    n_experts = similarity.shape[0]
    if n_groups == n_experts:
        return tuple((e,) for e in range(n_experts))
    if n_groups == 1:
        return (tuple(range(n_experts)),)
    from sklearn.cluster import KMeans

    labels = KMeans(n_groups, n_init=10, random_state=seed).fit_predict(similarity)
    groups = [tuple(int(e) for e in np.flatnonzero(labels == g)) for g in range(n_groups)]
    # identical experts can make k-means return fewer clusters: split the largest until n_groups
    groups = [g for g in groups if g]
    while len(groups) < n_groups:
        groups.sort(key=len)
        big = groups.pop()
        groups += [big[:1], big[1:]]
    return tuple(sorted(groups, key=min))


def _merge_weight(weights, w, rank):
    """``U_r S_r (sum_e w_e V_{e,r})^T`` for the side-by-side ``[W_1 ... W_k]`` (float64)."""
    joint = torch.cat(weights, dim=1)
    U, S, Vh = torch.linalg.svd(joint, full_matrices=False)
    r = S.shape[0] if rank is None else min(rank, S.shape[0])
    d_in = weights[0].shape[1]
    blocks = Vh[:r].reshape(r, len(weights), d_in)  # V_e^T blocks side by side
    merged_v = torch.einsum("e,red->rd", w, blocks)
    return (U[:, :r] * S[:r]) @ merged_v


@torch.no_grad()
def _merge_experts(moe, X, o):
    frequency, similarity = _statistics(moe, X)
    groups = o.groups if o.groups is not None else _cluster(similarity, o.n_groups, o.seed)
    merged = copy.deepcopy(moe)
    router = moe.router
    new_router = nn.Linear(router.in_features, o.n_groups, bias=router.bias is not None,
                           device=router.weight.device, dtype=router.weight.dtype)
    experts = []
    for g, members in enumerate(groups):
        f = torch.tensor([frequency[e] for e in members], dtype=torch.float64)
        if o.weighting == "uniform" or float(f.sum()) == 0.0:
            f = torch.ones(len(members), dtype=torch.float64)
        w = f / f.sum()
        expert = copy.deepcopy(moe.experts[members[0]])
        sources = [dict(moe.experts[e].named_modules()) for e in members]
        for name, layer in expert.named_modules():
            if not isinstance(layer, nn.Linear):
                continue
            dtype = layer.weight.dtype
            weights = [s[name].weight.double() for s in sources]
            layer.weight.copy_(weights[0] if len(members) == 1 and o.rank is None
                               else _merge_weight(weights, w, o.rank).to(dtype))
            if layer.bias is not None:
                layer.bias.copy_(sum(wi * s[name].bias.double() for wi, s in zip(w, sources)).to(dtype))
        experts.append(expert)
        idx = list(members)
        rows = router.weight[idx].double()
        new_router.weight[g] = (w @ rows).to(router.weight.dtype)
        if router.bias is not None:
            new_router.bias[g] = (w @ router.bias[idx].double()).to(router.bias.dtype)
    merged.experts = nn.ModuleList(experts)
    merged.router = new_router
    if hasattr(merged, "top_k"):
        merged.top_k = min(int(merged.top_k), o.n_groups)
    return ExpertMerge(merged, groups, frequency, similarity)
