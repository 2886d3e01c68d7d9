"""Matrix completion: robust and exact alternating minimization, SoftImpute.

``complete_matrix(observed, rank, method=...)`` returns a factored :class:`CompletionResult`;
the estimators :class:`RobustAltMin`, :class:`AltMin` and :class:`SoftImpute` wrap it in the
scikit-learn API (``fit`` on a matrix with NaN for missing entries, ``transform`` fills them).
"""

from lowrank._utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "complete_matrix": "_complete",
        "CompletionResult": "_result",
        "RobustAltMin": "_estimators",
        "AltMin": "_estimators",
        "SoftImpute": "_estimators",
    },
)
