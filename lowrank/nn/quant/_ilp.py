"""LQ-LoRA's bit allocation: one quantization config per matrix by an integer linear program (HiGHS)."""

import numpy as np

__all__ = ["allocate_configs"]


def allocate_configs(errors, bits, sizes, budget):
    """Choose one config per matrix minimizing the summed error under an average-bits budget.

    Solves ``min sum_ic E[i, c] x[i, c]`` subject to ``sum_c x[i, c] = 1`` for every matrix ``i`` and
    ``sum_ic bits[c] * sizes[i] * x[i, c] <= budget * sum_i sizes[i]``, ``x`` binary, with
    :func:`scipy.optimize.milp`.

    Parameters
    ----------
    errors : array_like of shape (n_matrices, n_configs)
        Error of matrix ``i`` under config ``c`` (LQ-LoRA: the squared Frobenius or Fisher-weighted error).
    bits : array_like of shape (n_configs,) or (n_matrices, n_configs)
        Stored bits per weight of each config (:func:`lowrank.nn.quant.storage_bits`).
    sizes : array_like of shape (n_matrices,)
        Number of weights of each matrix.
    budget : float
        Largest allowed average bits per weight over all matrices.

    Returns
    -------
    numpy.ndarray of int, shape (n_matrices,)
        The chosen config of each matrix.

    Raises
    ------
    ValueError
        Shapes that do not match, non-finite errors, non-positive sizes or bits, or a budget below
        the cheapest allocation (infeasible).

    References
    ----------
    Guo et al., "LQ-LoRA", ICLR 2024, arXiv:2311.12023 (section 3.2, mixed-configuration ILP).

    Examples
    --------
    >>> errors = [[4.0, 1.0], [9.0, 1.0]]   # config 0: 2 bits, config 1: 4 bits
    >>> allocate_configs(errors, bits=[2, 4], sizes=[100, 100], budget=3.0).tolist()
    [0, 1]
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    E = np.asarray(errors, dtype=np.float64)
    if E.ndim != 2 or E.size == 0:
        raise ValueError(f"`errors` must be a non-empty (n_matrices, n_configs) array, got shape {E.shape}")
    if not np.isfinite(E).all():
        raise ValueError("`errors` must be finite")
    n, k = E.shape
    B = np.asarray(bits, dtype=np.float64)
    if B.shape not in ((k,), (n, k)):
        raise ValueError(f"`bits` must have shape ({k},) or ({n}, {k}), got {B.shape}")
    B = np.broadcast_to(B, (n, k))
    sizes = np.asarray(sizes, dtype=np.float64)
    if sizes.shape != (n,) or not (sizes > 0).all():
        raise ValueError(f"`sizes` must be {n} positive counts")
    if not (np.isfinite(B).all() and (B > 0).all()):
        raise ValueError("`bits` must be positive and finite")
    budget = float(budget)
    cost = B * sizes[:, None]
    capacity = budget * sizes.sum()
    if cost.min(1).sum() > capacity * (1 + 1e-12):
        raise ValueError(f"`budget`={budget} is below the cheapest allocation "
                         f"({cost.min(1).sum() / sizes.sum():.4g} bits per weight)")
    one_each = np.kron(np.eye(n), np.ones(k))
    # the cost row is scaled to O(1) so HiGHS' feasibility tolerance is relative
    scale = capacity
    constraints = [LinearConstraint(one_each, 1, 1), LinearConstraint(cost.reshape(1, -1) / scale, -np.inf, 1.0)]
    result = milp(E.reshape(-1), constraints=constraints, integrality=np.ones(n * k), bounds=Bounds(0, 1))
    if result.x is None:
        raise ValueError(f"`budget`: the bit allocation has no solution ({result.message})")
    x = np.round(result.x).reshape(n, k)
    choice = x.argmax(1)
    if (cost[np.arange(n), choice].sum()) > capacity * (1 + 1e-9):
        # HiGHS' tolerance let a rounding slip over the budget: never return an infeasible allocation
        raise ValueError("`budget`: the solver returned an allocation over the budget")
    return choice
