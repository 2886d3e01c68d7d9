"""``complete_matrix``: alternating minimization (exact and robust) and SoftImpute on observed entries."""

import logging
import numbers
import time

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import LinearOperator
from threadpoolctl import threadpool_limits

from lowrank._utils.progress import progress
from lowrank._utils.rng import as_generator
from lowrank._utils.validation import check_choice, check_float, check_int, check_rank
from lowrank.completion._engine import DaskEngine, LocalEngine
from lowrank.completion._input import Layout, check_coverage, observed_entries
from lowrank.completion._result import CompletionResult
from lowrank.linalg import randomized_svd, svd_flip

logger = logging.getLogger("lowrank.completion")

METHODS = ("robust_altmin", "altmin", "softimpute")
PRECONDITIONERS = ("gram", "sketch")


def complete_matrix(
    observed,
    rank,
    *,
    mask=None,
    method="robust_altmin",
    max_iter=50,
    tol=1e-5,
    alpha=0.0,
    bias=False,
    n_inner=2,
    preconditioner="gram",
    sketch_size=None,
    incoherence=None,
    svd_n_iter=2,
    shrinkage=None,
    validation_fraction=None,
    n_iter_no_change=3,
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
    rank : int
        Rank of the completion, ``0 < rank <= min(m, n)``.
    mask : array-like or sparse of bool, shape (m, n), optional
        If given, exactly the entries where ``mask`` is true are observed (their values are read
        from ``observed``, where they must not be NaN).
    method : {"robust_altmin", "altmin", "softimpute"}, default="robust_altmin"
    max_iter : int, default=50
        Maximum number of sweeps (SoftImpute: SVD steps).
    tol : float, default=1e-5
        Stop when the relative training residual ``||P_Omega(X - M)||_F / ||P_Omega(M)||_F`` falls
        below ``tol`` or improves by less than a fraction ``tol`` in a sweep (SoftImpute: when the
        relative change of the estimate falls below ``tol``).
    alpha : float, default=0.0
        L2 regularization ``alpha (||U||_F^2 + ||V||_F^2)`` for the alternating methods (also damps
        the bias estimates).
    bias : bool, default=False
        Fit a global mean, row biases and column biases first (alternating damped means) and
        complete the remainder; useful for ratings.
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
    shrinkage : float, optional
        SoftImpute's singular-value threshold ``lambda``; default: the largest singular value of
        ``P_Omega(M)`` divided by 50 (fancyimpute's default).
    validation_fraction : float, optional
        Hold out this fraction of the observed entries (``0 < f < 0.5``); stop when their RMSE
        has not improved for ``n_iter_no_change`` sweeps and return the best factors.
    n_iter_no_change : int, default=3
    rng : None, int or numpy.random.Generator, default=None
        Seed of the initial SVD, the held-out split and the CountSketches.
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
        ``to_dense()``, ``history``, ``n_iter``, ``converged``, ``save(path)``.

    Raises
    ------
    ValueError
        ``rank`` out of range, a row or column without observed entries, NaN/inf among the
        observed values, a ``mask`` of the wrong shape, options out of range.
    TypeError
        Non-numeric, complex or torch input; non-integer counts.

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
    opts = _iv(
        observed, rank, mask, method, max_iter, tol, alpha, bias, n_inner, preconditioner, sketch_size,
        incoherence, svd_n_iter, shrinkage, validation_fraction, n_iter_no_change, verbose, client,
    )
    return _complete(opts, as_generator(rng))


def _iv(observed, rank, mask, method, max_iter, tol, alpha, bias, n_inner, preconditioner, sketch_size, incoherence,
        svd_n_iter, shrinkage, validation_fraction, n_iter_no_change, verbose, client):
    rows, cols, values, shape = observed_entries(observed, mask)
    opts = {"rows": rows, "cols": cols, "values": values, "shape": shape}
    opts["rank"] = check_rank(rank, shape)
    opts["method"] = check_choice(method, "method", METHODS)
    opts["max_iter"] = check_int(max_iter, "max_iter", low=1)
    opts["tol"] = check_float(tol, "tol", low=0.0)
    opts["alpha"] = check_float(alpha, "alpha", low=0.0)
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"`bias` must be True or False, got {bias!r}")
    opts["bias"] = bool(bias)
    opts["n_inner"] = check_int(n_inner, "n_inner", low=1)
    opts["preconditioner"] = check_choice(preconditioner, "preconditioner", PRECONDITIONERS)
    if sketch_size is None:
        opts["sketch_size"] = 4 * opts["rank"]
    else:
        opts["sketch_size"] = check_int(sketch_size, "sketch_size", low=opts["rank"])
    if incoherence is None:
        m = shape[0]
        opts["incoherence"] = float(np.sqrt(2.0 * np.log(max(m * opts["rank"], 2)) / opts["rank"]))
    elif isinstance(incoherence, numbers.Real) and not isinstance(incoherence, bool) and incoherence == np.inf:
        opts["incoherence"] = np.inf
    else:
        opts["incoherence"] = check_float(incoherence, "incoherence", low=0.0, low_inclusive=False)
    opts["svd_n_iter"] = check_int(svd_n_iter, "svd_n_iter", low=0)
    opts["shrinkage"] = None if shrinkage is None else check_float(shrinkage, "shrinkage", low=0.0)
    if validation_fraction is not None:
        validation_fraction = check_float(validation_fraction, "validation_fraction", low=0.0, high=0.5,
                                          low_inclusive=False, high_inclusive=False)
    opts["validation_fraction"] = validation_fraction
    opts["n_iter_no_change"] = check_int(n_iter_no_change, "n_iter_no_change", low=1)
    opts["verbose"] = bool(verbose)
    if client is not None and opts["method"] == "softimpute":
        raise ValueError("`client` is supported by the alternating-minimization methods only, not 'softimpute'")
    if opts["method"] != "softimpute":
        from lowrank.distributed import active_client

        # client=None: an active default client (if Dask is already in use) runs the blocks
        client = active_client(client, purpose="complete_matrix")
    opts["client"] = client
    check_coverage(rows, cols, shape)
    return opts


def _split_validation(rows, cols, values, shape, fraction, gen):
    """Hold out about ``fraction`` of the entries, keeping every row and column covered."""
    held = gen.random(rows.shape[0]) < fraction
    for idx, size in ((rows, shape[0]), (cols, shape[1])):
        kept = np.bincount(idx[~held], minlength=size)
        held &= kept[idx] > 0  # a row/column that lost every entry gets them back
    train = ~held
    return (rows[train], cols[train], values[train]), (rows[held], cols[held], values[held])


def _fit_biases(rows, cols, values, shape, alpha, max_rounds=50, rtol=1e-10):
    """Least-squares (ridge ``alpha``) fit of ``mean + row_bias[i] + col_bias[j]`` by alternating means."""
    m, n = shape
    mean = float(values.mean())
    row_count = np.bincount(rows, minlength=m) + alpha
    col_count = np.bincount(cols, minlength=n) + alpha
    row_bias = np.zeros(m)
    col_bias = np.zeros(n)
    scale = float(np.abs(values - mean).max()) or 1.0
    for _ in range(max_rounds):
        row_bias = np.bincount(rows, values - mean - col_bias[cols], minlength=m) / row_count
        new_col = np.bincount(cols, values - mean - row_bias[rows], minlength=n) / col_count
        change = float(np.abs(new_col - col_bias).max())
        col_bias = new_col
        if change <= rtol * scale:
            break
    return mean, row_bias, col_bias


def _complete(opts, gen):
    # Our kernels run on every core; the small dense products (tall k-column factors) need no
    # BLAS threads, and oversubscribed OpenBLAS threads are slow on a busy machine.
    with threadpool_limits(limits=1, user_api="blas"):
        return _complete_body(opts, gen)


def _complete_body(opts, gen):
    start = time.perf_counter()
    rows, cols, values, shape = opts["rows"], opts["cols"], opts["values"], opts["shape"]
    validation = None
    if opts["validation_fraction"]:
        fraction = opts["validation_fraction"]
        (rows, cols, values), validation = _split_validation(rows, cols, values, shape, fraction, gen)
    mean, row_bias, col_bias = 0.0, np.zeros(shape[0]), np.zeros(shape[1])
    if opts["bias"]:
        mean, row_bias, col_bias = _fit_biases(rows, cols, values, shape, opts["alpha"])
        values = values - mean - row_bias[rows] - col_bias[cols]
    row_layout, col_layout = Layout.build(rows, cols, values, shape)
    sides = {"rows": row_layout, "cols": col_layout}
    if validation is not None:
        v_rows, v_cols, v_values = validation
        validation = (v_rows, v_cols, v_values - mean - row_bias[v_rows] - col_bias[v_cols])
    engine = DaskEngine(sides, opts["client"]) if opts["client"] is not None else LocalEngine(sides)
    try:
        if opts["method"] == "softimpute":
            from lowrank.completion._softimpute import soft_impute

            U, V, history, n_iter, converged = soft_impute(sides, opts, gen, start)
        else:
            U, V, history, n_iter, converged = _alternating_minimization(engine, sides, opts, validation, gen, start)
    finally:
        engine.close()
    U, V = balance_factors(U, V)
    return CompletionResult(U, V, global_mean=mean, row_bias=row_bias, col_bias=col_bias, history=history,
                            n_iter=n_iter, converged=converged, method=opts["method"])


def balance_factors(U, V):
    """Rewrite ``U @ V.T`` as ``(P sqrt(S)) (Q sqrt(S))^T`` from its SVD, with svd_flip signs."""
    Qu, Ru = np.linalg.qr(U)
    Qv, Rv = np.linalg.qr(V)
    W, s, Zt = scipy.linalg.svd(Ru @ Rv.T)
    root = np.sqrt(s)
    left, right_t = svd_flip(Qu @ W, Zt @ Qv.T)
    return np.ascontiguousarray(left * root), np.ascontiguousarray(right_t.T * root)


def _initial_factors(engine, shape, n_observed, opts, gen):
    """Randomized SVD of ``P_Omega(M) / p``, incoherence clipping (JNS13), and the matching ``V``."""
    m, n = shape
    scale = m * n / n_observed
    op = LinearOperator(
        (m, n),
        matvec=lambda x: scale * engine.matmat("rows", np.reshape(x, (-1, 1)))[:, 0],
        rmatvec=lambda x: scale * engine.matmat("cols", np.reshape(x, (-1, 1)))[:, 0],
        matmat=lambda B: scale * engine.matmat("rows", B),
        rmatmat=lambda B: scale * engine.matmat("cols", B),
        dtype=np.float64,
    )
    U, s, Vh = randomized_svd(op, opts["rank"], n_iter=opts["svd_n_iter"], rng=gen)
    threshold = 2.0 * opts["incoherence"] * np.sqrt(opts["rank"] / m)
    large = np.abs(U) > threshold
    if not large.any():
        return np.ascontiguousarray(U), np.ascontiguousarray(Vh.T * s)
    logger.info("incoherence clipping: %d entries of the initial U above %.3g set to 0", large.sum(), threshold)
    U, _ = np.linalg.qr(np.where(large, 0.0, U))
    U = np.ascontiguousarray(U)
    V = np.ascontiguousarray(scale * engine.matmat("cols", U))  # the least-squares V in expectation
    return U, V


def _half_step_params(Y, opts, n_total, seed):
    params = {"robust": opts["method"] == "robust_altmin", "alpha": opts["alpha"], "n_inner": opts["n_inner"],
              "use_sketch": opts["preconditioner"] == "sketch", "n_total": float(n_total),
              "sketch_rows": opts["sketch_size"], "seed": np.uint64(seed % 2**64)}
    k = Y.shape[1]
    if params["robust"] and not params["use_sketch"]:
        lam, Q = np.linalg.eigh(Y.T @ Y)
        params["lam"], params["Q"] = np.maximum(lam, 0.0), np.ascontiguousarray(Q)
    else:
        params["lam"], params["Q"] = np.zeros(k), np.zeros((k, k))
    return params


def _alternating_minimization(engine, sides, opts, validation, gen, start):
    m, n = opts["shape"]
    n_observed = sides["rows"].data.shape[0]
    U, V = _initial_factors(engine, (m, n), n_observed, opts, gen)
    seed = int(gen.integers(0, 2**62))
    norm_b = float(np.sqrt(sides["rows"].data @ sides["rows"].data)) or 1.0
    history = {"train_rmse": [], "validation_rmse": [], "seconds": []}
    best, best_val, stale = None, np.inf, 0
    previous, converged, sweep = np.inf, False, 0
    bar = progress(total=opts["max_iter"], desc=opts["method"], verbose=opts["verbose"], unit="sweep")
    for sweep in range(1, opts["max_iter"] + 1):
        engine.solve("cols", U, V, _half_step_params(U, opts, m, seed + 2 * sweep))
        resid2 = engine.solve("rows", V, U, _half_step_params(V, opts, n, seed + 2 * sweep + 1))
        residual = float(np.sqrt(resid2.sum()))
        history["train_rmse"].append(residual / np.sqrt(n_observed))
        relative = residual / norm_b
        if validation is not None:
            history["validation_rmse"].append(_validation_rmse(U, V, validation))
        history["seconds"].append(time.perf_counter() - start)
        bar.update(1)
        bar.set_postfix(rel_residual=f"{relative:.2e}")
        logger.debug("sweep %d: relative training residual %.3e", sweep, relative)
        if validation is not None:
            if history["validation_rmse"][-1] < best_val:
                best_val, best, stale = history["validation_rmse"][-1], (U.copy(), V.copy(), sweep), 0
            else:
                stale += 1
                if stale >= opts["n_iter_no_change"]:
                    converged = True
                    break
        if relative <= opts["tol"] or (np.isfinite(previous) and previous - relative <= opts["tol"] * previous):
            converged = True
            break
        previous = relative
    bar.close()
    n_iter = sweep
    if best is not None and best[2] != sweep:
        U, V, _ = best
    return U, V, history, n_iter, converged


def _validation_rmse(U, V, validation):
    from lowrank.completion._kernels import pair_values

    rows, cols, values = validation
    if rows.shape[0] == 0:
        return float("nan")
    out = pair_values(rows, cols, U, V)
    return float(np.sqrt(np.mean((out - values) ** 2)))
