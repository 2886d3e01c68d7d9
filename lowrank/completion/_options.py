"""The checked options of ``complete_matrix`` (one frozen dataclass) and the observed entries."""

from dataclasses import dataclass
from typing import Any, NamedTuple, Optional, Union

import numpy as np


class Entries(NamedTuple):
    """Observed entries as COO triplets sorted by (row, col), and the matrix shape."""

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    shape: tuple


@dataclass(frozen=True)
class CompletionOptions:
    """Every option of one completion, checked and normalized by ``_complete._iv``.

    ``rank`` and ``alpha`` may still be ``"auto"`` (resolved by held-out validation in
    :mod:`lowrank.completion._auto`); ``bias`` is already a bool (``"auto"`` is decided from the
    values in ``_iv``). ``sketch_size`` and ``incoherence`` of None are derived from the rank
    where it is known (:meth:`sketch_rows`, :meth:`mu`).
    """

    rank: Union[int, str]
    method: str = "robust_altmin"
    max_iter: int = 50
    tol: float = 1e-5
    alpha: Union[float, str] = "auto"
    bias: bool = False
    bias_alpha: Optional[float] = None
    n_inner: int = 2
    preconditioner: str = "gram"
    sketch_size: Optional[int] = None
    incoherence: Optional[float] = None
    svd_n_iter: int = 2
    shrinkage: Union[float, str, None] = None
    validation_fraction: Optional[float] = None
    n_iter_no_change: int = 3
    cold_start: str = "allow"
    verbose: bool = False
    client: Any = None

    def sketch_rows(self):
        return 4 * self.rank if self.sketch_size is None else self.sketch_size

    def mu(self, m):
        if self.incoherence is not None:
            return self.incoherence
        return float(np.sqrt(2.0 * np.log(max(m * self.rank, 2)) / self.rank))

    def bias_penalty(self):
        """The ridge on the bias terms: ``bias_alpha``, else the factors' ``alpha``."""
        return self.alpha if self.bias_alpha is None else self.bias_alpha
