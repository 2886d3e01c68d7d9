"""sklearn estimators over the stream states: ``partial_fit`` batch by batch, ``fit`` on an array or a stream."""

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from lowrank._utils.io import load_npz, save_npz
from lowrank._utils.rng import as_generator
from lowrank._utils.validation import check_int, validate_data
from lowrank.streaming._api import (
    check_batch,
    check_options,
    feed,
    is_stream_source,
    make_state,
    state_from_arrays,
    state_to_arrays,
)
from lowrank.streaming._input import iter_batches

_DTYPES = [np.float64, np.float32]

_ATTRIBUTES_DOC = """
    Attributes
    ----------
    components_ : ndarray, shape (n_components, n_features)
        The unit top eigenvector(s) of ``A^T A`` (sign: largest-magnitude entry positive), in the
        input's float dtype; one row unless ``n_components > 1``.
    eigenvalue_ : float
        Estimate of ``sigma_1(A)^2``, the top eigenvalue of ``A^T A`` over the rows seen.
    explained_variance_ : ndarray, shape (n_components,)
        Eigenvalue estimates / ``n_rows_seen_``: the mean squared projection of a row on each
        component (uncentred: the rows are not centred, as in ``A^T A``).
    n_rows_seen_ : int
        Rows read so far (``partial_fit`` accumulates).
    n_heavy_rows_ : int
        Rows held exactly as heavy rows (0 for methods without heavy rows).
    nbytes_ : int
        Working memory held by the state, in bytes (excluding the batch being read).
    n_features_in_ : int
        Number of columns.
    feature_names_in_ : ndarray of str
        Column names, when ``X`` had them.
"""


class _StreamingTopEigenvector(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    _method = None

    def _options(self):
        raise NotImplementedError

    def _n_components(self, n_features):
        k = getattr(self, "n_components", 1)
        limit = n_features if self._method != "random_order" else min(n_features, self.n_vectors)
        k = check_int(k, "n_components", low=1)
        if k > limit:
            what = "n_features" if limit == n_features else "n_vectors"
            raise ValueError(f"`n_components` must satisfy n_components <= {what} = {limit}, got {k}")
        return k

    def _reset(self):
        for name in ("_state", "_dtype", "_solved"):
            self.__dict__.pop(name, None)

    def _start(self, n_features, dtype):
        options = check_options(self._method, self._options())
        self._k = self._n_components(n_features)
        self._dtype = np.dtype(dtype)
        self._state = make_state(self._method, n_features, self._dtype, options, as_generator(self.random_state))

    def _finish(self):
        # counts are set now; the eigenvectors are solved on first access (a small Rayleigh-Ritz),
        # so a long run of partial_fit calls pays for it once
        state = self._state
        self.n_rows_seen_ = int(state.n_rows)
        self.n_heavy_rows_ = int(state.H.shape[0]) if hasattr(state, "H") else 0
        self.nbytes_ = int(state.nbytes)
        self._n_features_out = self._k
        self._solved = [None]  # a holder: filling it later leaves __dict__ itself unchanged

    def _solution(self):
        if "_state" not in self.__dict__:
            raise AttributeError("not fitted: call fit or partial_fit first")
        holder = self._solved
        if holder[0] is None:
            V, eigenvalues = self._state.result(self._k)
            n = max(self._state.n_rows, 1)
            holder[0] = (V.T.astype(self._dtype), float(eigenvalues[0]), (eigenvalues / n).astype(self._dtype))
        return holder[0]

    @property
    def components_(self):
        return self._solution()[0]

    @property
    def eigenvalue_(self):
        return self._solution()[1]

    @property
    def explained_variance_(self):
        return self._solution()[2]

    def fit(self, X, y=None, *, batch_rows=10_000):
        """Estimate the top eigenvector from all rows of ``X`` (one pass).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features), or a stream
            An array is read in batches of ``batch_rows``; a ``.npy`` path, a memory map of a
            ``.npy`` file, a dask array, an iterator of batches or a list of 2-D batches is
            streamed (see :func:`lowrank.streaming.top_eigenvector_stream`).
        y : None
            Ignored.
        batch_rows : int, default=10000
            Rows per batch read from ``X``.

        Returns
        -------
        self
        """
        batch_rows = check_int(batch_rows, "batch_rows", low=1)
        self._reset()
        if is_stream_source(X):
            n_features = dtype = None
            for index, batch in enumerate(iter_batches(X, batch_rows)):
                batch, dtype = check_batch(batch, index, n_features, dtype, argument="X")
                if n_features is None:
                    n_features = batch.shape[1]
                    self._start(n_features, dtype)
                    self.n_features_in_ = n_features
                feed(self._state, batch, index, f"`X` batch {index}")
            if n_features is None:
                raise ValueError("`X` holds no rows: the stream is empty")
        else:
            X = validate_data(self, X, accept_sparse="csr", dtype=_DTYPES, order="C", ensure_all_finite=False, reset=True)
            self._start(X.shape[1], X.dtype)
            for index, start in enumerate(range(0, X.shape[0], batch_rows)):
                feed(self._state, X[start : start + batch_rows], index, f"`X` (rows {start} to {start + batch_rows - 1})")
        self._finish()
        return self

    def partial_fit(self, X, y=None):
        """Read one more batch of rows.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            The batch (at least one row; the same number of columns as the first batch).
        y : None
            Ignored.

        Returns
        -------
        self
        """
        first = not hasattr(self, "_state")
        X = validate_data(self, X, accept_sparse="csr", dtype=_DTYPES, order="C", ensure_all_finite=False, reset=first)
        if first:
            self._start(X.shape[1], X.dtype)
        if X.dtype != self._dtype:
            X = X.astype(self._dtype)
        feed(self._state, X, 0, "`X`")
        self._finish()
        return self

    def transform(self, X):
        """Project rows on the top eigenvector(s): ``X @ components_.T``, shape (n_samples, n_components)."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", dtype=_DTYPES, reset=False)
        return np.asarray(X @ self.components_.T.astype(X.dtype, copy=False))

    def save(self, path):
        """Save the fitted state to ``path`` (atomic ``.npz``) so a long stream can be resumed with :meth:`load`.

        ``random_state`` is stored only when it is None or an int (a Generator is not saved; the random
        start is already part of the state, so resuming does not need it).
        """
        check_is_fitted(self)
        arrays, state_meta = state_to_arrays(self._state)
        params = self.get_params()
        if not (params.get("random_state") is None or isinstance(params["random_state"], (int, np.integer))):
            params["random_state"] = None
        params = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in params.items()}
        meta = {
            "class": type(self).__name__,
            "params": params,
            "state": state_meta,
            "n_features_in": int(self.n_features_in_),
            "feature_names_in": list(map(str, getattr(self, "feature_names_in_", []))) or None,
            "k": int(self._k),
        }
        save_npz(path, {f"state/{k}": v for k, v in arrays.items()}, kind="lowrank.streaming", meta=meta)
        return path

    @classmethod
    def load(cls, path):
        """Rebuild an estimator saved by :meth:`save`; ``partial_fit`` then continues the stream exactly."""
        arrays, meta = load_npz(path, kind="lowrank.streaming")
        if meta["class"] != cls.__name__:
            raise ValueError(f"{path} holds a {meta['class']}, not a {cls.__name__}")
        est = cls(**meta["params"])
        state_arrays = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("state/")}
        est._state = state_from_arrays(est._method, state_arrays, meta["state"])
        est._dtype = est._state.dtype
        est._k = meta["k"]
        est.n_features_in_ = meta["n_features_in"]
        if meta.get("feature_names_in"):
            est.feature_names_in_ = np.asarray(meta["feature_names_in"], dtype=object)
        est._finish()
        return est

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class RandomOrderTopEigenvector(_StreamingTopEigenvector):
    """Top eigenvector of ``A^T A`` from a random-order row stream, heavy rows kept exactly.

    Kacham & Woodruff's random-order method: rows whose squared norm is at least
    ``||A_{1:t}||_F^2 / (c d)`` (heavy; ``c = log2 d``) are stored exactly (at most ``max_heavy``); the light rows
    drive a block power iteration in which step ``t`` reads a fresh, doubling block of the stream,
    each step closed by a Rayleigh-Ritz on the Nystrom approximation of the light Gram plus the
    heavy rows. Memory is ``O((n_vectors + h) d)``, time one read of each row; no learning rate.
    The light rows must arrive in random order; heavy rows may be anywhere (first, last, ...).

    Parameters
    ----------
    n_vectors : int, default=2
        Block size ``p`` of the power iteration (more vectors converge faster when the spectrum
        decays beyond ``sigma_2``; the cost per row grows linearly).
    n_components : int, default=1
        Ritz vectors returned, ``n_components <= n_vectors``: the block extension to the top-k
        eigenvectors (accurate when ``sigma_k^2 / sigma_{k+1}^2`` is a gap too).
    max_heavy : int, default=32
        Most rows kept exactly; 0 disables the heavy-row handling (every row is sampled).
    heavy_threshold : float or None, default=None
        ``c`` in the heavy-row test ``||a||^2 >= ||A_{1:t}||_F^2 / (c d)`` (larger keeps more rows);
        None means ``c = max(1, log2 d)``, the paper's ``d polylog d``.
    min_block_rows : int or None, default=None
        Rows of the first power-iteration block; ``None`` means ``max(2 d, 256)``.
    random_state : None, int or numpy.random.Generator, default=None
        Seed of the random start.
    %(attributes)s
    See Also
    --------
    top_eigenvector_stream : the function form; OjaTopEigenvector : any row order.

    References
    ----------
    P. Kacham, D. P. Woodruff, "Approximating the Top Eigenvector in Random Order Streams",
    NeurIPS 2024, arXiv:2412.11963.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.datasets import planted_gap_stream
    >>> from lowrank.streaming import RandomOrderTopEigenvector
    >>> stream = planted_gap_stream(20_000, 50, gap=2.0, n_heavy=1, rng=0)
    >>> est = RandomOrderTopEigenvector(random_state=0)
    >>> for batch in stream.batches(2_000):
    ...     est = est.partial_fit(batch)
    >>> A = stream.to_array()
    >>> v1 = np.linalg.eigh(A.T @ A)[1][:, -1]
    >>> bool(abs(est.components_[0] @ v1) > 0.99), est.n_heavy_rows_
    (True, 1)
    """

    _method = "random_order"

    def __init__(
        self, n_vectors=2, *, n_components=1, max_heavy=32, heavy_threshold=None, min_block_rows=None, random_state=None
    ):
        self.n_vectors = n_vectors
        self.n_components = n_components
        self.max_heavy = max_heavy
        self.heavy_threshold = heavy_threshold
        self.min_block_rows = min_block_rows
        self.random_state = random_state

    def _options(self):
        return {
            "n_vectors": self.n_vectors,
            "max_heavy": self.max_heavy,
            "heavy_threshold": self.heavy_threshold,
            "min_block_rows": self.min_block_rows,
        }


class OjaTopEigenvector(_StreamingTopEigenvector):
    """Top eigenvector of ``A^T A`` from a row stream in any order: Oja with Price & Xun's rate.

    Runs ``n_rates`` Oja copies ``x <- x + (c_j / ||A_{1:t}||_F^2) (a^T x) a`` on a geometric grid
    of ``c_j`` and returns the copy with the smallest rate whose log-norm growth reaches
    ``target_growth * log d`` (Price & Xun's test that a rate is large enough): no rate to tune.
    Memory ``O(n_rates d)``. Needs a larger gap than the random-order method
    (``R = Omega(log n log d)`` in the analysis) and is led astray by heavy rows that arrive early.

    Parameters
    ----------
    n_rates : int, default=8
        Copies on the rate grid ``c_j`` in ``[1, 4 d]``.
    target_growth : float, default=2.0
        Log-norm growth, in units of ``log d``, that accepts a rate.
    random_state : None, int or numpy.random.Generator, default=None
        Seed of the random start.
    %(attributes)s
    See Also
    --------
    RandomOrderTopEigenvector : random-order streams, heavy rows kept exactly.

    References
    ----------
    E. Price, Z. Xun, "Spectral Guarantees for Adversarial Streaming PCA", FOCS 2024, arXiv:2408.10332.
    E. Oja, "Simplified neuron model as a principal component analyzer", J. Math. Biology 15, 1982.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.datasets import planted_gap_stream
    >>> from lowrank.streaming import OjaTopEigenvector
    >>> stream = planted_gap_stream(20_000, 50, gap=100.0, rng=0)
    >>> A = stream.to_array()
    >>> est = OjaTopEigenvector(random_state=0).fit(A)
    >>> v1 = np.linalg.eigh(A.T @ A)[1][:, -1]
    >>> bool(abs(est.components_[0] @ v1) > 0.95)
    True
    """

    _method = "oja"

    def __init__(self, *, n_rates=8, target_growth=2.0, random_state=None):
        self.n_rates = n_rates
        self.target_growth = target_growth
        self.random_state = random_state

    def _options(self):
        return {"n_rates": self.n_rates, "target_growth": self.target_growth}


class ExactTopEigenvector(_StreamingTopEigenvector):
    """Top eigenvector of ``A^T A`` by accumulating the ``d x d`` Gram matrix (exact; ``O(d^2)`` memory).

    The baseline for small ``d``: one BLAS product per batch, one symmetric eigensolve at the end.

    Parameters
    ----------
    n_components : int, default=1
        Top eigenvectors returned, ``n_components <= n_features``.
    random_state : None, int or numpy.random.Generator, default=None
        Unused (the method is deterministic); kept for a uniform interface.
    %(attributes)s
    References
    ----------
    G. H. Golub, C. F. Van Loan, "Matrix Computations", 4th ed., 2013, section 8.1.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.streaming import ExactTopEigenvector
    >>> A = np.random.default_rng(0).standard_normal((500, 8)) * np.arange(1, 9)
    >>> est = ExactTopEigenvector().fit(A)
    >>> v1 = np.linalg.eigh(A.T @ A)[1][:, -1]
    >>> bool(np.isclose(abs(est.components_[0] @ v1), 1.0))
    True
    """

    _method = "exact"

    def __init__(self, *, n_components=1, random_state=None):
        self.n_components = n_components
        self.random_state = random_state

    def _options(self):
        return {}


for _cls in (RandomOrderTopEigenvector, OjaTopEigenvector, ExactTopEigenvector):
    _cls.__doc__ = _cls.__doc__.replace("%(attributes)s", _ATTRIBUTES_DOC.strip())
