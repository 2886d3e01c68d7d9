"""scikit-learn estimators for matrix completion: ``RobustAltMin``, ``AltMin``, ``SoftImpute``.

``fit(X)`` completes ``X`` (dense with NaN for missing entries, or sparse whose stored entries are
the observed ones). ``transform(X)`` fills the missing entries of any matrix with the same
columns: each row's factor is fitted to its observed entries against the learned column factors
("fold-in", an exact ridge solve per row), so it works for new rows too.
"""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from lowrank._utils.rng import as_generator
from lowrank._utils.validation import validate_data
from lowrank.completion import _kernels
from lowrank.completion._complete import _complete, _iv, bias_column
from lowrank.completion._engine import single_threaded_blas
from lowrank.completion._input import observed_entries

_PREDICT_IS_FILL = (
    "predict(X) with one matrix argument returns the filled matrix (as transform does), not one value per "
    "sample, so sklearn's sparse-input check, which expects shape (n_samples,), fails on the shape"
)


class _CompletionEstimator(TransformerMixin, BaseEstimator):
    """Shared fit/transform/predict/score of the completion estimators."""

    _method = None
    _sklearn_expected_failed_checks = {
        "check_estimator_sparse_array": _PREDICT_IS_FILL,
        "check_estimator_sparse_matrix": _PREDICT_IS_FILL,
    }

    def _options(self):
        raise NotImplementedError

    def fit(self, X, y=None):
        """Complete ``X`` (n_samples, n_features): NaN (dense) or absent (sparse) entries are missing.

        Returns
        -------
        self
        """
        self._fit(X)
        return self

    def _fit(self, X):
        X = validate_data(self, X, accept_sparse=("csr", "csc", "coo"), ensure_all_finite="allow-nan",
                          dtype=(np.float64, np.float32))
        entries, opts = _iv(X, None, client=None, **self._options())
        gen = as_generator(self.random_state, name="random_state")
        result = _complete(entries, opts, gen)
        self.result_ = result
        self.row_factors_ = result.U
        self.components_ = result.V.T
        self.n_iter_ = result.n_iter
        self.history_ = result.history
        return X

    def fit_transform(self, X, y=None):
        """Fit, then return ``X`` with its missing entries filled from the fitted factors (dense)."""
        X = self._fit(X)
        filled = self.result_.to_dense()
        rows, cols, values, _ = observed_entries(X, name="X")
        filled[rows, cols] = values
        return filled

    def transform(self, X):
        """Return ``X`` (dense) with missing entries filled by fold-in against the fitted column factors.

        Each row ``x`` gets ``(u, b) = argmin ||x_obs - mean - col_bias_obs - b - V_obs u||^2 + alpha ||u||^2
        + bias_alpha b^2`` (the fitted penalties; ``b`` only with biases), an exact ridge solve; rows
        without observed entries (new users with no rating) get ``mean + col_bias``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=("csr", "csc", "coo"), ensure_all_finite="allow-nan",
                          dtype=(np.float64, np.float32), reset=False)
        rows, cols, values, _ = observed_entries(X, name="X", allow_empty=True)
        result = self.result_
        n_samples = X.shape[0]
        V = result.V
        alpha = result.alpha or 0.0
        bias = bool(result.row_bias.any() or result.col_bias.any() or result.global_mean != 0.0)
        c = 1.0
        if bias:
            # the bias rides on a constant column c: a ridge alpha on b / c is bias_alpha on b
            c = bias_column(alpha, result.bias_alpha)
            V = np.hstack([V, np.full((V.shape[0], 1), c)])
        resid = values - result.global_mean - result.col_bias[cols]
        indptr = np.zeros(n_samples + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_samples), out=indptr[1:])
        factors = np.zeros((n_samples, V.shape[1]))
        resid2 = np.empty(n_samples)
        with single_threaded_blas():  # the row kernels already use every core
            _kernels.run_rows(_kernels.solve_rows_exact, indptr, indptr, cols.astype(np.int64), resid,
                              np.ascontiguousarray(V), factors, float(alpha), resid2)
        filled = factors @ V.T + result.global_mean + result.col_bias[None, :]
        filled[rows, cols] = values
        return filled

    def predict(self, rows, cols=None):
        """Completed values of the fitted matrix at index pairs ``(rows[t], cols[t])``.

        ``predict(X)`` with a single matrix argument is ``transform(X)`` (the filled matrix), as
        scikit-learn's generic tools call it.
        """
        check_is_fitted(self)
        if cols is None:
            return self.transform(rows)
        return self.result_.predict(rows, cols)

    def score(self, X, y=None):
        """Negative RMSE of the fitted completion on the observed entries of ``X`` (e.g. held-out
        entries of the fitted matrix; ``X`` must have the fitted shape)."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=("csr", "csc", "coo"), ensure_all_finite="allow-nan",
                          dtype=(np.float64, np.float32), reset=False)
        if X.shape[0] != self.result_.shape[0]:
            raise ValueError(f"`X` must have the fitted shape {self.result_.shape}, got {X.shape}")
        rows, cols, values, _ = observed_entries(X, name="X", allow_empty=True)
        if rows.shape[0] == 0:
            raise ValueError("`X` has no observed entry to score")
        return -float(np.sqrt(np.mean((self.result_.predict(rows, cols) - values) ** 2)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags


class RobustAltMin(_CompletionEstimator):
    """Matrix completion by robust alternating minimization (approximate per-row solves).

    Each half-sweep updates every row of one factor by ``n_inner`` preconditioned
    conjugate-gradient steps warm-started at its previous value, ``O(|Omega| k)`` per sweep,
    never forming a row's k x k Gram matrix. See :func:`complete_matrix` for the algorithm and
    every parameter.

    Parameters
    ----------
    rank : int or "auto", default="auto"
        ``"auto"``: chosen on held-out entries of ``X`` (see :func:`complete_matrix`).
    alpha : float or "auto", default="auto"
        L2 regularization of both factors; ``"auto"``: chosen on held-out entries of ``X``.
    bias : bool or "auto", default="auto"
        Fit global, row and column biases with the factors; ``"auto"``: when ``X`` looks like
        ratings (``|mean| > std`` of its observed entries).
    bias_alpha : float, optional
        Ridge on the biases; default ``alpha`` (with ``alpha="auto"``: chosen with it).
    cold_start : {"allow", "raise"}, default="allow"
        Rows/columns of ``X`` without observed entries are predicted from the biases.
    max_iter : int, default=50
    tol : float, default=1e-4
    n_inner : int, default=2
    preconditioner : {"gram", "sketch"}, default="gram"
    sketch_size : int, optional
    incoherence : float, optional
    svd_n_iter : int, default=2
    validation_fraction : float, optional
    n_iter_no_change : int, default=3
    random_state : None, int, Generator or RandomState, default=None
    verbose : bool, default=False

    Attributes
    ----------
    result_ : CompletionResult
        The fitted completion (``U, V = result_``).
    row_factors_ : ndarray of shape (n_samples, rank)
    components_ : ndarray of shape (rank, n_features)
        Column factors, transposed.
    n_iter_ : int
    history_ : dict
    n_features_in_ : int

    References
    ----------
    Y. Gu, Z. Song, J. Yin, L. Zhang, "Low Rank Matrix Completion via Robust Alternating
    Minimization in Nearly Linear Time", ICLR 2024, arXiv:2302.11068.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.completion import RobustAltMin
    >>> rng = np.random.default_rng(0)
    >>> M = rng.standard_normal((60, 2)) @ rng.standard_normal((2, 40))
    >>> X = np.where(rng.random(M.shape) < 0.5, M, np.nan)
    >>> filled = RobustAltMin(rank=2, tol=1e-10, random_state=0).fit_transform(X)
    >>> bool(np.allclose(filled, M, atol=1e-6))
    True
    """

    _method = "robust_altmin"

    def __init__(self, rank="auto", *, alpha="auto", bias="auto", bias_alpha=None, cold_start="allow", max_iter=50,
                 tol=1e-4, n_inner=2, preconditioner="gram", sketch_size=None, incoherence=None, svd_n_iter=2,
                 validation_fraction=None, n_iter_no_change=3, random_state=None, verbose=False):
        self.rank = rank
        self.alpha = alpha
        self.bias = bias
        self.bias_alpha = bias_alpha
        self.cold_start = cold_start
        self.max_iter = max_iter
        self.tol = tol
        self.n_inner = n_inner
        self.preconditioner = preconditioner
        self.sketch_size = sketch_size
        self.incoherence = incoherence
        self.svd_n_iter = svd_n_iter
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose

    def _options(self):
        return dict(rank=self.rank, method=self._method, max_iter=self.max_iter, tol=self.tol, alpha=self.alpha,
                    bias=self.bias, bias_alpha=self.bias_alpha, cold_start=self.cold_start, n_inner=self.n_inner,
                    preconditioner=self.preconditioner, sketch_size=self.sketch_size, incoherence=self.incoherence,
                    svd_n_iter=self.svd_n_iter, validation_fraction=self.validation_fraction,
                    n_iter_no_change=self.n_iter_no_change, verbose=self.verbose)


class AltMin(_CompletionEstimator):
    """Matrix completion by exact alternating minimization (Jain, Netrapalli & Sanghavi 2013).

    Each half-sweep solves every row's least-squares problem exactly (normal equations and
    Cholesky, ``O(|Omega_i| k^2 + k^3)`` per row). See :func:`complete_matrix`.

    Parameters
    ----------
    rank : int or "auto", default="auto"
    alpha : float or "auto", default="auto"
    bias : bool or "auto", default="auto"
    bias_alpha : float, optional
    cold_start : {"allow", "raise"}, default="allow"
    max_iter : int, default=50
    tol : float, default=1e-4
    incoherence : float, optional
    svd_n_iter : int, default=2
    validation_fraction : float, optional
    n_iter_no_change : int, default=3
    random_state : None, int, Generator or RandomState, default=None
    verbose : bool, default=False

    Attributes
    ----------
    result_ : CompletionResult
    row_factors_ : ndarray of shape (n_samples, rank)
    components_ : ndarray of shape (rank, n_features)
    n_iter_ : int
    history_ : dict
    n_features_in_ : int

    References
    ----------
    P. Jain, P. Netrapalli, S. Sanghavi, "Low-rank Matrix Completion using Alternating
    Minimization", STOC 2013, arXiv:1212.0467.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.completion import AltMin
    >>> rng = np.random.default_rng(0)
    >>> M = rng.standard_normal((60, 2)) @ rng.standard_normal((2, 40))
    >>> X = np.where(rng.random(M.shape) < 0.5, M, np.nan)
    >>> est = AltMin(rank=2, tol=1e-10, random_state=0).fit(X)
    >>> bool(abs(est.predict([0], [1])[0] - M[0, 1]) < 1e-6)
    True
    """

    _method = "altmin"

    def __init__(self, rank="auto", *, alpha="auto", bias="auto", bias_alpha=None, cold_start="allow", max_iter=50,
                 tol=1e-4, incoherence=None, svd_n_iter=2, validation_fraction=None, n_iter_no_change=3,
                 random_state=None, verbose=False):
        self.rank = rank
        self.alpha = alpha
        self.bias = bias
        self.bias_alpha = bias_alpha
        self.cold_start = cold_start
        self.max_iter = max_iter
        self.tol = tol
        self.incoherence = incoherence
        self.svd_n_iter = svd_n_iter
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose

    def _options(self):
        return dict(rank=self.rank, method=self._method, max_iter=self.max_iter, tol=self.tol, alpha=self.alpha,
                    bias=self.bias, bias_alpha=self.bias_alpha, cold_start=self.cold_start,
                    incoherence=self.incoherence, svd_n_iter=self.svd_n_iter,
                    validation_fraction=self.validation_fraction, n_iter_no_change=self.n_iter_no_change,
                    verbose=self.verbose)


class SoftImpute(_CompletionEstimator):
    """Nuclear-norm regularized completion by iterated soft-thresholded SVD (Mazumder, Hastie &
    Tibshirani 2010), on a sparse-plus-low-rank operator (no dense m x n matrix).

    Parameters
    ----------
    rank : int or "auto", default="auto"
        Largest rank kept at each SVD step (``"auto"``: ``min(20, min(X.shape))``).
    shrinkage : float or "auto", default="auto"
        Singular-value threshold; ``"auto"``: chosen on held-out entries of ``X`` over a
        warm-started path (see :func:`complete_matrix`); None: the largest singular value of the
        observed matrix / 50 (fancyimpute's default).
    bias : bool or "auto", default="auto"
        Biases fitted first (damped by ``bias_alpha``) and held fixed.
    bias_alpha : float, optional
        Ridge on the biases (default: chosen on held-out entries with ``shrinkage="auto"``, else 0).
    cold_start : {"allow", "raise"}, default="allow"
    max_iter : int, default=100
    tol : float, default=1e-5
        Stop when the relative change of the estimate falls below ``tol``.
    svd_n_iter : int, default=2
    random_state : None, int, Generator or RandomState, default=None
    verbose : bool, default=False

    Attributes
    ----------
    result_ : CompletionResult
    row_factors_ : ndarray of shape (n_samples, rank)
    components_ : ndarray of shape (rank, n_features)
    n_iter_ : int
    history_ : dict
    n_features_in_ : int

    References
    ----------
    R. Mazumder, T. Hastie, R. Tibshirani, "Spectral Regularization Algorithms for Learning
    Large Incomplete Matrices", JMLR 11, 2010.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.completion import SoftImpute
    >>> rng = np.random.default_rng(0)
    >>> M = rng.standard_normal((60, 2)) @ rng.standard_normal((2, 40))
    >>> X = np.where(rng.random(M.shape) < 0.5, M, np.nan)
    >>> filled = SoftImpute(rank=2, shrinkage=0.1, random_state=0).fit_transform(X)
    >>> bool(np.linalg.norm(filled - M) / np.linalg.norm(M) < 0.05)
    True
    """

    _method = "softimpute"

    def __init__(self, rank="auto", *, shrinkage="auto", bias="auto", bias_alpha=None, cold_start="allow", max_iter=100,
                 tol=1e-5, svd_n_iter=2, random_state=None, verbose=False):
        self.rank = rank
        self.shrinkage = shrinkage
        self.bias = bias
        self.bias_alpha = bias_alpha
        self.cold_start = cold_start
        self.max_iter = max_iter
        self.tol = tol
        self.svd_n_iter = svd_n_iter
        self.random_state = random_state
        self.verbose = verbose

    def _options(self):
        return dict(rank=self.rank, method=self._method, max_iter=self.max_iter, tol=self.tol, alpha=0.0,
                    bias=self.bias, bias_alpha=self.bias_alpha, cold_start=self.cold_start,
                    svd_n_iter=self.svd_n_iter, shrinkage=self.shrinkage, verbose=self.verbose)
