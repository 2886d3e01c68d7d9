"""Tensor decompositions on TensorLy's formats (HOSVD, Tucker/HOOI, CP-ALS, TT-SVD) and
Functional Bayesian Tucker (FunBaT) for continuous-indexed tensor data."""

from lowrank._utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "hosvd": "decomposition",
        "st_hosvd": "decomposition",
        "tucker": "decomposition",
        "partial_tucker": "decomposition",
        "cp_als": "decomposition",
        "non_negative_cp": "decomposition",
        "non_negative_tucker": "decomposition",
        "randomized_cp": "decomposition",
        "tt_svd": "decomposition",
        "mode_dot": "_products",
        "tucker_to_tensor": "_products",
        "Tucker": "decomposition",
        "CP": "decomposition",
        "NonNegativeCP": "decomposition",
        "NonNegativeTucker": "decomposition",
        "FunBaT": "funbat",
    },
)
