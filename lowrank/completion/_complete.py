"""``complete_matrix``: alternating minimization (exact and robust) and SoftImpute on observed entries."""

import logging
import numbers
import time

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import LinearOperator

from lowrank._utils.progress import progress
from lowrank._utils.rng import as_generator
from lowrank._utils.validation import check_choice, check_float, check_int, check_rank
from lowrank.completion._engine import DaskEngine, LocalEngine, single_threaded_blas
from lowrank.completion._input import Layout, check_coverage, observed_entries
from lowrank.completion._options import CompletionOptions, Entries
from lowrank.completion._result import CompletionResult
from lowrank.linalg import randomized_svd, svd_flip

logger = logging.getLogger("lowrank.completion")

METHODS = ("robust_altmin", "altmin", "softimpute")
PRECONDITIONERS = ("gram", "sketch")
COLD_START = ("allow", "raise")


def complete_matrix(
    observed,
    rank="auto",
    *,
    mask=None,
    method="robust_altmin",
    max_iter=50,
    tol=1e-4,
    alpha="auto",
    bias="auto",
    bias_alpha=None,
    n_inner=2,
    preconditioner="gram",
    sketch_size=None,
    incoherence=None,
    svd_n_iter=2,
    shrinkage=None,
    validation_fraction=None,
    n_iter_no_change=3,
    cold_start="allow",
    rng=None,
    verbose=False,
    client=None,
):
    """Complete a partially observed matrix with a rank-``rank`` factorization ``U @ V.T``.

    Three methods share one entry point:

    * ``"robust_altmin"`` (default): alternating minimization whose per-row least-squares
      solves are approximate: ``n_inner`` preconditioned conjugate-gradient steps per row, warm
      started from the previous factor, at ``O(|Omega_i| k)`` per step and without forming any
      row's k x k Gram matrix (Gu, Song, Yin & Zhang 2023). Total work per sweep ``O(|Omega| k)``.
    * ``"altmin"``: exact alternating minimization (Jain, Netrapalli & Sanghavi 2013): each row
      solves its normal equations by Cholesky, ``O(|Omega_i| k^2 + k^3)`` per row.
    * ``"softimpute"``: nuclear-norm regularized completion by iterated soft-thresholded SVD of
      "observed entries + current estimate elsewhere" (Mazumder, Hastie & Tibshirani 2010), with
      a sparse-plus-low-rank operator, so no dense ``m x n`` matrix is ever formed.

    Both alternating methods start from the rank-``rank`` randomized SVD of the rescaled observed
    matrix ``P_Omega(M) / p`` (with ``p = |Omega| / (m n)``), clip entries of the left singular
    vectors larger than ``2 mu sqrt(rank / m)`` and re-orthonormalize (JNS13's incoherence
    clipping), then alternate ``V``-updates and ``U``-updates (one "sweep"). The theory's
    sample splitting (fresh samples per step) is an analysis device and is not done.

    Parameters
    ----------
    observed : scipy sparse array/matrix or ndarray, shape (m, n)
        The known entries: a sparse matrix's stored entries (explicit zeros included; duplicates
        summed), or a dense array with NaN where an entry is missing.
    rank : int or "auto", default="auto"
        Rank of the completion, ``0 < rank <= min(m, n)``. ``"auto"``: the smallest rank of the
        ladder ``1, 2, 3, 4, 6, 8, 12, 16, ...`` whose held-out RMSE is within 0.1% of the best one
        (held-out entries: a tenth of ``observed``; see Notes). SoftImpute: a cap of 20.
    mask : array-like or sparse of bool, shape (m, n), optional
        If given, exactly the entries where ``mask`` is true are observed (their values are read
        from ``observed``, where they must not be NaN).
    method : {"robust_altmin", "altmin", "softimpute"}, default="robust_altmin"
    max_iter : int, default=50
        Maximum number of sweeps (SoftImpute: SVD steps).
    tol : float, default=1e-4
        Stop when the relative training residual ``||P_Omega(X - M)||_F / ||P_Omega(M)||_F`` falls
        below ``tol`` or improves by less than a fraction ``tol`` in a sweep (SoftImpute: when the
        relative change of the estimate falls below ``tol``).
    alpha : float or "auto", default="auto"
        L2 regularization ``alpha (||U||_F^2 + ||V||_F^2)`` of the alternating methods (a sum over
        rows, not a mean: each row's ridge is ``alpha``). ``"auto"``: the value of lowest RMSE on a
        held-out tenth of the observed entries over ``alpha_max * (0, 1e-3, 3e-3, ..., 0.3, 1)``,
        ``alpha_max`` the top singular value of the observed residual, refined by one parabola
        step (see Notes). With SoftImpute ``alpha`` only damps the biases (``"auto"``: 0).
    bias : bool or "auto", default="auto"
        Fit a global mean, row biases and column biases with the factors:
        ``X = global_mean + row_bias[i] + col_bias[j] + U_i . V_j``. The biases are fitted jointly
        with the factors (each half-step solves for a row's factor and bias together) and are
        penalized by ``bias_alpha``. ``"auto"``: on when the observed values look like ratings,
        ``|mean| > std`` (1-5 stars: yes; centred data or planted low-rank matrices: no).
    bias_alpha : float, optional
        Ridge on the bias terms, ``bias_alpha (||row_bias||^2 + ||col_bias||^2)``; default: ``alpha``.
        A row with ``n_i`` entries thus gets ``row_bias_i = sum_j r_ij / (n_i + bias_alpha)`` of its
        residuals ``r_ij``; a row with none gets 0 (see ``cold_start``). When exactly one of ``alpha``
        and ``bias_alpha`` is 0 the biases are fitted first and held fixed.
    n_inner : int, default=2
        ``"robust_altmin"`` only: conjugate-gradient steps per row and half-sweep.
    preconditioner : {"gram", "sketch"}, default="gram"
        ``"robust_altmin"`` only. ``"gram"``: the shared ``(|Omega_i| / n) Y^T Y + alpha I``, which
        uniform sampling of an incoherent factor makes a spectral approximation of every row's
        system (``O(k^2)`` per row); ``"sketch"``: the paper's per-row preconditioner, the R factor of
        a QR of a CountSketch of the row's ``|Omega_i| x k`` block (``O(sketch_size k^2)`` per row).
    sketch_size : int, optional
        Rows of the per-row CountSketch (``preconditioner="sketch"``); default ``4 * rank``.
    incoherence : float, optional
        The incoherence ``mu`` used for clipping; default ``sqrt(2 log(m rank) / rank)``, so that
        only entries twice as large as a random orthonormal basis could have are clipped.
        ``np.inf`` disables clipping.
    svd_n_iter : int, default=2
        Power iterations of the initial randomized SVD (alternating methods) and of every
        SVD step of SoftImpute.
    shrinkage : float or "auto", optional
        SoftImpute's singular-value threshold ``lambda``; default: the largest singular value of
        ``P_Omega(M)`` divided by 50 (fancyimpute's default). ``"auto"`` (the :class:`SoftImpute`
        estimator's default): the value of lowest held-out RMSE on the warm-started path
        ``sigma_1 * (1, 0.3, 0.1, 0.03, 0.01)``; with biases and no ``bias_alpha`` the bias ridge is
        chosen first, on the biases alone.
    validation_fraction : float, optional
        Hold out this fraction of the observed entries (``0 < f < 0.5``); stop when their RMSE
        has not improved for ``n_iter_no_change`` sweeps and return the best factors.
    n_iter_no_change : int, default=3
    cold_start : {"allow", "raise"}, default="allow"
        Rows and columns without any observed entry ("cold start": a user or item with no training
        rating) get a zero factor and a zero bias, so they are predicted as ``global_mean +
        col_bias[j]`` (a new user) or ``global_mean + row_bias[i]`` (a new item). ``"raise"`` refuses
        them, as exact-recovery guarantees need every row and column observed.
    rng : None, int or numpy.random.Generator, default=None
        Seed of the initial SVD, the held-out splits and the CountSketches.
    verbose : bool, default=False
        Show a progress bar and log each sweep (logger ``lowrank.completion``).
    client : distributed.Client, optional
        Run the alternating methods on Dask: the rows of ``M`` and of ``M^T`` are split into
        blocks held by the workers; each half-step broadcasts the fixed factor. The result is
        identical to the local one for the same ``rng``. Default: the active default Dask client
        when ``distributed`` is imported and one exists (``softimpute`` always runs here), else
        everything runs here, on numba threads.

    Returns
    -------
    CompletionResult
        ``U, V = result`` with ``M ~ U @ V.T`` (plus bias terms if asked); ``predict(rows, cols)``,
        ``to_dense()``, ``history``, ``n_iter``, ``converged``, ``alpha``, ``selection`` (what
        ``"auto"`` tried), ``save(path)``.

    Raises
    ------
    ValueError
        ``rank`` out of range, NaN/inf among the observed values, a ``mask`` of the wrong shape,
        options out of range, a row or column without observed entries with ``cold_start="raise"``.
    TypeError
        Non-numeric, complex or torch input; non-integer counts.

    Notes
    -----
    ``"auto"`` rank and alpha never look outside ``observed``: a tenth of its entries is held out
    (each row and column keeps at least one fitted entry), the search runs on the rest with a few
    warm-started sweeps per candidate, and the final fit uses every entry, warm-started from the
    selected candidate. ``result.selection["path"]`` lists ``[rank, alpha, held-out RMSE]`` per
    candidate. On an exactly low-rank matrix the path ends at ``alpha = 0`` (exact recovery as with
    ``alpha=0``); on pure noise at ``alpha_max`` (everything shrunk to the biases).

    References
    ----------
    Y. Gu, Z. Song, J. Yin, L. Zhang, "Low Rank Matrix Completion via Robust Alternating
    Minimization in Nearly Linear Time", ICLR 2024, arXiv:2302.11068.
    P. Jain, P. Netrapalli, S. Sanghavi, "Low-rank Matrix Completion using Alternating
    Minimization", STOC 2013, arXiv:1212.0467.
    R. Mazumder, T. Hastie, R. Tibshirani, "Spectral Regularization Algorithms for Learning
    Large Incomplete Matrices", JMLR 11, 2010.

    Examples
    --------
    >>> from lowrank.completion import complete_matrix
    >>> from lowrank.datasets import planted_low_rank
    >>> planted = planted_low_rank(300, 200, 3, 0.3, rng=0)
    >>> result = complete_matrix(planted.observed, 3, tol=1e-10, rng=0)
    >>> U, V = result
    >>> U.shape, V.shape
    ((300, 3), (200, 3))
    >>> bool(planted.relative_error(result) < 1e-6)
    True
    """
    entries, opts = _iv(
        observed, mask, rank=rank, method=method, max_iter=max_iter, tol=tol, alpha=alpha, bias=bias,
        bias_alpha=bias_alpha, n_inner=n_inner, preconditioner=preconditioner, sketch_size=sketch_size,
        incoherence=incoherence, svd_n_iter=svd_n_iter, shrinkage=shrinkage, validation_fraction=validation_fraction,
        n_iter_no_change=n_iter_no_change, cold_start=cold_start, verbose=verbose, client=client,
    )
    return _complete(entries, opts, as_generator(rng))


def _iv(observed, mask=None, *, rank="auto", method="robust_altmin", max_iter=50, tol=1e-4, alpha="auto",
        bias="auto", bias_alpha=None, n_inner=2, preconditioner="gram", sketch_size=None, incoherence=None,
        svd_n_iter=2, shrinkage=None, validation_fraction=None, n_iter_no_change=3, cold_start="allow",
        verbose=False, client=None):
    """Check and normalize every argument; returns ``(Entries, CompletionOptions)``."""
    rows, cols, values, shape = observed_entries(observed, mask)
    entries = Entries(rows, cols, values, shape)
    rank = "auto" if isinstance(rank, str) and rank == "auto" else check_rank(rank, shape)
    method = check_choice(method, "method", METHODS)
    if isinstance(alpha, str) and alpha == "auto":
        alpha = "auto"
    else:
        alpha = check_float(alpha, "alpha", low=0.0)
    if isinstance(bias, str) and bias == "auto":
        bias = looks_like_ratings(values)
    elif not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"`bias` must be True, False or 'auto', got {bias!r}")
    if bias_alpha is not None:
        bias_alpha = check_float(bias_alpha, "bias_alpha", low=0.0)
    if sketch_size is not None:
        sketch_size = check_int(sketch_size, "sketch_size", low=1 if rank == "auto" else rank)
    if incoherence is not None:
        if isinstance(incoherence, numbers.Real) and not isinstance(incoherence, bool) and incoherence == np.inf:
            incoherence = np.inf
        else:
            incoherence = check_float(incoherence, "incoherence", low=0.0, low_inclusive=False)
    if validation_fraction is not None:
        validation_fraction = check_float(validation_fraction, "validation_fraction", low=0.0, high=0.5,
                                          low_inclusive=False, high_inclusive=False)
    if client is not None and method == "softimpute":
        raise ValueError("`client` is supported by the alternating-minimization methods only, not 'softimpute'")
    if method != "softimpute":
        from lowrank.distributed import active_client

        # client=None: an active default client (if Dask is already in use) runs the blocks
        client = active_client(client, purpose="complete_matrix")
    opts = CompletionOptions(
        rank=rank, method=method, max_iter=check_int(max_iter, "max_iter", low=1), tol=check_float(tol, "tol", low=0.0),
        alpha=alpha, bias=bool(bias), bias_alpha=bias_alpha, n_inner=check_int(n_inner, "n_inner", low=1),
        preconditioner=check_choice(preconditioner, "preconditioner", PRECONDITIONERS), sketch_size=sketch_size,
        incoherence=incoherence, svd_n_iter=check_int(svd_n_iter, "svd_n_iter", low=0),
        shrinkage=shrinkage if shrinkage is None or (isinstance(shrinkage, str) and shrinkage == "auto")
        else check_float(shrinkage, "shrinkage", low=0.0),
        validation_fraction=validation_fraction, n_iter_no_change=check_int(n_iter_no_change, "n_iter_no_change", low=1),
        cold_start=check_choice(cold_start, "cold_start", COLD_START), verbose=bool(verbose), client=client,
    )
    if opts.cold_start == "raise":
        check_coverage(rows, cols, shape)
    return entries, opts


def looks_like_ratings(values):
    """``bias="auto"``: fit biases when the observed values sit farther from zero than they spread
    (``|mean| > std``), as ratings on a 1-5 or 0.5-5 scale do, and centred data does not."""
    if values.shape[0] < 2:
        return False
    return bool(abs(float(values.mean())) > float(values.std()))


def _split_validation(rows, cols, values, shape, fraction, gen):
    """Hold out about ``fraction`` of the entries, keeping every row and column covered."""
    held = gen.random(rows.shape[0]) < fraction
    for idx, size in ((rows, shape[0]), (cols, shape[1])):
        kept = np.bincount(idx[~held], minlength=size)
        held &= kept[idx] > 0  # a row/column that lost every entry gets them back
    train = ~held
    return (rows[train], cols[train], values[train]), (rows[held], cols[held], values[held])


def _fit_biases(rows, cols, centred, shape, penalty, max_rounds=50, rtol=1e-10):
    """Ridge (``penalty``) least-squares fit of ``row_bias[i] + col_bias[j]`` to centred values by
    alternating damped means; a row or column without entries gets bias 0."""
    m, n = shape
    row_count = np.bincount(rows, minlength=m) + penalty
    col_count = np.bincount(cols, minlength=n) + penalty
    row_count[row_count == 0] = 1.0  # no entry and no penalty: the sum is 0, so is the bias
    col_count[col_count == 0] = 1.0
    row_bias = np.zeros(m)
    col_bias = np.zeros(n)
    scale = float(np.abs(centred).max()) if centred.size else 0.0
    scale = scale or 1.0
    for _ in range(max_rounds):
        row_bias = np.bincount(rows, centred - col_bias[cols], minlength=m) / row_count
        new_col = np.bincount(cols, centred - row_bias[rows], minlength=n) / col_count
        change = float(np.abs(new_col - col_bias).max())
        col_bias = new_col
        if change <= rtol * scale:
            break
    return row_bias, col_bias


def _complete(entries, opts, gen):
    # Our kernels run on every core; the small dense products (tall k-column factors) need no
    # BLAS threads, and oversubscribed OpenBLAS threads are slow on a busy machine.
    with single_threaded_blas():
        start = time.perf_counter()
        selection = None
        if opts.rank == "auto" or opts.alpha == "auto" or opts.shrinkage == "auto":
            from lowrank.completion._auto import select

            opts, selection, warm = select(entries, opts, gen)
        else:
            warm = None
        result = _fit(entries, opts, gen, start, warm=warm)
        result.selection = selection
        return result


class Problem:
    """The observed entries of one fit in both layouts, their counts, and the engine that runs the
    half-steps. With biases the layouts hold ``values - global_mean``."""

    def __init__(self, entries, opts):
        rows, cols, values, shape = entries
        self.shape = shape
        self.n_observed = rows.shape[0]
        self.global_mean = float(values.mean()) if opts.bias else 0.0
        self.row_count = np.bincount(rows, minlength=shape[0])
        self.col_count = np.bincount(cols, minlength=shape[1])
        self.centred = values - self.global_mean if opts.bias else values
        self.entries = entries
        # biases estimated once and held fixed: SoftImpute, or one of alpha/bias_alpha zero and the
        # other not (the augmented-column trick needs the ratio of two positive penalties)
        self.fixed_bias = opts.bias and (opts.method == "softimpute" or _mixed_penalties(opts))
        data = self.centred
        if self.fixed_bias:
            self.row_bias, self.col_bias = _fit_biases(rows, cols, self.centred, shape, opts.bias_penalty())
            data = self.centred - self.row_bias[rows] - self.col_bias[cols]
        row_layout, col_layout = Layout.build(rows, cols, data, shape)
        self.sides = {"rows": row_layout, "cols": col_layout}
        self.engine = DaskEngine(self.sides, opts.client) if opts.client is not None else LocalEngine(self.sides)

    def close(self):
        self.engine.close()


def centred_validation(problem, validation):
    """Held-out ``(rows, cols, values)`` on the scale the factors fit (fixed biases removed)."""
    rows, cols, values = validation
    values = values - problem.global_mean
    if problem.fixed_bias:
        values = values - problem.row_bias[rows] - problem.col_bias[cols]
    return rows, cols, values


def _mixed_penalties(opts):
    if opts.alpha == "auto":
        return False
    return (opts.alpha > 0) != (opts.bias_penalty() > 0)


class FitState:
    """Factors and biases of a (partial) fit; ``U @ V.T + row_bias[:, None] + col_bias`` fits the
    centred values."""

    def __init__(self, U, V, row_bias, col_bias, history, n_iter, converged):
        self.U, self.V, self.row_bias, self.col_bias = U, V, row_bias, col_bias
        self.history, self.n_iter, self.converged = history, n_iter, converged

    def validation_rmse(self, validation):
        return _validation_rmse(self.U, self.V, self.row_bias, self.col_bias, validation)


def _fit(entries, opts, gen, start, warm=None):
    """Fit at a concrete rank and alpha on every entry; returns the CompletionResult."""
    problem = Problem(entries, opts)
    validation = None
    try:
        if opts.method == "softimpute":
            from lowrank.completion._softimpute import soft_impute

            U, V, history, n_iter, converged = soft_impute(problem.sides, opts, gen, start)
            row_bias, col_bias = (problem.row_bias, problem.col_bias) if problem.fixed_bias else (None, None)
        else:
            if opts.validation_fraction:
                rows, cols, values, shape = entries
                fit, validation = _split_validation(rows, cols, values, shape, opts.validation_fraction, gen)
                problem.close()
                problem = Problem(Entries(*fit, shape), opts)
                validation = centred_validation(problem, validation)
            state = alternate(problem, opts, gen, start, validation=validation, warm=warm)
            U, V, history, n_iter, converged = state.U, state.V, state.history, state.n_iter, state.converged
            row_bias, col_bias = state.row_bias, state.col_bias
            if problem.fixed_bias:
                row_bias, col_bias = problem.row_bias, problem.col_bias
    finally:
        problem.close()
    U, V = balance_factors(U, V)
    return CompletionResult(U, V, global_mean=problem.global_mean, row_bias=row_bias, col_bias=col_bias,
                            history=history, n_iter=n_iter, converged=converged, method=opts.method,
                            alpha=opts.alpha, bias_alpha=opts.bias_penalty() if opts.bias else None)


def balance_factors(U, V):
    """Rewrite ``U @ V.T`` as ``(P sqrt(S)) (Q sqrt(S))^T`` from its SVD, with svd_flip signs."""
    Qu, Ru = np.linalg.qr(U)
    Qv, Rv = np.linalg.qr(V)
    W, s, Zt = scipy.linalg.svd(Ru @ Rv.T)
    root = np.sqrt(s)
    left, right_t = svd_flip(Qu @ W, Zt @ Qv.T)
    return np.ascontiguousarray(left * root), np.ascontiguousarray(right_t.T * root)


def residual_operator(problem, row_bias, col_bias, scale=1.0):
    """``scale * P_Omega(M - biases)`` as a LinearOperator over the engine's blocks."""
    engine = problem.engine
    joint = row_bias is not None and not problem.fixed_bias
    own_r, other_r = (row_bias, col_bias) if joint else (None, None)

    def matmat(B):
        return scale * engine.matmat("rows", B, own=own_r, other=other_r)

    def rmatmat(B):
        return scale * engine.matmat("cols", B, own=other_r, other=own_r)

    return LinearOperator(
        problem.shape,
        matvec=lambda x: matmat(np.reshape(x, (-1, 1)))[:, 0],
        rmatvec=lambda x: rmatmat(np.reshape(x, (-1, 1)))[:, 0],
        matmat=matmat,
        rmatmat=rmatmat,
        dtype=np.float64,
    )


def _initial_factors(problem, opts, gen, row_bias, col_bias):
    """Randomized SVD of ``P_Omega(M - biases) / p``, incoherence clipping (JNS13), and the matching ``V``."""
    m, n = problem.shape
    scale = m * n / problem.n_observed
    op = residual_operator(problem, row_bias, col_bias, scale)
    U, s, Vh = randomized_svd(op, opts.rank, n_iter=opts.svd_n_iter, rng=gen)
    threshold = 2.0 * opts.mu(m) * np.sqrt(opts.rank / m)
    large = np.abs(U) > threshold
    if not large.any():
        return np.ascontiguousarray(U), np.ascontiguousarray(Vh.T * s)
    logger.info("incoherence clipping: %d entries of the initial U above %.3g set to 0", large.sum(), threshold)
    U, _ = np.linalg.qr(np.where(large, 0.0, U))
    U = np.ascontiguousarray(U)
    V = np.ascontiguousarray(op.rmatmat(U))  # the least-squares V in expectation
    return U, V


def _half_step_params(Y, opts, n_total, seed):
    params = {"robust": opts.method == "robust_altmin", "alpha": opts.alpha, "n_inner": opts.n_inner,
              "use_sketch": opts.preconditioner == "sketch", "n_total": float(n_total),
              "sketch_rows": opts.sketch_rows(), "seed": np.uint64(seed % 2**64)}
    k = Y.shape[1]
    if params["robust"] and not params["use_sketch"]:
        lam, Q = np.linalg.eigh(Y.T @ Y)
        params["lam"], params["Q"] = np.maximum(lam, 0.0), np.ascontiguousarray(Q)
    else:
        params["lam"], params["Q"] = np.zeros(k), np.zeros((k, k))
    return params


def bias_column(alpha, bias_alpha=None):
    """Scale ``c`` of the constant column that carries the biases through the ridge solves:
    a ridge ``alpha`` on ``b / c`` is a ridge ``alpha / c**2 = bias_alpha`` on ``b``."""
    beta = alpha if bias_alpha is None else bias_alpha
    return 1.0 if alpha == 0.0 or beta == 0.0 else float(np.sqrt(alpha / beta))


def _half_step(problem, side, Y, X, own_bias, other_bias, opts, n_total, seed, c):
    """Update ``X`` (and ``own_bias`` with joint biases) in place; returns the squared residuals."""
    if own_bias is None:
        return problem.engine.solve(side, Y, X, _half_step_params(Y, opts, n_total, seed))
    k = X.shape[1]
    Y_aug = np.hstack([Y, np.full((Y.shape[0], 1), c)])
    X_aug = np.hstack([X, own_bias[:, None] / c])
    resid2 = problem.engine.solve(side, Y_aug, X_aug, _half_step_params(Y_aug, opts, n_total, seed), other=other_bias)
    X[:] = X_aug[:, :k]
    own_bias[:] = c * X_aug[:, k]
    return resid2


def alternate(problem, opts, gen, start, *, validation=None, warm=None, max_iter=None, tol=None, log_sweeps=True):
    """Alternating minimization on ``problem`` at ``opts.rank`` / ``opts.alpha`` (concrete);
    ``warm``: a FitState of the same rank to start from. Returns a FitState."""
    m, n = problem.shape
    max_iter = opts.max_iter if max_iter is None else max_iter
    tol = opts.tol if tol is None else tol
    joint = opts.bias and not problem.fixed_bias
    row_empty, col_empty = problem.row_count == 0, problem.col_count == 0
    if warm is not None and warm.U.shape[1] == opts.rank:
        U, V = warm.U.copy(), warm.V.copy()
        row_bias, col_bias = (warm.row_bias.copy(), warm.col_bias.copy()) if joint else (None, None)
    else:
        row_bias, col_bias = None, None
        if joint:
            r, c_, _, shape = problem.entries
            row_bias, col_bias = _fit_biases(r, c_, problem.centred, shape, opts.bias_penalty())
        U, V = _initial_factors(problem, opts, gen, row_bias, col_bias)
    U[row_empty], V[col_empty] = 0.0, 0.0
    c = bias_column(opts.alpha, opts.bias_alpha) if joint else 1.0
    seed = int(gen.integers(0, 2**62))
    norm_b = float(np.sqrt(problem.sides["rows"].data @ problem.sides["rows"].data)) or 1.0
    history = {"train_rmse": [], "validation_rmse": [], "seconds": []}
    best, best_val, stale = None, np.inf, 0
    previous, converged, sweep = np.inf, False, 0
    bar = progress(total=max_iter, desc=opts.method, verbose=opts.verbose, unit="sweep")
    for sweep in range(1, max_iter + 1):
        _half_step(problem, "cols", U, V, col_bias, row_bias, opts, m, seed + 2 * sweep, c)
        resid2 = _half_step(problem, "rows", V, U, row_bias, col_bias, opts, n, seed + 2 * sweep + 1, c)
        residual = float(np.sqrt(resid2.sum()))
        history["train_rmse"].append(residual / np.sqrt(problem.n_observed))
        relative = residual / norm_b
        if validation is not None:
            history["validation_rmse"].append(_validation_rmse(U, V, row_bias, col_bias, validation))
        history["seconds"].append(time.perf_counter() - start)
        bar.update(1)
        bar.set_postfix(rel_residual=f"{relative:.2e}")
        if log_sweeps:
            logger.debug("sweep %d: relative training residual %.3e", sweep, relative)
        if validation is not None:
            if history["validation_rmse"][-1] < best_val:
                best_val, stale = history["validation_rmse"][-1], 0
                best = (U.copy(), V.copy(), None if row_bias is None else row_bias.copy(),
                        None if col_bias is None else col_bias.copy(), sweep)
            else:
                stale += 1
                if stale >= opts.n_iter_no_change:
                    converged = True
                    break
        if relative <= tol or (np.isfinite(previous) and previous - relative <= tol * previous):
            converged = True
            break
        previous = relative
    bar.close()
    if best is not None and best[4] != sweep:
        U, V, row_bias, col_bias, _ = best
    U[row_empty], V[col_empty] = 0.0, 0.0
    if joint:
        row_bias[row_empty], col_bias[col_empty] = 0.0, 0.0
    return FitState(U, V, row_bias, col_bias, history, sweep, converged)


def _validation_rmse(U, V, row_bias, col_bias, validation):
    from lowrank.completion._kernels import pair_values

    rows, cols, values = validation
    if rows.shape[0] == 0:
        return float("nan")
    out = pair_values(rows, cols, U, V)
    if row_bias is not None:
        out += row_bias[rows] + col_bias[cols]
    return float(np.sqrt(np.mean((out - values) ** 2)))
