"""What a compressor is: a registered class that states each layer's spectrum and builds its replacement.

The core (``compress``) does everything else: target selection, the calibration pass, the rank
rules and global budget, the break-even check, layer replacement and the report. A compressor

* lists the layer types it handles (``supported``) and may refuse a configuration (``check``);
* says whether it needs per-layer output statistics from calibration data (``statistics``);
* returns, per layer, a :class:`LayerSpectrum`: the energy each rank unit keeps (descending) and
  the total the relative error is measured against, plus whatever it needs to build from;
* builds the replacement module at a given rank (``build``).

Its options are a frozen dataclass (``Options``) built and checked once per call by ``make_options``.
"""

import dataclasses
from dataclasses import dataclass

from lowrank._utils.optional import import_optional
from lowrank.nn.compression._ranks import choose_ranks, full_rank, rank_cost

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn

CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class NoOptions:
    """Options of a compressor that has none.

    Examples
    --------
    >>> NoOptions()
    NoOptions()
    """


@dataclass
class LayerSpectrum:
    """One layer as a compressor sees it.

    Attributes
    ----------
    energies : torch.Tensor
        ``(n,)`` float64, descending: what each unit of rank keeps (eigenvalues of the output
        covariance for AFM, squared singular values of the weight for SVD).
    total : float
        Denominator of the relative error: ``sqrt(sum(energies[k:]) / total)`` at rank ``k``.
    state : object
        Whatever :meth:`Compressor.build` needs (factors, statistics).

    Examples
    --------
    >>> s = torch.tensor([3.0, 1.0], dtype=torch.float64)
    >>> spectrum = LayerSpectrum(energies=s**2, total=float((s**2).sum()))
    >>> round((float(spectrum.energies[1:].sum()) / spectrum.total) ** 0.5, 4)  # relative error at rank 1
    0.3162
    """

    energies: object
    total: float
    state: object = None


class Compressor:
    """Base class of the registered compressors (see :func:`lowrank.nn.register_compressor`).

    Parameters
    ----------
    options : Options
        The frozen options dataclass built by :meth:`make_options`.

    Examples
    --------
    >>> from lowrank.nn.compression import get_compressor
    >>> svd = get_compressor("svd")
    >>> svd.statistics is None, svd.make_options()
    (True, NoOptions())
    """

    supported = (nn.Linear, nn.Embedding, nn.EmbeddingBag) + CONV
    #: "outputs": the core collects OutputStatistics of every target on the calibration data;
    #: "custom": the core calls :meth:`collect` (the compressor's own calibration pass).
    statistics = None
    #: what LayerReport.output_relative_error is measured on
    error_basis = "calibration outputs"
    Options = NoOptions

    def __init__(self, options):
        self.options = options

    @classmethod
    def make_options(cls, **options):
        """Build and check the options (the ``_iv`` of a compressor); unknown names are a TypeError."""
        known = {f.name for f in dataclasses.fields(cls.Options)}
        unknown = sorted(set(options) - known)
        if unknown:
            allowed = ", ".join(sorted(known)) or "none"
            raise TypeError(f"unknown option(s) {', '.join(map(repr, unknown))} for this compressor; "
                            f"its options are: {allowed}")
        return cls.Options(**options)

    def check(self, name, module):
        """Raise for a supported layer type in a configuration the factorized layers cannot express."""
        if isinstance(module, nn.EmbeddingBag) and module.mode == "max":
            raise ValueError(f"`targets`: EmbeddingBag {name!r} uses mode='max', which a low-rank table cannot mimic")
        if isinstance(module, CONV) and module.groups != 1:
            raise ValueError(f"`targets`: {type(module).__name__} {name!r} has groups={module.groups}; only "
                             "groups=1 convolutions can be factorized")

    def full_rank(self, module):
        """The rank at which the replacement is exact (the weight matrix's smaller side)."""
        return full_rank(module)

    def cost(self, module, metric):
        """``(unit, fixed, dense)`` cost of a rank-k replacement (``k*unit + fixed``) and of the layer."""
        return rank_cost(module, metric)

    def collect(self, model, targets, calibration, options):
        """``{name: statistics}`` of the targets from ``calibration`` (only with ``statistics = "custom"``).

        ``model`` is the working copy, ``targets`` maps names to its modules, ``options`` holds the
        call's ``batch_size``, ``max_batches``, ``verbose`` and ``method``.
        """
        raise NotImplementedError

    def choose_ranks(self, layers, rank, energy, budget, metric, explicit):
        """Every target's rank (``name -> int``) under the call's rule; the core's rules by default."""
        return choose_ranks(layers, rank, energy, budget, metric, explicit)

    def finish(self, model, report):
        """Called once with the compressed model and its report (e.g. to freeze layers); no-op by default."""

    def spectrum(self, name, module, statistics):
        """The :class:`LayerSpectrum` of a target (``statistics`` is None unless requested)."""
        raise NotImplementedError

    def build(self, module, spectrum, rank):
        """The replacement module of ``module`` at ``rank`` (``0 < rank < full_rank``)."""
        raise NotImplementedError
