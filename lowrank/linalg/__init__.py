"""The shared decomposition core: scipy-like functions (numpy in -> numpy out, torch in -> torch out).

Every domain method in lowrank is built on these routines.
"""

from lowrank.linalg._bases import dct_basis
from lowrank.linalg._cur import cur, interpolative, select_columns
from lowrank.linalg._estimator import LowRankApproximation
from lowrank.linalg._householder import householder_product
from lowrank.linalg._norms import nuclear_norm_estimate
from lowrank.linalg._nystrom import nystrom
from lowrank.linalg._randomized_svd import randomized_svd, svd_flip
from lowrank.linalg._rank_selection import rank_by_energy, rank_by_knee
from lowrank.linalg._rrqr import rrqr, strong_rrqr_bounds
from lowrank.linalg._sparse_projection import sparse_random_projection
from lowrank.linalg._truncated_svd import ConvergenceWarning, TruncatedSVDResult, truncated_svd
from lowrank.linalg._weighted_svd import weighted_svd

__all__ = [
    "ConvergenceWarning",
    "LowRankApproximation",
    "TruncatedSVDResult",
    "cur",
    "dct_basis",
    "householder_product",
    "interpolative",
    "nuclear_norm_estimate",
    "nystrom",
    "randomized_svd",
    "rank_by_energy",
    "rank_by_knee",
    "rrqr",
    "select_columns",
    "sparse_random_projection",
    "strong_rrqr_bounds",
    "svd_flip",
    "truncated_svd",
    "weighted_svd",
]
