"""Vision: HIR-Diff hyperspectral restoration and the Householder projector (torch; CPU and CUDA)."""

from lowrank._utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        # HIR-Diff (issue 5)
        "select_bands": "hirdiff",
        "estimate_coefficients": "hirdiff",
        "exponential_schedule": "hirdiff",
        "Denoise": "hirdiff",
        "SuperResolve": "hirdiff",
        "Inpaint": "hirdiff",
        "weighted_tv_loss": "hirdiff",
        "HIRDiff": "hirdiff",
        # Householder projector (issue 10)
        "HouseholderProjector": "householder",
        "traverse": "householder",
        "closed_form_directions": "householder",
    },
)
