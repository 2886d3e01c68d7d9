"""What a compression did: one row per target layer, totals for the model."""

from dataclasses import dataclass, field


@dataclass
class LayerReport:
    """What happened to one target layer.

    Attributes
    ----------
    name : str
        Qualified module name.
    kind : str
        Class name of the original layer (``"Linear"``, ``"Conv2d"``, ...).
    rank, full_rank : int
        Rank kept and the layer's full rank (``rank == full_rank`` when left dense).
    params_before, params_after : int
        Parameters of the layer and of its replacement.
    energy_kept : float
        Fraction of the spectrum (output variance for AFM, squared singular values for SVD) kept.
    output_relative_error : float
        ``sqrt(dropped energy / total)``: on calibration outputs for AFM (``E||y - y_hat||^2 /
        E||y||^2``), the relative Frobenius error of the weight for SVD (see
        ``CompressionReport.error_basis``).
    compressed : bool
        False when the layer was left as it is (no saving at the chosen rank).

    Examples
    --------
    >>> row = LayerReport("fc", "Linear", 4, 16, 272, 148, 0.9, 0.3, True)
    >>> row.params_before - row.params_after
    124
    """

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
    """Per-layer ranks, parameter counts and reconstruction errors of a compression.

    Attributes
    ----------
    method : str
        The compressor's registered name.
    layers : list of LayerReport
        One row per target layer, in model order.
    model_params_before, model_params_after : int
        Parameters of the whole model.
    error_basis : str
        What ``output_relative_error`` is measured on: ``"calibration outputs"`` or ``"weights"``.

    Examples
    --------
    >>> report = CompressionReport("svd", model_params_before=100, model_params_after=40)
    >>> report.compression_ratio
    2.5
    """

    method: str
    layers: list = field(default_factory=list)
    model_params_before: int = 0
    model_params_after: int = 0
    error_basis: str = "calibration outputs"

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
