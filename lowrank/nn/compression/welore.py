"""WeLore: one global threshold on normalized singular values decides every layer's rank.

Each target's singular values are divided by its largest, so every spectrum lies in ``[0, 1]``;
a layer keeps the ``k(tau)`` normalized singular values at or above one threshold ``tau`` shared
by the whole model. Layers whose spectrum decays fast keep few ranks, flat ones keep many, so the
ranks are non-uniform. With ``compress(..., budget=b)`` the threshold is found by bisection over
the sorted normalized singular values: the smallest ``tau`` whose layers keep at most ``b`` of the
targets' parameters (``budget_metric="flops"``: multiply-adds). A layer whose ``k(tau)`` would not
save anything (break-even) stays dense and is counted at its dense cost; biases are kept.

The layers that stay low-rank are the Low-Rank Components (LRCs): with ``trainable="lrc"`` only
their factors are left trainable and every other parameter of the model (dense layers, norms,
heads) is frozen, which is WeLore's memory-light fine-tuning path. With ``rank=`` or ``energy=``
the core's usual rules apply.
"""

import dataclasses

import numpy as np

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_choice
from lowrank.nn.compression._base import Compressor, LayerSpectrum
from lowrank.nn.compression._ranks import full_rank, rank_cost
from lowrank.nn.compression._registry import register_compressor
from lowrank.nn.compression.svd import svd_replacement, weight_matrix

torch = import_optional("torch", purpose="lowrank.nn")

__all__ = ["WeLoreCompressor", "WeLoreOptions", "welore_ranks"]


@dataclasses.dataclass(frozen=True)
class WeLoreOptions:
    """Options of the ``"welore"`` compressor.

    Attributes
    ----------
    trainable : {"all", "lrc"}
        ``"lrc"``: after compression only the low-rank components' parameters require gradients.
    """

    trainable: str = "all"


def _layer_cost(k, unit, fixed, dense):
    cost = k * unit + fixed
    return cost if cost < dense else dense


def welore_ranks(layers, budget, metric):
    """Ranks and threshold of WeLore's global rule.

    Parameters
    ----------
    layers : dict
        ``name -> (module, energies)`` (squared singular values, descending).
    budget : float in (0, 1]
        Fraction of the targets' cost (parameters or multiply-adds) to keep at most.
    metric : {"params", "flops"}

    Returns
    -------
    ranks : dict name -> int
        ``full_rank`` for a layer that stays dense.
    tau : float
        The threshold on normalized singular values.

    Examples
    --------
    >>> lin = torch.nn.Linear(30, 20, bias=False)
    >>> e = torch.tensor([1.0, 1.0, 0.5] + [1e-6] * 17, dtype=torch.float64)
    >>> ranks, tau = welore_ranks({"a": (lin, e)}, 0.3, "params")
    >>> ranks["a"]
    3
    """
    costs, norm = {}, {}
    for name, (m, energies) in layers.items():
        s = np.sqrt(np.clip(energies.cpu().numpy(), 0, None))
        norm[name] = s / s[0] if s.size and s[0] > 0 else np.zeros_like(s)
        costs[name] = rank_cost(m, metric)
    total = sum(c[2] for c in costs.values())

    def ranks_at(tau):
        return {name: max(1, min(int((norm[name] >= tau).sum()), full_rank(layers[name][0]))) for name in layers}

    def kept(ranks):
        return sum(_layer_cost(ranks[name], *costs[name]) for name in layers)

    # kept(tau) only changes at the normalized singular values: bisect over them (sorted, unique)
    candidates = np.unique(np.concatenate([v for v in norm.values()] + [np.array([np.inf])]))
    lo, hi = 0, candidates.size - 1   # candidates[hi] = inf keeps rank 1 everywhere
    while lo < hi:
        mid = (lo + hi) // 2
        if kept(ranks_at(candidates[mid])) <= budget * total:
            hi = mid
        else:
            lo = mid + 1
    tau = float(candidates[lo])
    ranks = ranks_at(tau)
    for name, (m, _) in layers.items():
        unit, fixed, dense = costs[name]
        if ranks[name] * unit + fixed >= dense:   # never past break-even: the layer stays dense
            ranks[name] = full_rank(m)
    return ranks, tau


class WeLoreCompressor(Compressor):
    """Non-uniform ranks from one global threshold on normalized singular values (no calibration).

    Options: ``trainable="all"`` | ``"lrc"`` (only the low-rank components stay trainable). Use
    ``budget=`` for WeLore's global rule; the threshold found is stored as ``threshold_``.

    References
    ----------
    A. Jaiswal et al., "From GaLore to WeLore: How Low-Rank Weights Non-uniformly Emerge from
    Low-Rank Gradients", 2024, arXiv:2407.11239.

    Examples
    --------
    >>> from lowrank.nn import compress
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Sequential(torch.nn.Linear(32, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32))
    >>> with torch.no_grad():
    ...     _ = model[0].weight.copy_(torch.randn(32, 2) @ torch.randn(2, 32))   # rank 2
    >>> small, report = compress(model, "welore", budget=0.6, trainable="lrc")
    >>> [(r.rank, r.compressed) for r in report.layers]
    [(2, True), (32, False)]
    >>> [p.requires_grad for p in small[2].parameters()]
    [False, False]
    """

    error_basis = "weights"
    Options = WeLoreOptions

    @classmethod
    def make_options(cls, **options):
        opts = super().make_options(**options)
        return WeLoreOptions(trainable=check_choice(opts.trainable, "trainable", ("all", "lrc")))

    def __init__(self, options):
        super().__init__(options)
        self.threshold_ = None

    def spectrum(self, name, module, statistics):
        U, s, Vh = torch.linalg.svd(weight_matrix(module), full_matrices=False)
        e = s**2
        return LayerSpectrum(energies=e, total=float(e.sum()), state=(U, s, Vh))

    def choose_ranks(self, layers, rank, energy, budget, metric, explicit):
        if budget is None:
            return super().choose_ranks(layers, rank, energy, budget, metric, explicit)
        ranks, self.threshold_ = welore_ranks(layers, budget, metric)
        return ranks

    def build(self, module, spectrum, rank):
        U, s, Vh = spectrum.state
        return svd_replacement(module, U[:, :rank], s[:rank], Vh[:rank])

    def finish(self, model, report):
        if self.options.trainable != "lrc":
            return
        lrc = {id(p) for r in report.layers if r.compressed for p in model.get_submodule(r.name).parameters()}
        for p in model.parameters():
            p.requires_grad_(id(p) in lrc)


register_compressor("welore", WeLoreCompressor)
