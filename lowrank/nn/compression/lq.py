"""LQ-LoRA as a compressor: each Linear becomes a frozen quantized ``Q`` plus a trainable rank-r ``L1 L2``.

``compress(model, "lq", rank=r, bits=b)`` quantizes every target at ``b`` bits;
``budget_bits=B`` instead lets LQ-LoRA's integer linear program pick each matrix's (bits, group
size) from ``configs`` so that the average stored bits per weight is at most ``B`` and the summed
squared (Fisher-weighted, with ``fisher``) decomposition error is smallest.
"""

import dataclasses

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_choice, check_float, check_int
from lowrank.nn.compression._base import Compressor, LayerSpectrum
from lowrank.nn.compression._registry import register_compressor

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn

__all__ = ["LQCompressor", "LQOptions"]

#: (bits, group_size) candidates of the ILP: LQ-LoRA's grid of NF bit widths and block sizes
DEFAULT_CONFIGS = tuple((b, g) for b in (2, 3, 4, 8) for g in (32, 64, 128))


@dataclasses.dataclass(frozen=True)
class LQOptions:
    """Options of the ``"lq"`` compressor (checked by ``LQCompressor.make_options``).

    Attributes
    ----------
    bits : int or None
        Uniform bit width (default 4 when ``budget_bits`` is not given).
    budget_bits : float or None
        Average stored bits per weight (codes plus scales) for the ILP allocation.
    group_size : int
        Group size with ``bits``.
    kind : {"nf", "int"}
    configs : tuple of (bits, group_size)
        ILP candidates.
    n_iter : int
        Most alternation rounds per matrix.
    fisher : tuple of (name, tensor) or None
        Per-layer diagonal Fisher estimates (weight-shaped), for the data-aware variant.
    """

    bits: object = None
    budget_bits: object = None
    group_size: int = 64
    kind: str = "nf"
    configs: tuple = DEFAULT_CONFIGS
    n_iter: int = 20
    fisher: object = None


class LQCompressor(Compressor):
    """Low-rank plus quantized decomposition of each Linear (LQ-LoRA), optionally with ILP bit allocation.

    Options (``compress(model, "lq", rank=r, ...)``): ``bits=4`` | ``budget_bits=float``,
    ``group_size=64``, ``kind="nf"``, ``configs`` (ILP candidates, default bits {2, 3, 4, 8} x
    groups {32, 64, 128}), ``n_iter=20``, ``fisher={layer name: weight-shaped tensor}``. With
    ``budget_bits`` every target must get the same rank. The replacement is an
    :class:`lowrank.nn.quant.LQLinear` (``Q`` a buffer, so the report's parameter counts are those
    of the trainable ``L1 L2`` and bias); its ``config`` says which quantization it got, and the
    report's ``output_relative_error`` is the relative Frobenius error ``||W - Q - L1 L2|| / ||W||``.

    References
    ----------
    Guo et al., "LQ-LoRA", ICLR 2024, arXiv:2311.12023.

    Examples
    --------
    >>> from lowrank.nn import compress
    >>> model = torch.nn.Sequential(torch.nn.Linear(64, 48))
    >>> small, report = compress(model, "lq", rank=4, bits=3)
    >>> type(small[0]).__name__, small[0].config.bits
    ('LQLinear', 3)
    """

    supported = (nn.Linear,)
    error_basis = "weights"
    Options = LQOptions

    @classmethod
    def make_options(cls, **options):
        from lowrank.nn.quant import QuantConfig

        opts = super().make_options(**options)
        if opts.bits is not None and opts.budget_bits is not None:
            raise ValueError("give at most one of `bits` and `budget_bits`")
        bits = 4 if opts.bits is None and opts.budget_bits is None else opts.bits
        if bits is not None:
            bits = QuantConfig.make(bits, opts.group_size, opts.kind).bits
        budget = None if opts.budget_bits is None else check_float(opts.budget_bits, "budget_bits", low=0.0,
                                                                   low_inclusive=False)
        configs = tuple((QuantConfig.make(b, g, opts.kind).bits, int(g)) for b, g in opts.configs)
        if not configs:
            raise ValueError("`configs` must hold at least one (bits, group_size) pair")
        fisher = opts.fisher
        if fisher is not None:
            if not isinstance(fisher, dict) and not isinstance(fisher, tuple):
                raise TypeError("`fisher` must be a dict {layer name: tensor}")
            fisher = tuple(sorted(dict(fisher).items()))
        return LQOptions(bits=bits, budget_bits=budget, group_size=check_int(opts.group_size, "group_size", low=1),
                         kind=check_choice(opts.kind, "kind", ("nf", "int")), configs=configs,
                         n_iter=check_int(opts.n_iter, "n_iter", low=0), fisher=fisher)

    def __init__(self, options):
        super().__init__(options)
        self._pending = {}  # module id -> (name, module), filled by spectrum, read by the ILP
        self._choice = None
        self._results = {}

    def spectrum(self, name, module, statistics):
        W = module.weight.detach().to(torch.float64)
        fisher = dict(self.options.fisher or ())
        if name in fisher and tuple(fisher[name].shape) != tuple(W.shape):
            raise ValueError(f"`fisher[{name!r}]` must have the weight's shape {tuple(W.shape)}")
        self._pending[id(module)] = (name, module)
        s = torch.linalg.svdvals(W)
        # the core's rank rules read these energies; the report's error is replaced after build
        return LayerSpectrum(energies=s**2, total=float((s**2).sum()), state=name)

    def _decompose(self, name, module, rank, config):
        from lowrank.nn.quant._lq import _lq_body

        key = (name, rank, config)
        if key not in self._results:
            W = module.weight.detach().to(device="cpu", dtype=torch.float64)
            fisher = dict(self.options.fisher or ()).get(name)
            if fisher is not None:
                fisher = fisher.detach().to(device="cpu", dtype=torch.float64)
            self._results[key] = _lq_body(W, rank, config, self.options.n_iter, fisher, "auto", 0)
        return self._results[key]

    def _allocate(self, rank):
        import numpy as np

        from lowrank.nn.quant import QuantConfig, allocate_configs, storage_bits

        opts = self.options
        candidates = [QuantConfig(bits=b, group_size=g, kind=opts.kind) for b, g in opts.configs]
        layers = list(self._pending.values())
        errors = np.array([[self._decompose(n, m, rank, c).errors[-1] ** 2 for c in candidates] for n, m in layers])
        sizes = [m.weight.numel() for _, m in layers]
        choice = allocate_configs(errors, [storage_bits(c) for c in candidates], sizes, opts.budget_bits)
        self._choice = (rank, {n: candidates[i] for (n, _), i in zip(layers, choice)})

    def build(self, module, spectrum, rank):
        from lowrank.nn.quant import LQLinear, QuantConfig

        name = spectrum.state
        if self.options.budget_bits is None:
            config = QuantConfig(bits=self.options.bits, group_size=self.options.group_size, kind=self.options.kind)
        else:
            if self._choice is None:
                self._allocate(rank)
            if self._choice[0] != rank:
                raise ValueError("`budget_bits`: the bit allocation needs the same `rank` for every target")
            config = self._choice[1][name]
        Q, L1, L2, errors = self._decompose(name, module, rank, config)
        like = dict(device=module.weight.device, dtype=module.weight.dtype)
        # report the decomposition's own error (the core reads sqrt(sum(energies[rank:]) / total))
        W2 = float((module.weight.detach().double() ** 2).sum())
        err2 = float(((module.weight.detach().double().cpu() - Q - L1 @ L2) ** 2).sum())
        n = spectrum.energies.numel()
        kept = torch.full((rank,), max(W2 - err2, 0.0) / rank, dtype=torch.float64)
        dropped = torch.full((n - rank,), err2 / max(n - rank, 1), dtype=torch.float64)
        spectrum.energies, spectrum.total = torch.cat([kept, dropped]), W2
        return LQLinear(Q.to(**like), L1.to(**like), L2.to(**like), module.bias, config)


register_compressor("lq", LQCompressor)
