"""An sklearn estimator for rank-k approximation on top of the core routines."""

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from lowrank._utils.rng import as_generator
from lowrank._utils.validation import check_choice, check_int, validate_data
from lowrank.linalg._cur import _select_columns
from lowrank.linalg._randomized_svd import _check_options, _randomized_svd_numpy, svd_flip


class LowRankApproximation(TransformerMixin, BaseEstimator):
    """Project data onto a rank-``rank`` subspace found by randomized SVD, exact SVD or CUR.

    Parameters
    ----------
    rank : int, default=2
        Dimension of the subspace; must satisfy ``rank <= min(n_samples, n_features)`` at fit.
    method : {"randomized", "exact", "cur"}, default="randomized"
        "randomized": :func:`randomized_svd`; "exact": LAPACK SVD; "cur": the subspace spanned by
        ``rank`` actual rows of X chosen by pivoted QR (interpretable: ``selected_rows_``).
    n_oversamples : int, default=10
    n_iter : int or "auto", default="auto"
    random_state : None, int, Generator or RandomState, default=None

    Attributes
    ----------
    components_ : ndarray of shape (rank, n_features)
        Orthonormal rows spanning the subspace.
    singular_values_ : ndarray of shape (rank,)
        Singular values of X (for "cur": of X projected on the subspace).
    selected_rows_ : ndarray of shape (rank,) or None
        For ``method="cur"``, the rows of X whose span is the subspace.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.linalg import LowRankApproximation
    >>> X = np.random.default_rng(0).standard_normal((50, 3)) @ np.ones((3, 8))
    >>> est = LowRankApproximation(rank=1, random_state=0).fit(X)
    >>> bool(np.allclose(est.inverse_transform(est.transform(X)), X))
    True
    """

    _sklearn_expected_failed_checks = {
        "check_fit2d_1sample": "the default rank=2 exceeds min(X.shape)=1; we raise a ValueError naming `rank`",
        "check_fit2d_1feature": "the default rank=2 exceeds min(X.shape)=1; we raise a ValueError naming `rank`",
    }

    def __init__(self, rank=2, *, method="randomized", n_oversamples=10, n_iter="auto", random_state=None):
        self.rank = rank
        self.method = method
        self.n_oversamples = n_oversamples
        self.n_iter = n_iter
        self.random_state = random_state

    def fit(self, X, y=None):
        """Find the subspace from ``X`` (n_samples, n_features); dense or sparse."""
        X = validate_data(self, X, accept_sparse=["csr", "csc"], dtype=[np.float64, np.float32])
        check_choice(self.method, "method", ("randomized", "exact", "cur"))
        rank = check_int(self.rank, "rank", low=1)
        if rank > min(X.shape):
            raise ValueError(f"`rank` must satisfy 0 < rank <= min(X.shape) = {min(X.shape)}, got {rank}")
        gen = as_generator(self.random_state, name="random_state")
        self.selected_rows_ = None
        if self.method == "randomized":
            rank, p, q = _check_options(X.shape, rank, self.n_oversamples, self.n_iter, "auto")
            _, s, Vh = _randomized_svd_numpy(X, rank, p, q, "LU", gen)
        elif self.method == "exact":
            dense = X.toarray() if hasattr(X, "toarray") else X
            U, s, Vh = scipy.linalg.svd(dense, full_matrices=False)
            U, Vh = svd_flip(U[:, :rank], Vh[:rank])
            s = s[:rank]
        else:
            rows = _select_columns(X.T.tocsr() if hasattr(X, "tocsr") else X.T, rank, "rrqr", gen)
            R = X[rows].toarray() if hasattr(X, "toarray") else X[rows]
            Q, _ = np.linalg.qr(R.T)
            proj = X @ Q
            _, s, Wh = np.linalg.svd(np.asarray(proj), full_matrices=False)
            Vh = Wh @ Q.T
            self.selected_rows_ = np.asarray(rows)
        self.components_ = np.asarray(Vh, dtype=X.dtype)
        self.singular_values_ = np.asarray(s, dtype=X.dtype)
        return self

    def transform(self, X):
        """Coordinates of ``X`` in the subspace, shape (n_samples, rank)."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=["csr", "csc"], dtype=[np.float64, np.float32], reset=False)
        return np.asarray(X @ self.components_.T)

    def inverse_transform(self, X):
        """Map subspace coordinates back to feature space, shape (n_samples, n_features)."""
        check_is_fitted(self)
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.components_.shape[0]:
            raise ValueError(f"`X` must have shape (n_samples, {self.components_.shape[0]}), got {X.shape}")
        return X @ self.components_

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
