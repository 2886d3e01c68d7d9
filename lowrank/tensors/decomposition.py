"""Tensor decompositions returning TensorLy's formats: HOSVD, ST-HOSVD, Tucker (HOOI), partial Tucker,
CP-ALS and TT-SVD, all with ``mask=`` for missing entries and numpy or torch (CPU/CUDA) input.

Results are :class:`tensorly.tucker_tensor.TuckerTensor`, :class:`tensorly.cp_tensor.CPTensor` and
:class:`tensorly.tt_tensor.TTTensor`, so they mix freely with TensorLy code (unpack like tuples,
``.to_tensor()``). numpy in gives numpy out; a torch tensor in gives torch tensors out on the same device.
"""

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from lowrank._utils.backend import is_torch
from lowrank._utils.rng import as_generator
from lowrank._utils.validation import check_choice, check_float, check_int, validate_data
from lowrank.tensors._cp import cp_body
from lowrank.tensors._tensor_ops import as_mask, as_modes, as_ranks, as_tensor
from lowrank.tensors._tt import tt_body, tt_em_body
from lowrank.tensors._tucker import hooi_body, hosvd_body, st_hosvd_body

__all__ = [
    "hosvd",
    "st_hosvd",
    "tucker",
    "partial_tucker",
    "cp_als",
    "non_negative_cp",
    "non_negative_tucker",
    "randomized_cp",
    "tt_svd",
    "Tucker",
    "CP",
    "NonNegativeCP",
    "NonNegativeTucker",
]

_SVD_METHODS = ("gram", "randomized")


def _tl():
    import tensorly  # a core dependency; imported here so `import lowrank` stays light

    return tensorly


def _iv_common(tensor, mask, rng, svd):
    X, xp = as_tensor(tensor, "tensor", allow_nan=mask is not None)
    X, M = as_mask(mask, X, xp)
    check_choice(svd, "svd", _SVD_METHODS)
    return X, M, xp, as_generator(rng)


def _iv_rank_or_tol(rank, tol, shape, modes=None):
    if rank is None and tol is None:
        raise ValueError("give `rank`, `tol` or both")
    ranks = [None] * (len(shape) if modes is None else len(modes)) if rank is None else as_ranks(rank, shape, modes=modes)
    if tol is not None:
        tol = check_float(tol, "tol", low=0, high=1, low_inclusive=False, high_inclusive=False)
    return ranks, tol


# ----------------------------------------------------------------------------- HOSVD family


def hosvd(tensor, rank=None, *, tol=None, svd="gram", mask=None, rng=None):
    """Truncated higher-order SVD (HOSVD): one orthonormal factor per mode from that mode's unfolding.

    Parameters
    ----------
    tensor : ndarray or torch.Tensor, shape (I_1, ..., I_K)
        Real tensor with ``K >= 2`` modes. Entries outside ``mask`` may be NaN.
    rank : int or sequence of int, default=None
        Multilinear rank (one per mode, or one for all). With ``tol`` it caps the chosen ranks.
    tol : float, default=None
        Target relative error in (0, 1): each mode keeps the fewest singular vectors whose discarded
        energy is at most ``tol**2 * ||X||**2 / K`` (so the HOSVD error is at most ``tol * ||X||``).
    svd : {"gram", "randomized"}, default="gram"
        ``"gram"``: eigendecomposition of the mode-n Gram matrix on the *smaller* side of the unfolding
        (never the ``prod(others)``-sized one). ``"randomized"``: :func:`lowrank.linalg.randomized_svd`
        of the unfolding (needs ``rank``; ignored with a mask).
    mask : array of bool, default=None
        True where an entry is observed. Factors then come from the pairwise-available Gram estimate
        (each entry rescaled by how many fibres were observed in both rows), and the core from
        ``X_observed / p`` (p = observed fraction): the unbiased spectral estimate, unlike zero filling.
    rng : None, int or numpy.random.Generator, default=None
        Randomness for ``svd="randomized"``.

    Returns
    -------
    tensorly.tucker_tensor.TuckerTensor
        ``(core, factors)``; factors have orthonormal columns with deterministic signs.

    Raises
    ------
    ValueError
        Bad shapes, ranks, ``tol``, mask, or NaN/inf in observed entries.

    References
    ----------
    De Lathauwer, De Moor, Vandewalle, "A multilinear singular value decomposition",
    SIAM J. Matrix Anal. Appl. 21(4), 2000.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.tensors import hosvd
    >>> rng = np.random.default_rng(0)
    >>> core, U = rng.standard_normal((2, 3, 2)), [np.linalg.qr(rng.standard_normal((n, r)))[0] for n, r in [(6, 2), (7, 3), (8, 2)]]
    >>> X = np.einsum("abc,ia,jb,kc->ijk", core, *U)
    >>> T = hosvd(X, rank=(2, 3, 2))
    >>> bool(np.allclose(T.to_tensor(), X))
    True
    """
    X, M, xp, gen = _iv_common(tensor, mask, rng, svd)
    ranks, tol = _iv_rank_or_tol(rank, tol, X.shape)
    core, factors = hosvd_body(X, ranks, tol, svd, M, gen, xp)
    return _tl().tucker_tensor.TuckerTensor((core, factors))


def st_hosvd(tensor, rank=None, *, tol=None, svd="gram", mask=None, rng=None):
    """Sequentially truncated HOSVD: each mode is projected as soon as its factor is known.

    Cheaper than :func:`hosvd` (later modes see an already-shrunk tensor) and usually more accurate.

    Parameters
    ----------
    tensor : ndarray or torch.Tensor, shape (I_1, ..., I_K)
        Real tensor, ``K >= 2``.
    rank : int or sequence of int, default=None
        Multilinear rank; caps the ranks chosen by ``tol`` when both are given.
    tol : float, default=None
        Target relative error in (0, 1), split evenly over the modes.
    svd : {"gram", "randomized"}, default="gram"
        As in :func:`hosvd`.
    mask : array of bool, default=None
        True where observed. The missing entries are first imputed from the masked :func:`hosvd`
        at the same ranks, then the sequential truncation runs on the completed tensor.
    rng : None, int or numpy.random.Generator, default=None
        Randomness for ``svd="randomized"``.

    Returns
    -------
    tensorly.tucker_tensor.TuckerTensor

    Raises
    ------
    ValueError
        Bad shapes, ranks, ``tol``, mask, or NaN/inf in observed entries.

    References
    ----------
    Vannieuwenhoven, Vandebril, Meerbergen, "A new truncation strategy for the higher-order singular
    value decomposition", SIAM J. Sci. Comput. 34(2), 2012.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.tensors import st_hosvd
    >>> X = np.einsum("i,j,k->ijk", np.arange(1.0, 5), np.ones(3), np.arange(1.0, 3))
    >>> T = st_hosvd(X, rank=1)
    >>> [f.shape for f in T.factors], bool(np.allclose(T.to_tensor(), X))
    ([(4, 1), (3, 1), (2, 1)], True)
    """
    X, M, xp, gen = _iv_common(tensor, mask, rng, svd)
    ranks, tol = _iv_rank_or_tol(rank, tol, X.shape)
    if M is not None:
        core, factors = hosvd_body(X, ranks, tol, "gram", M, gen, xp)
        from lowrank.tensors._tensor_ops import multi_mode_dot

        X = X + (1 - M) * multi_mode_dot(core, factors, list(range(X.ndim)), xp)
    core, factors = st_hosvd_body(X, ranks, tol, svd, gen, xp)
    return _tl().tucker_tensor.TuckerTensor((core, factors))


def _iv_tucker(tensor, rank, modes, init, n_iter_max, tol, svd, mask, rng, fixed_factors=None):
    X, M, xp, gen = _iv_common(tensor, mask, rng, svd)
    modes = as_modes(modes, X.ndim)
    ranks = [int(X.shape[m]) for m in modes] if rank is None else as_ranks(rank, X.shape, modes=modes)
    fixed = sorted(_iv_modes_set(fixed_factors, X.ndim, "fixed_factors", default=()))
    if any(m not in modes for m in fixed):
        raise ValueError(f"`fixed_factors` must name decomposed modes {modes}, got {fixed}")
    fixed = [modes.index(m) for m in fixed]  # positions in `modes`
    if isinstance(init, str):
        check_choice(init, "init", ("svd", "random"))
        if fixed:
            raise ValueError("`fixed_factors` needs `init` given as factors (the fixed ones are kept as given)")
    else:
        if hasattr(init, "factors"):
            factors = init.factors
        elif isinstance(init, (list, tuple)) and len(init) == 2 and isinstance(init[1], (list, tuple)):
            factors = init[1]  # a plain (core, factors) pair
        elif isinstance(init, (list, tuple)):
            factors = init
        else:
            factors = None
        if factors is None or len(factors) != len(modes):
            raise ValueError(
                "`init` must be 'svd', 'random', a TuckerTensor or a list with one factor per decomposed mode"
            )
        factors = [_like(as_tensor(F, "init factor")[0], X) for F in factors]
        for F, m, r in zip(factors, modes, ranks):
            if tuple(F.shape) != (X.shape[m], r):
                raise ValueError(f"`init` factor for mode {m} must have shape {(X.shape[m], r)}, got {tuple(F.shape)}")
        init = factors
    n_iter_max = check_int(n_iter_max, "n_iter_max", low=0)
    tol = check_float(tol, "tol", low=0)
    return X, M, xp, gen, modes, ranks, init, n_iter_max, tol, fixed


def _hooi_with_fixed(X, ranks, modes, init, n_iter_max, tol, svd, M, gen, xp, fixed):
    """HOOI where the factors at positions ``fixed`` stay as given: they are run as their orthonormal
    bases ``Q`` (same column space) and the core is mapped back through ``R^-1`` (``F = Q R``)."""
    if not fixed:
        return hooi_body(X, ranks, modes, init, n_iter_max, tol, svd, M, gen, xp)
    given = list(init)
    start, tris = list(init), {}
    for i in fixed:
        Q, R = xp.linalg.qr(given[i])
        start[i], tris[i] = Q, R
    core, factors, errors = hooi_body(X, ranks, modes, start, n_iter_max, tol, svd, M, gen, xp, fixed=fixed)
    from lowrank.tensors._tensor_ops import mode_dot

    for i, R in tris.items():
        if float(xp.min(xp.abs(xp.linalg.diagonal(R) if is_torch(R) else np.diagonal(R)))) == 0.0:
            raise ValueError(f"`init` factor for fixed mode {modes[i]} must have linearly independent columns")
        core = mode_dot(core, xp.linalg.inv(R), modes[i], xp)
        factors[i] = given[i]
    return core, factors, errors


def tucker(tensor, rank=None, *, init="svd", n_iter_max=100, tol=1e-8, svd="gram", mask=None, fixed_factors=None, rng=None):
    """Tucker decomposition by higher-order orthogonal iteration (HOOI).

    Each sweep projects the tensor on all factors but one and takes the leading left singular
    vectors of the (small) result through its Gram matrix; with missing entries every sweep first
    imputes them from the current model (EM), starting from the masked-Gram HOSVD.

    Parameters
    ----------
    tensor : ndarray or torch.Tensor, shape (I_1, ..., I_K)
        Real tensor, ``K >= 2``; entries outside ``mask`` may be NaN.
    rank : int, sequence of int or None, default=None
        Multilinear rank; None means the full rank ``tensor.shape`` (TensorLy's ``rank=None``).
    init : {"svd", "random"}, TuckerTensor or list of arrays, default="svd"
        ``"svd"``: truncated HOSVD (masked Gram when ``mask`` is given); ``"random"``: random
        orthonormal factors; or a decomposition (or a plain list of factors) whose factors are used.
    n_iter_max : int, default=100
        Maximum number of sweeps; 0 returns the initialization with its least-squares core.
    tol : float, default=1e-8
        Stop when the relative error changes by at most ``tol`` between sweeps.
    svd : {"gram", "randomized"}, default="gram"
        SVD used by the HOSVD initialization (the sweeps use the small Gram matrices).
    mask : array of bool, default=None
        True where observed; errors are then measured on the observed entries.
    fixed_factors : collection of int, default=None
        Modes whose factors stay exactly as given in ``init`` (TensorLy's ``fixed_factors``); the
        core and the other factors are fitted around them.
    rng : None, int or numpy.random.Generator, default=None
        Randomness for random initialization / randomized SVD / padding.

    Returns
    -------
    tensorly.tucker_tensor.TuckerTensor

    Raises
    ------
    ValueError
        Bad shapes, ranks, options, mask, or NaN/inf in observed entries.

    References
    ----------
    De Lathauwer, De Moor, Vandewalle, "On the best rank-1 and rank-(R1, R2, ..., RN) approximation
    of higher-order tensors", SIAM J. Matrix Anal. Appl. 21(4), 2000.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.tensors import tucker
    >>> rng = np.random.default_rng(0)
    >>> X = np.einsum("abc,ia,jb,kc->ijk", rng.standard_normal((2, 2, 2)), *[rng.standard_normal((n, 2)) for n in (5, 6, 7)])
    >>> T = tucker(X + 1e-3 * rng.standard_normal(X.shape), rank=2)
    >>> bool(np.linalg.norm(T.to_tensor() - X) / np.linalg.norm(X) < 1e-2)
    True
    """
    X, M, xp, gen, modes, ranks, init, n_iter_max, tol, fixed = _iv_tucker(
        tensor, rank, None, init, n_iter_max, tol, svd, mask, rng, fixed_factors
    )
    core, factors, _ = _hooi_with_fixed(X, ranks, modes, init, n_iter_max, tol, svd, M, gen, xp, fixed)
    return _tl().tucker_tensor.TuckerTensor((core, factors))


def partial_tucker(
    tensor, rank=None, *, modes=None, init="svd", n_iter_max=100, tol=1e-8, svd="gram", mask=None, fixed_factors=None, rng=None
):
    """Tucker decomposition (HOOI) along some modes only, as TensorLy's ``partial_tucker``.

    Parameters
    ----------
    tensor : ndarray or torch.Tensor, shape (I_1, ..., I_K)
        Real tensor, ``K >= 2``.
    rank : int, sequence of int or None, default=None
        Rank per mode in ``modes``; None means full rank along them.
    modes : sequence of int, default=None
        Modes to compress (default: all).
    init, n_iter_max, tol, svd, mask, fixed_factors, rng
        As in :func:`tucker` (``fixed_factors`` names tensor modes among ``modes``).

    Returns
    -------
    core : ndarray or torch.Tensor
        The tensor compressed along ``modes`` (the other modes keep their size).
    factors : list of arrays
        ``factors[i]`` (I_{modes[i]}, rank[i]) with orthonormal columns.

    Raises
    ------
    ValueError
        Bad shapes, modes, ranks, options, mask, or NaN/inf in observed entries.

    References
    ----------
    Kolda and Bader, "Tensor decompositions and applications", SIAM Review 51(3), 2009.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.tensors import partial_tucker
    >>> X = np.random.default_rng(0).standard_normal((4, 5, 6))
    >>> core, factors = partial_tucker(X, rank=(2, 3), modes=(1, 2))
    >>> core.shape, [f.shape for f in factors]
    ((4, 2, 3), [(5, 2), (6, 3)])
    """
    X, M, xp, gen, modes, ranks, init, n_iter_max, tol, fixed = _iv_tucker(
        tensor, rank, modes, init, n_iter_max, tol, svd, mask, rng, fixed_factors
    )
    core, factors, _ = _hooi_with_fixed(X, ranks, modes, init, n_iter_max, tol, svd, M, gen, xp, fixed)
    return core, factors


# ----------------------------------------------------------------------------- CP


def _iv_cp_init(init, X, rank):
    """``"svd"`` / ``"random"``, or the factor list of a given CP start (its weights folded into the first factor)."""
    if isinstance(init, str):
        return check_choice(init, "init", ("svd", "random"))
    factors = _iv_factor_list(init, X, [rank] * X.ndim, "CPTensor")
    weights = getattr(init, "weights", None)
    if weights is not None:
        factors[0] = factors[0] * _like(as_tensor(weights, "init weights", min_ndim=1)[0], X)[None, :]
    return factors


def _iv_cp(tensor, rank, init, n_restarts, compress, line_search, n_iter_max, tol, mask, rng):
    X, xp = as_tensor(tensor, "tensor", allow_nan=mask is not None)
    X, M = as_mask(mask, X, xp)
    rank = check_int(rank, "rank", low=1)
    init = _iv_cp_init(init, X, rank)
    n_restarts = check_int(n_restarts, "n_restarts", low=0)
    if not isinstance(compress, (bool, np.bool_)):
        raise TypeError(f"`compress` must be a bool, got {compress!r}")
    if not isinstance(line_search, (bool, np.bool_)):
        raise TypeError(f"`line_search` must be a bool, got {line_search!r}")
    n_iter_max = check_int(n_iter_max, "n_iter_max", low=0)
    tol = check_float(tol, "tol", low=0)
    return X, M, xp, rank, init, n_restarts, bool(compress), bool(line_search), n_iter_max, tol, as_generator(rng)


def _iv_cp_options(X, M, init, normalize_factors, orthogonalise, sparsity, fixed_modes, callback):
    if not isinstance(normalize_factors, (bool, np.bool_)):
        raise TypeError(f"`normalize_factors` must be a bool, got {normalize_factors!r}")
    if isinstance(orthogonalise, (bool, np.bool_)):
        orthogonalise = 10**9 if orthogonalise else 0  # True: every sweep (TensorLy)
    else:
        orthogonalise = check_int(orthogonalise, "orthogonalise", low=0)
    size = int(np.prod(X.shape))
    if sparsity is None:
        count = 0
    elif isinstance(sparsity, (float, np.floating)):
        count = int(check_float(sparsity, "sparsity", low=0, high=1, high_inclusive=False) * size)
    else:
        count = check_int(sparsity, "sparsity", low=0, high=size - 1)
    if count and M is not None:
        raise ValueError("`sparsity` and `mask` cannot be combined (a sparse residual needs every entry)")
    fixed = _iv_modes_set(fixed_modes, X.ndim, "fixed_modes", default=())
    if fixed and isinstance(init, str):
        raise ValueError("`fixed_modes` needs `init` given as factors (the fixed ones are kept as given)")
    if len(fixed) == X.ndim:
        raise ValueError("`fixed_modes` must leave at least one mode free")
    return {
        "normalize_factors": bool(normalize_factors),
        "orthogonalise": orthogonalise,
        "sparsity": count,
        "fixed_modes": fixed,
        "callback": _iv_callback(callback),
    }


def cp_als(
    tensor,
    rank,
    *,
    init="svd",
    n_restarts=0,
    compress=True,
    line_search=True,
    n_iter_max=200,
    tol=1e-9,
    mask=None,
    normalize_factors=True,
    orthogonalise=False,
    sparsity=None,
    fixed_modes=None,
    callback=None,
    rng=None,
):
    """CP (CANDECOMP/PARAFAC) decomposition by alternating least squares.

    With ``compress`` the tensor is first compressed by ST-HOSVD to an R x ... x R core, where
    the candidate starts (SVD, and for third-order tensors the generalized-eigenvalue start that is
    exact for noiseless CP, plus ``n_restarts`` random ones) are run to convergence for almost
    nothing; the best is lifted back and refined by ALS on the full tensor (CANDELINC). Each sweep
    uses a line search along the previous step (Bro's extrapolation). With ``mask`` the missing
    entries are imputed from the current model before every sweep (EM), starting from the
    masked-Gram SVD initialization.

    Parameters
    ----------
    tensor : ndarray or torch.Tensor, shape (I_1, ..., I_K)
        Real tensor, ``K >= 2``; entries outside ``mask`` may be NaN.
    rank : int
        Number of rank-one components.
    init : {"svd", "random"}, CPTensor or list of arrays, default="svd"
        Starting point (``"svd"`` adds the GEVD start for third-order tensors); factors
        ``(I_k, rank)`` as a plain list are accepted too.
    n_restarts : int, default=0
        Extra random starts; the lowest final error wins.
    compress : bool, default=True
        Compress first when every mode is longer than ``rank`` (ignored with a mask or a given init).
    line_search : bool, default=True
        Extrapolate along the previous step when it lowers the error.
    n_iter_max : int, default=200
        Maximum ALS sweeps on the full tensor; 0 returns the (normalized) initialization.
    tol : float, default=1e-9
        Stop when the relative error changes by at most ``tol`` times itself.
    mask : array of bool, default=None
        True where observed.
    normalize_factors : bool, default=True
        True: unit-norm columns and the scale in ``weights``. False (TensorLy's default): unit
        ``weights`` and the scale of each component shared evenly by its factors.
    orthogonalise : bool or int, default=False
        Replace the factors by orthonormal bases of their columns before each of the first
        ``orthogonalise`` sweeps (True: every sweep), as TensorLy's ``orthogonalise``.
    sparsity : float or int, default=None
        Fit ``tensor ≈ CP + S`` where ``S`` holds the ``sparsity`` (count, or fraction of all
        entries) largest-magnitude entries of the residual, re-chosen every sweep (ALS on
        ``tensor - S``): robust to that many gross outliers. ``S`` is returned as the result's
        ``sparse_component`` attribute. Not with ``mask``.
    fixed_modes : collection of int, default=None
        Modes whose factors stay as given in ``init`` (which must then be factors).
    callback : callable, default=None
        ``callback(iteration, rel_error, factors)`` after every full-tensor sweep; True stops.
        Without compression every start runs its own sweeps (iteration restarts at 0 per start).
    rng : None, int or numpy.random.Generator, default=None
        Randomness of the starts.

    Returns
    -------
    tensorly.cp_tensor.CPTensor
        ``(weights, factors)``: unit-norm factor columns (largest entry positive in all but the last
        factor), weights in decreasing order. Its ``sparse_component`` attribute is the sparse part
        ``S`` (None without ``sparsity``).

    Raises
    ------
    ValueError
        Bad shapes, rank, options, mask, or NaN/inf in observed entries.

    References
    ----------
    Kolda and Bader, "Tensor decompositions and applications", SIAM Review 51(3), 2009;
    Bro, "Multi-way analysis in the food industry", PhD thesis, 1998 (line search);
    Carroll, Pruzansky, Kruskal, "CANDELINC", Psychometrika 45, 1980 (compression).

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.tensors import cp_als
    >>> rng = np.random.default_rng(0)
    >>> A, B, C = (rng.standard_normal((n, 3)) for n in (8, 9, 10))
    >>> X = np.einsum("ir,jr,kr->ijk", A, B, C)
    >>> cp = cp_als(X, rank=3, rng=0)
    >>> bool(np.linalg.norm(cp.to_tensor() - X) / np.linalg.norm(X) < 1e-6)
    True
    """
    X, M, xp, rank, init, n_restarts, compress, line_search, n_iter_max, tol, gen = _iv_cp(
        tensor, rank, init, n_restarts, compress, line_search, n_iter_max, tol, mask, rng
    )
    options = _iv_cp_options(X, M, init, normalize_factors, orthogonalise, sparsity, fixed_modes, callback)
    weights, factors, _, S = cp_body(
        X, rank, init, n_restarts, compress, line_search, n_iter_max, tol, M, gen, xp, options=options
    )
    out = _tl().cp_tensor.CPTensor((weights, factors))
    out.sparse_component = S
    return out


# ----------------------------------------------------------------------------- TT


def tt_svd(tensor, rank=None, *, tol=None, svd="gram", mask=None, n_iter_max=50, rng=None):
    """Tensor-train decomposition by sequential truncated SVDs (TT-SVD).

    Parameters
    ----------
    tensor : ndarray or torch.Tensor, shape (I_1, ..., I_K)
        Real tensor, ``K >= 2``; entries outside ``mask`` may be NaN.
    rank : int or sequence of int, default=None
        Maximum TT ranks: one int for all bonds, ``K - 1`` inner ranks, or ``K + 1`` ranks with
        ones at both ends (TensorLy's convention).
    tol : float, default=None
        Target relative error in (0, 1) (error budget split evenly over the ``K - 1`` SVDs).
    svd : {"gram", "randomized"}, default="gram"
        ``"gram"``: eigendecomposition of the smaller Gram matrix of each unfolding;
        ``"randomized"``: :func:`lowrank.linalg.randomized_svd` (needs ``rank``).
    mask : array of bool, default=None
        True where observed: missing entries start at the observed mean and are re-imputed from the
        TT model until the observed-entry error settles (EM, at most ``n_iter_max`` rounds).
    n_iter_max : int, default=50
        Maximum EM rounds with a mask.
    rng : None, int or numpy.random.Generator, default=None
        Randomness for ``svd="randomized"``.

    Returns
    -------
    tensorly.tt_tensor.TTTensor
        Cores of shapes ``(r_{k-1}, I_k, r_k)`` with ``r_0 = r_K = 1``.

    Raises
    ------
    ValueError
        Bad shapes, ranks, ``tol``, mask, or NaN/inf in observed entries.

    References
    ----------
    Oseledets, "Tensor-train decomposition", SIAM J. Sci. Comput. 33(5), 2011.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.tensors import tt_svd
    >>> x = np.linspace(0, 1, 6)
    >>> X = np.sin(x[:, None, None] + x[None, :, None] + x[None, None, :])  # TT ranks 2
    >>> tt = tt_svd(X, rank=2)
    >>> [c.shape for c in tt.factors], bool(np.allclose(tt.to_tensor(), X))
    ([(1, 6, 2), (2, 6, 2), (2, 6, 1)], True)
    """
    X, M, xp, gen = _iv_common(tensor, mask, rng, svd)
    K = X.ndim
    if rank is None and tol is None:
        raise ValueError("give `rank`, `tol` or both")
    if rank is None:
        caps = [int(np.prod(X.shape))] * (K - 1)
    elif isinstance(rank, (int, np.integer)) and not isinstance(rank, bool):
        caps = [check_int(rank, "rank", low=1)] * (K - 1)
    else:
        caps = [check_int(r, "rank", low=1) for r in rank]
        if len(caps) == K + 1:
            if caps[0] != 1 or caps[-1] != 1:
                raise ValueError("`rank` with K + 1 entries must start and end with 1")
            caps = caps[1:-1]
        if len(caps) != K - 1:
            raise ValueError(f"`rank` must be an int, {K - 1} inner ranks or {K + 1} ranks, got {len(caps)} values")
    if tol is not None:
        tol = check_float(tol, "tol", low=0, high=1, low_inclusive=False, high_inclusive=False)
    if svd == "randomized" and tol is not None:
        raise ValueError("`tol` needs the full spectrum: use svd='gram' with `tol`")
    n_iter_max = check_int(n_iter_max, "n_iter_max", low=1)
    if M is None:
        cores = tt_body(X, caps, tol, svd, gen, xp)
    else:
        cores, _ = tt_em_body(X, M, caps, tol, svd, n_iter_max, 1e-6, gen, xp)
    return _tl().tt_tensor.TTTensor(cores)


# ----------------------------------------------------------------------------- estimators


class _TensorDecomposition(BaseEstimator):
    _sklearn_skip_checks = (
        "decomposes one N-way tensor (TensorLy's Tucker/CP estimator API), not a samples x features matrix"
    )

    def _validate(self, X):
        if is_torch(X):
            return X
        return validate_data(self, X, ensure_2d=False, allow_nd=True, ensure_all_finite=False, dtype=[np.float64, np.float32])

    def fit_transform(self, X, y=None, mask=None):
        """Fit and return the decomposition (as TensorLy's estimators do)."""
        return self.fit(X, y, mask=mask).decomposition_

    def to_tensor(self):
        """The fitted low-rank tensor (dense)."""
        check_is_fitted(self)
        return self.decomposition_.to_tensor()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # with mask=
        tags.non_deterministic = False
        return tags


class Tucker(_TensorDecomposition):
    """Tucker decomposition (HOOI) as an estimator; wraps :func:`tucker`.

    Parameters
    ----------
    rank : int or sequence of int, default=2
        Multilinear rank.
    init : {"svd", "random"}, default="svd"
    n_iter_max : int, default=100
    tol : float, default=1e-8
    svd : {"gram", "randomized"}, default="gram"
    random_state : None, int or numpy.random.Generator, default=None

    Attributes
    ----------
    decomposition_ : tensorly.tucker_tensor.TuckerTensor
    core_ : array, shape ``rank``
    factors_ : list of arrays, ``(I_k, rank_k)``
    errors_ : list of float
        Relative error (on observed entries) after each sweep.
    reconstruction_error_ : float
        Last entry of ``errors_``.
    n_iter_ : int

    References
    ----------
    De Lathauwer, De Moor, Vandewalle, SIAM J. Matrix Anal. Appl. 21(4), 2000.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.tensors import Tucker
    >>> X = np.random.default_rng(0).standard_normal((5, 6, 7))
    >>> est = Tucker(rank=(2, 3, 2), random_state=0).fit(X)
    >>> est.core_.shape, len(est.errors_) >= 1
    ((2, 3, 2), True)
    """

    def __init__(self, rank=2, *, init="svd", n_iter_max=100, tol=1e-8, svd="gram", random_state=None):
        self.rank = rank
        self.init = init
        self.n_iter_max = n_iter_max
        self.tol = tol
        self.svd = svd
        self.random_state = random_state

    def fit(self, X, y=None, mask=None):
        """Decompose tensor ``X`` (``mask``: True where observed). Returns self."""
        X = self._validate(X)
        X, M, xp, gen, modes, ranks, init, n_iter_max, tol, _ = _iv_tucker(
            X, self.rank, None, self.init, self.n_iter_max, self.tol, self.svd, mask, self.random_state
        )
        core, factors, errors = hooi_body(X, ranks, modes, init, n_iter_max, tol, self.svd, M, gen, xp)
        self.decomposition_ = _tl().tucker_tensor.TuckerTensor((core, factors))
        self.core_, self.factors_ = core, factors
        self.errors_ = errors
        self.reconstruction_error_ = errors[-1]
        self.n_iter_ = len(errors)
        return self

    def transform(self, X):
        """Project a tensor of the fitted shape on the fitted factors (its Tucker core)."""
        check_is_fitted(self)
        from lowrank.tensors._tensor_ops import multi_mode_dot

        X, xp = as_tensor(X, "X")
        shape = tuple(int(F.shape[0]) for F in self.factors_)
        if tuple(X.shape) != shape:
            raise ValueError(f"`X` must have the fitted shape {shape}, got {tuple(X.shape)}")
        return multi_mode_dot(X, self.factors_, list(range(X.ndim)), xp, transpose=True)


class CP(_TensorDecomposition):
    """CP decomposition (ALS with compression, line search and restarts) as an estimator; wraps :func:`cp_als`.

    Parameters
    ----------
    rank : int, default=2
    init : {"svd", "random"}, default="svd"
    n_restarts : int, default=0
    compress : bool, default=True
    line_search : bool, default=True
    n_iter_max : int, default=200
    tol : float, default=1e-9
    normalize_factors : bool, default=True
    orthogonalise : bool or int, default=False
    sparsity : float or int, default=None
        As in :func:`cp_als`.
    random_state : None, int or numpy.random.Generator, default=None

    Attributes
    ----------
    decomposition_ : tensorly.cp_tensor.CPTensor
    sparse_component_ : array or None
        The sparse part ``S`` with ``sparsity``, else None.
    weights_ : array, shape (rank,)
    factors_ : list of arrays, ``(I_k, rank)``
    errors_ : list of float
        Relative error after each full-tensor sweep.
    reconstruction_error_ : float
    n_iter_ : int

    References
    ----------
    Kolda and Bader, "Tensor decompositions and applications", SIAM Review 51(3), 2009.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.tensors import CP
    >>> rng = np.random.default_rng(0)
    >>> X = np.einsum("ir,jr,kr->ijk", *(rng.standard_normal((n, 2)) for n in (5, 6, 7)))
    >>> bool(CP(rank=2, random_state=0).fit(X).reconstruction_error_ < 1e-6)
    True
    """

    def __init__(
        self,
        rank=2,
        *,
        init="svd",
        n_restarts=0,
        compress=True,
        line_search=True,
        n_iter_max=200,
        tol=1e-9,
        normalize_factors=True,
        orthogonalise=False,
        sparsity=None,
        random_state=None,
    ):
        self.rank = rank
        self.init = init
        self.n_restarts = n_restarts
        self.compress = compress
        self.line_search = line_search
        self.n_iter_max = n_iter_max
        self.tol = tol
        self.normalize_factors = normalize_factors
        self.orthogonalise = orthogonalise
        self.sparsity = sparsity
        self.random_state = random_state

    def fit(self, X, y=None, mask=None):
        """Decompose tensor ``X`` (``mask``: True where observed). Returns self."""
        X = self._validate(X)
        X, M, xp, rank, init, n_restarts, compress, line_search, n_iter_max, tol, gen = _iv_cp(
            X, self.rank, self.init, self.n_restarts, self.compress, self.line_search, self.n_iter_max, self.tol, mask, self.random_state
        )
        options = _iv_cp_options(X, M, init, self.normalize_factors, self.orthogonalise, self.sparsity, None, None)
        weights, factors, errors, S = cp_body(
            X, rank, init, n_restarts, compress, line_search, n_iter_max, tol, M, gen, xp, options=options
        )
        self.decomposition_ = _tl().cp_tensor.CPTensor((weights, factors))
        self.decomposition_.sparse_component = S
        self.sparse_component_ = S
        self.weights_, self.factors_ = weights, factors
        self.errors_ = errors
        self.reconstruction_error_ = errors[-1]
        self.n_iter_ = len(errors)
        return self


# ----------------------------------------------------------------------------- non-negative CP / Tucker


def _iv_modes_set(modes, ndim, name, *, default):
    if modes is None:
        return set(default)
    if isinstance(modes, str):
        if modes != "all":
            raise ValueError(f"`{name}` must be 'all' or a collection of mode indices, got {modes!r}")
        return set(range(ndim))
    if isinstance(modes, (int, np.integer)) and not isinstance(modes, bool):
        modes = [modes]
    try:
        out = {check_int(m, name, low=-ndim, high=ndim - 1) % ndim for m in modes}
    except TypeError:
        raise TypeError(f"`{name}` must be a collection of mode indices, got {modes!r}") from None
    return out


def _iv_callback(callback):
    if callback is not None and not callable(callback):
        raise TypeError(f"`callback` must be callable or None, got {type(callback).__name__}")
    return callback


def _iv_factor_list(init, X, ranks, what):
    """A list/tuple of factors (or an object with ``.factors``): check shapes, convert to X's backend."""
    factors = init.factors if hasattr(init, "factors") else init
    if not isinstance(factors, (list, tuple)) or len(factors) != X.ndim:
        raise ValueError(f"`init` must be 'svd', 'random', a {what} or a list of {X.ndim} factors")
    out = []
    for m, (F, r) in enumerate(zip(factors, ranks)):
        F = as_tensor(F, "init factor")[0]
        if tuple(F.shape) != (X.shape[m], r):
            raise ValueError(f"`init` factor {m} must have shape {(X.shape[m], r)}, got {tuple(F.shape)}")
        out.append(_like(F, X))
    return out


def _like(F, X):
    if is_torch(X):
        import torch

        return torch.as_tensor(F, dtype=X.dtype, device=X.device)
    return np.asarray(F, dtype=X.dtype)


def _iv_nn_cp(tensor, rank, init, n_iter_max, tol, nn_modes, fixed_modes, mask, callback, rng):
    X, xp = as_tensor(tensor, "tensor", allow_nan=mask is not None)
    X, M = as_mask(mask, X, xp)
    rank = check_int(rank, "rank", low=1)
    init = _iv_cp_init(init, X, rank)
    n_iter_max = check_int(n_iter_max, "n_iter_max", low=0)
    tol = check_float(tol, "tol", low=0)
    nn_modes = _iv_modes_set(nn_modes, X.ndim, "nn_modes", default=range(X.ndim))
    fixed_modes = _iv_modes_set(fixed_modes, X.ndim, "fixed_modes", default=())
    if fixed_modes and isinstance(init, str):
        raise ValueError("`fixed_modes` needs `init` given as factors (the fixed ones are kept as given)")
    return X, M, xp, rank, init, n_iter_max, tol, nn_modes, fixed_modes, _iv_callback(callback), as_generator(rng)


def _nn_cp_run(X, M, xp, rank, init, n_iter_max, tol, nn_modes, fixed_modes, callback, gen):
    from lowrank.tensors._nonnegative import nn_cp_body, nn_cp_init

    start = nn_cp_init(X, rank, init, gen, xp, M=M)
    return nn_cp_body(X, start, n_iter_max, tol, nn_modes, fixed_modes, M, callback, xp)


def non_negative_cp(
    tensor, rank, *, init="svd", n_iter_max=100, tol=1e-8, nn_modes="all", fixed_modes=None, mask=None, callback=None, rng=None
):
    """Non-negative CP (PARAFAC) by hierarchical ALS, as TensorLy's ``non_negative_parafac_hals``.

    Each sweep computes one MTTKRP per mode and then runs column-wise HALS updates on the small
    normal equations (``V = *_m A_m^T A_m``) until they stop moving the factor (at most 10 inner
    sweeps; Gillis & Glineur's acceleration), so the tensor is read once per mode and sweep.
    With ``mask`` the missing entries are re-imputed from the current model before every sweep (EM).

    Parameters
    ----------
    tensor : ndarray or torch.Tensor, shape (I_1, ..., I_K)
        Real tensor, ``K >= 2`` (non-negative data is the usual case; it is not required).
        Entries outside ``mask`` may be NaN.
    rank : int
        Number of rank-one components.
    init : {"svd", "random"}, CPTensor or list of arrays, default="svd"
        ``"svd"``: absolute values of each mode's leading singular vectors, scaled to the best fit;
        ``"random"``: uniform [0, 1) factors, scaled; or factors ``(I_k, rank)`` (weights of a
        CPTensor are folded into the first factor).
    n_iter_max : int, default=100
        Maximum outer sweeps; 0 returns the (normalized) initialization.
    tol : float, default=1e-8
        Stop when the relative error changes by at most ``tol`` between sweeps (TensorLy's
        absolute criterion).
    nn_modes : "all" or collection of int, default="all"
        Modes constrained to be non-negative; the others are solved unconstrained (coordinate
        descent on the same normal equations).
    fixed_modes : collection of int, default=None
        Modes whose factors stay as given in ``init`` (which must then be factors).
    mask : array of bool, default=None
        True where observed; errors are then measured on the observed entries.
    callback : callable, default=None
        ``callback(iteration, rel_error, factors)`` after every sweep; returning True stops.
    rng : None, int or numpy.random.Generator, default=None
        Randomness of ``init="random"`` and of padding columns.

    Returns
    -------
    tensorly.cp_tensor.CPTensor
        ``(weights, factors)`` with unit-norm factor columns and weights in decreasing order.

    Raises
    ------
    ValueError
        Bad shapes, rank, ``init`` shapes, ``n_iter_max``, ``tol``, modes, mask, or NaN/inf.
    TypeError
        Complex or non-numeric tensor, a non-callable ``callback``.

    References
    ----------
    A. Cichocki, A.-H. Phan, "Fast local algorithms for large scale nonnegative matrix and tensor
    factorizations", IEICE Trans. Fundamentals E92-A(3), 2009;
    N. Gillis, F. Glineur, "Accelerated multiplicative updates and hierarchical ALS algorithms for
    nonnegative matrix factorization", Neural Computation 24(4), 2012, arXiv:1107.5194.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.tensors import non_negative_cp
    >>> rng = np.random.default_rng(0)
    >>> A, B, C = (rng.random((n, 2)) for n in (6, 7, 8))
    >>> X = np.einsum("ir,jr,kr->ijk", A, B, C)
    >>> cp = non_negative_cp(X, 2, n_iter_max=500, tol=0, rng=0)
    >>> bool(np.linalg.norm(cp.to_tensor() - X) / np.linalg.norm(X) < 1e-4), bool(min(f.min() for f in cp.factors) >= 0)
    (True, True)
    """
    args = _iv_nn_cp(tensor, rank, init, n_iter_max, tol, nn_modes, fixed_modes, mask, callback, rng)
    weights, factors, _ = _nn_cp_run(*args)
    return _tl().cp_tensor.CPTensor((weights, factors))


def _iv_nn_tucker(tensor, rank, init, n_iter_max, tol, fixed_modes, mask, callback, rng):
    X, xp = as_tensor(tensor, "tensor", allow_nan=mask is not None)
    X, M = as_mask(mask, X, xp)
    ranks = list(X.shape) if rank is None else as_ranks(rank, X.shape)
    if isinstance(init, str):
        check_choice(init, "init", ("svd", "random"))
    else:
        core = getattr(init, "core", None)
        if core is None and isinstance(init, (list, tuple)) and len(init) == 2 and isinstance(init[1], (list, tuple)):
            core, init = init
        if core is None:
            raise ValueError("`init` for non_negative_tucker must be 'svd', 'random' or a TuckerTensor (core and factors)")
        factors = _iv_factor_list(init, X, ranks, "TuckerTensor")
        core = _like(as_tensor(core, "init core", min_ndim=1)[0], X)
        if tuple(core.shape) != tuple(ranks):
            raise ValueError(f"`init` core must have shape {tuple(ranks)}, got {tuple(core.shape)}")
        init = (core, factors)
    n_iter_max = check_int(n_iter_max, "n_iter_max", low=0)
    tol = check_float(tol, "tol", low=0)
    fixed_modes = _iv_modes_set(fixed_modes, X.ndim, "fixed_modes", default=())
    if fixed_modes and isinstance(init, str):
        raise ValueError("`fixed_modes` needs `init` given as a TuckerTensor (the fixed factors are kept as given)")
    return X, M, xp, ranks, init, n_iter_max, tol, fixed_modes, _iv_callback(callback), as_generator(rng)


def _nn_tucker_run(X, M, xp, ranks, init, n_iter_max, tol, fixed_modes, callback, gen):
    from lowrank.tensors._nonnegative import nn_tucker_body, nn_tucker_init

    core, factors = nn_tucker_init(X, ranks, init, gen, xp, M=M)
    return nn_tucker_body(X, core, factors, n_iter_max, tol, fixed_modes, M, callback, xp)


def non_negative_tucker(tensor, rank, *, init="svd", n_iter_max=100, tol=1e-8, fixed_modes=None, mask=None, callback=None, rng=None):
    """Non-negative Tucker decomposition: HALS factor updates and an accelerated projected-gradient
    (FISTA) core update, as TensorLy's ``non_negative_tucker_hals``.

    Every factor update uses the Gram trick: ``W = X_(n) B^T`` from one partial projection of the
    tensor and ``V = B B^T`` from the core and the small factor Grams, then column HALS sweeps.

    Parameters
    ----------
    tensor : ndarray or torch.Tensor, shape (I_1, ..., I_K)
        Real tensor, ``K >= 2``; entries outside ``mask`` may be NaN.
    rank : int, sequence of int or None
        Multilinear rank; None means the full rank ``tensor.shape``.
    init : {"svd", "random"} or TuckerTensor, default="svd"
        ``"svd"``: absolute HOSVD factors and the clipped projected core, scaled to the best fit;
        ``"random"``: uniform [0, 1) factors and core; or a ``(core, factors)`` decomposition.
    n_iter_max : int, default=100
        Maximum outer sweeps; 0 returns the initialization.
    tol : float, default=1e-8
        Stop when the relative error changes by at most ``tol`` between sweeps.
    fixed_modes : collection of int, default=None
        Modes whose factors stay as given in ``init``.
    mask : array of bool, default=None
        True where observed (EM imputation before every sweep).
    callback : callable, default=None
        ``callback(iteration, rel_error, factors)`` after every sweep; returning True stops.
    rng : None, int or numpy.random.Generator, default=None

    Returns
    -------
    tensorly.tucker_tensor.TuckerTensor
        Non-negative core and factors.

    Raises
    ------
    ValueError
        Bad shapes, ranks, ``init``, options, mask, or NaN/inf.
    TypeError
        Complex or non-numeric tensor, a non-callable ``callback``.

    References
    ----------
    Y.-D. Kim, S. Choi, "Nonnegative Tucker decomposition", CVPR 2007;
    A. Beck, M. Teboulle, "A fast iterative shrinkage-thresholding algorithm", SIAM J. Imaging Sci. 2(1), 2009.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.tensors import non_negative_tucker
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((6, 7, 8))
    >>> T = non_negative_tucker(X, rank=2, rng=0)
    >>> bool(T.core.min() >= 0 and min(f.min() for f in T.factors) >= 0)
    True
    """
    args = _iv_nn_tucker(tensor, rank, init, n_iter_max, tol, fixed_modes, mask, callback, rng)
    core, factors, _ = _nn_tucker_run(*args)
    return _tl().tucker_tensor.TuckerTensor((core, factors))


# ----------------------------------------------------------------------------- randomized CP


def randomized_cp(
    tensor,
    rank,
    n_samples,
    *,
    init="svd",
    n_iter_max=100,
    tol=1e-8,
    sampling="uniform",
    n_samples_fit=16384,
    max_stagnation=20,
    callback=None,
    rng=None,
):
    """Randomized CP-ALS (CPRAND): each mode update solves its least squares on ``n_samples`` sampled
    rows of the Khatri-Rao product, as TensorLy's ``randomised_parafac``.

    A sweep reads only ``n_samples`` fibres per mode instead of the whole tensor, so it pays off for
    tensors far larger than ``n_samples * rank``. The error is estimated on ``n_samples_fit`` fixed
    random entries and the best sweep is returned.

    Parameters
    ----------
    tensor : ndarray or torch.Tensor, shape (I_1, ..., I_K)
        Real dense tensor, ``K >= 2`` (torch input is computed in numpy and returned as torch).
    rank : int
        Number of rank-one components.
    n_samples : int
        Khatri-Rao rows sampled per mode update (at least ``rank``; ~10 x rank is typical).
    init : {"svd", "random"}, CPTensor or list of arrays, default="svd"
        As in :func:`cp_als` (``"svd"``: leading singular vectors of each unfolding).
    n_iter_max : int, default=100
        Maximum sweeps; 0 returns the initialization.
    tol : float, default=1e-8
        Stop when the estimated error changes by at most ``tol``.
    sampling : {"uniform", "leverage"}, default="uniform"
        ``"uniform"`` (Battaglino et al.) or products of the factors' row leverage scores with
        importance weights (Larsen & Kolda), better when the factors are coherent.
    n_samples_fit : int, default=16384
        Entries used to estimate the error (all entries when the tensor is smaller).
    max_stagnation : int, default=20
        Stop after this many sweeps without a new best estimate (0: never).
    callback : callable, default=None
        ``callback(iteration, estimated_rel_error, factors)`` after every sweep; True stops.
    rng : None, int or numpy.random.Generator, default=None

    Returns
    -------
    tensorly.cp_tensor.CPTensor
        ``(weights, factors)`` normalized as :func:`cp_als`'s.

    Raises
    ------
    ValueError
        Bad shapes, rank, ``n_samples`` below ``rank``, options, NaN/inf.
    TypeError
        Complex or non-numeric tensor, a non-callable ``callback``.

    References
    ----------
    C. Battaglino, G. Ballard, T. G. Kolda, "A practical randomized CP tensor decomposition",
    SIAM J. Matrix Anal. Appl. 39(2), 2018, arXiv:1701.06600;
    B. W. Larsen, T. G. Kolda, "Practical leverage-based sampling for low-rank tensor decomposition",
    SIAM J. Matrix Anal. Appl. 43(3), 2022, arXiv:2006.16438.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.tensors import randomized_cp
    >>> rng = np.random.default_rng(0)
    >>> X = np.einsum("ir,jr,kr->ijk", *(rng.standard_normal((n, 3)) for n in (20, 21, 22)))
    >>> cp = randomized_cp(X, 3, n_samples=60, rng=0)
    >>> bool(np.linalg.norm(cp.to_tensor() - X) / np.linalg.norm(X) < 1e-6)
    True
    """
    from lowrank.tensors._cp import svd_init
    from lowrank.tensors._randomized_cp import randomized_cp_body
    from lowrank.tensors._tensor_ops import to_backend

    X, xp = as_tensor(tensor, "tensor")
    rank = check_int(rank, "rank", low=1)
    n_samples = check_int(n_samples, "n_samples", low=rank)
    init = _iv_cp_init(init, X, rank)
    n_iter_max = check_int(n_iter_max, "n_iter_max", low=0)
    tol = check_float(tol, "tol", low=0)
    check_choice(sampling, "sampling", ("uniform", "leverage"))
    n_samples_fit = check_int(n_samples_fit, "n_samples_fit", low=1)
    max_stagnation = check_int(max_stagnation, "max_stagnation", low=0)
    callback = _iv_callback(callback)
    gen = as_generator(rng)
    Xn = X.detach().cpu().numpy().astype(np.float64) if is_torch(X) else np.asarray(X, dtype=np.float64)
    if isinstance(init, list):
        start = [F.detach().cpu().numpy() if is_torch(F) else F for F in init]
    elif init == "svd":
        start = svd_init(Xn, rank, gen, np)
    else:
        start = [gen.standard_normal((int(n), rank)) for n in Xn.shape]
    weights, factors, _ = randomized_cp_body(
        Xn, start, n_samples, n_iter_max, tol, sampling, n_samples_fit, max_stagnation, callback, gen
    )
    weights, factors = to_backend(weights, X), [to_backend(F, X) for F in factors]
    return _tl().cp_tensor.CPTensor((weights, factors))


class NonNegativeCP(_TensorDecomposition):
    """Non-negative CP (HALS) as an estimator; wraps :func:`non_negative_cp`.

    Parameters
    ----------
    rank : int, default=2
    init : {"svd", "random"}, default="svd"
    n_iter_max : int, default=100
    tol : float, default=1e-8
    nn_modes : "all" or collection of int, default="all"
    random_state : None, int or numpy.random.Generator, default=None

    Attributes
    ----------
    decomposition_ : tensorly.cp_tensor.CPTensor
    weights_ : array, shape (rank,)
    factors_ : list of arrays, ``(I_k, rank)``
    errors_ : list of float
        Relative error (on observed entries) after each sweep.
    reconstruction_error_ : float
    n_iter_ : int

    References
    ----------
    Cichocki and Phan, IEICE Trans. Fundamentals E92-A(3), 2009.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.tensors import NonNegativeCP
    >>> X = np.einsum("ir,jr,kr->ijk", *(np.random.default_rng(0).random((n, 2)) for n in (5, 6, 7)))
    >>> est = NonNegativeCP(rank=2, n_iter_max=300, tol=0, random_state=0).fit(X)
    >>> bool(est.reconstruction_error_ < 1e-3)
    True
    """

    def __init__(self, rank=2, *, init="svd", n_iter_max=100, tol=1e-8, nn_modes="all", random_state=None):
        self.rank = rank
        self.init = init
        self.n_iter_max = n_iter_max
        self.tol = tol
        self.nn_modes = nn_modes
        self.random_state = random_state

    def fit(self, X, y=None, mask=None):
        """Decompose tensor ``X`` (``mask``: True where observed). Returns self."""
        X = self._validate(X)
        args = _iv_nn_cp(X, self.rank, self.init, self.n_iter_max, self.tol, self.nn_modes, None, mask, None, self.random_state)
        weights, factors, errors = _nn_cp_run(*args)
        self.decomposition_ = _tl().cp_tensor.CPTensor((weights, factors))
        self.weights_, self.factors_ = weights, factors
        self.errors_ = errors
        self.reconstruction_error_ = errors[-1] if errors else float("nan")
        self.n_iter_ = len(errors)
        return self


class NonNegativeTucker(_TensorDecomposition):
    """Non-negative Tucker (HALS factors, FISTA core) as an estimator; wraps :func:`non_negative_tucker`.

    Parameters
    ----------
    rank : int, sequence of int or None, default=2
    init : {"svd", "random"}, default="svd"
    n_iter_max : int, default=100
    tol : float, default=1e-8
    random_state : None, int or numpy.random.Generator, default=None

    Attributes
    ----------
    decomposition_ : tensorly.tucker_tensor.TuckerTensor
    core_ : array, shape ``rank``
    factors_ : list of arrays, ``(I_k, rank_k)``
    errors_ : list of float
    reconstruction_error_ : float
    n_iter_ : int

    References
    ----------
    Kim and Choi, "Nonnegative Tucker decomposition", CVPR 2007.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.tensors import NonNegativeTucker
    >>> est = NonNegativeTucker(rank=2, random_state=0).fit(np.random.default_rng(0).random((5, 6, 7)))
    >>> est.core_.shape, bool(est.core_.min() >= 0)
    ((2, 2, 2), True)
    """

    def __init__(self, rank=2, *, init="svd", n_iter_max=100, tol=1e-8, random_state=None):
        self.rank = rank
        self.init = init
        self.n_iter_max = n_iter_max
        self.tol = tol
        self.random_state = random_state

    def fit(self, X, y=None, mask=None):
        """Decompose tensor ``X`` (``mask``: True where observed). Returns self."""
        X = self._validate(X)
        args = _iv_nn_tucker(X, self.rank, self.init, self.n_iter_max, self.tol, None, mask, None, self.random_state)
        core, factors, errors = _nn_tucker_run(*args)
        self.decomposition_ = _tl().tucker_tensor.TuckerTensor((core, factors))
        self.core_, self.factors_ = core, factors
        self.errors_ = errors
        self.reconstruction_error_ = errors[-1] if errors else float("nan")
        self.n_iter_ = len(errors)
        return self
