"""``top_eigenvector_stream``: one function over every stream source and method."""

import os

import numpy as np
import scipy.sparse as sp

from lowrank._utils.backend import is_torch
from lowrank._utils.rng import as_generator
from lowrank._utils.validation import check_choice, check_float, check_int
from lowrank.streaming._exact import ExactState
from lowrank.streaming._input import _is_whole_npy, iter_batches
from lowrank.streaming._oja import OjaState
from lowrank.streaming._random_order import RandomOrderState

__all__ = ["TopEigenvectorResult", "top_eigenvector_stream", "is_stream_source"]

METHODS = ("random_order", "oja", "exact")
_STATE_CLASSES = {"random_order": RandomOrderState, "oja": OjaState, "exact": ExactState}
_DEFAULTS = {
    "random_order": {"n_vectors": 2, "max_heavy": 32, "heavy_threshold": None, "min_block_rows": None},
    "oja": {"n_rates": 8, "target_growth": 2.0},
    "exact": {},
}


class TopEigenvectorResult:
    """The estimate of the top eigenvector of ``A^T A``; unpacks as ``vector, eigenvalue = result``.

    Attributes
    ----------
    vector : ndarray, shape (n_features,)
        Unit vector, sign fixed so that its largest-magnitude entry is positive; dtype of the input.
    eigenvalue : float
        Estimate of ``sigma_1(A)^2 = v1^T A^T A v1``.
    n_rows : int
        Rows read.
    n_heavy_rows : int
        Rows kept exactly as heavy (0 for the Oja and exact methods).
    nbytes : int
        Working memory held by the method's state at the end, in bytes.
    method : str
    """

    def __init__(self, vector, eigenvalue, n_rows, n_heavy_rows, nbytes, method):
        self.vector = vector
        self.eigenvalue = eigenvalue
        self.n_rows = n_rows
        self.n_heavy_rows = n_heavy_rows
        self.nbytes = nbytes
        self.method = method

    def __iter__(self):
        return iter((self.vector, self.eigenvalue))

    def __len__(self):
        return 2

    def __getitem__(self, index):
        return (self.vector, self.eigenvalue)[index]

    def __repr__(self):
        return (
            f"TopEigenvectorResult(method={self.method!r}, n_features={self.vector.shape[0]}, "
            f"eigenvalue={self.eigenvalue:.6g}, n_rows={self.n_rows}, n_heavy_rows={self.n_heavy_rows}, "
            f"nbytes={self.nbytes})"
        )


def check_options(method, options):
    """Validate the method's options (names and ranges); returns a complete dict."""
    check_choice(method, "method", METHODS)
    unknown = sorted(set(options) - set(_DEFAULTS[method]))
    if unknown:
        allowed = ", ".join(sorted(_DEFAULTS[method])) or "none"
        raise TypeError(f"unknown option(s) {', '.join(unknown)} for method={method!r}; allowed: {allowed}")
    out = dict(_DEFAULTS[method], **options)
    if method == "random_order":
        out["n_vectors"] = check_int(out["n_vectors"], "n_vectors", low=1)
        out["max_heavy"] = check_int(out["max_heavy"], "max_heavy", low=0)
        if out["heavy_threshold"] is not None:
            out["heavy_threshold"] = check_float(out["heavy_threshold"], "heavy_threshold", low=0.0, low_inclusive=False)
        if out["min_block_rows"] is not None:
            out["min_block_rows"] = check_int(out["min_block_rows"], "min_block_rows", low=1)
    elif method == "oja":
        out["n_rates"] = check_int(out["n_rates"], "n_rates", low=1)
        out["target_growth"] = check_float(out["target_growth"], "target_growth", low=0.0, low_inclusive=False)
    return out


def make_state(method, n_features, dtype, options, rng):
    return _STATE_CLASSES[method](n_features, dtype, rng=rng, **options)


def check_batch(batch, index, n_features, dtype, argument="source"):
    """Return ``batch`` as a C-contiguous ndarray or CSR of ``dtype``; raise naming the argument and the batch."""
    name = f"`{argument}` batch {index}"
    if sp.issparse(batch):
        if batch.ndim != 2:
            raise ValueError(f"{name} must be 2-dimensional (rows, features), got {batch.ndim} dimension(s)")
        batch = batch.tocsr()
        kind = batch.dtype.kind
    else:
        if is_torch(batch):
            raise TypeError(f"{name}: torch tensors are not supported; pass tensor.numpy()")
        batch = np.asarray(batch)
        if batch.ndim != 2:
            raise ValueError(f"{name} must be 2-dimensional (rows, features), got {batch.ndim} dimension(s)")
        kind = batch.dtype.kind
    if kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {batch.dtype}")
    if batch.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 rows); every batch needs at least one row")
    if n_features is not None and batch.shape[1] != n_features:
        raise ValueError(
            f"{name} has {batch.shape[1]} features but the stream started with {n_features}; "
            "the number of columns must not change between batches"
        )
    if batch.shape[1] == 0:
        raise ValueError(f"{name} has 0 features")
    if dtype is None:
        dtype = batch.dtype if batch.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    if sp.issparse(batch):
        return batch.astype(dtype, copy=False), dtype
    return np.ascontiguousarray(batch, dtype=dtype), dtype


def feed(state, batch, index, label=None):
    """``state.update(batch)``, re-raising a NaN/inf error naming the batch (``label``, default its index)."""
    try:
        state.update(batch)
    except ValueError as exc:
        if "NaN or infinity" in str(exc):
            raise ValueError(f"{label or f'`source` batch {index}'}: {exc}") from None
        raise


def top_eigenvector_stream(source, *, method="random_order", batch_rows=10_000, rng=None, **options):
    """Top eigenvector of ``A^T A`` from one pass over the rows of ``A``, in ``O(h d)`` memory.

    Parameters
    ----------
    source : ndarray, sparse matrix, str or PathLike, np.memmap, dask array or iterable of batches
        The rows of ``A`` in stream order. A ``.npy`` path (or a memory map of one) is read in
        batches with file reads, so a file larger than memory works; a dask array is computed one
        row chunk at a time; an iterable/generator yields 2-D batches (ndarray or sparse).
    method : {"random_order", "oja", "exact"}, default="random_order"
        ``"random_order"``: heavy rows kept exactly, light rows in a block power method (Kacham &
        Woodruff; assumes the light rows arrive in random order, heavy rows may sit anywhere).
        ``"oja"``: Oja's algorithm with the Price & Xun rate choice (any order, needs a larger gap).
        ``"exact"``: the ``d x d`` Gram matrix (exact, ``O(d^2)`` memory; the baseline for small ``d``).
    batch_rows : int, default=10000
        Rows per batch when reading arrays, files and dask arrays.
    rng : None, int or numpy.random.Generator, default=None
        Seed of the random start.
    **options
        ``"random_order"``: ``n_vectors=2`` (block size of the power iteration), ``max_heavy=32``
        (most rows kept exactly), ``heavy_threshold=None`` (``c``: a row is heavy when
        ``||a||^2 >= ||A_{1:t}||_F^2 / (c d)``; None means ``c = max(1, log2 d)``), ``min_block_rows=None`` (first block; default
        ``max(2 d, 256)``). ``"oja"``: ``n_rates=8`` (copies on the rate grid),
        ``target_growth=2.0`` (log-norm growth, in units of ``log d``, that accepts a rate).

    Returns
    -------
    TopEigenvectorResult
        ``(vector, eigenvalue)``, with ``n_rows``, ``n_heavy_rows`` and ``nbytes``; the vector has
        the input's float dtype (float32 stays float32).

    Raises
    ------
    ValueError
        A batch with NaN/inf, a change in the number of columns, an empty batch or stream, a bad option.
    TypeError
        An unsupported source or batch type, an unknown option.

    References
    ----------
    P. Kacham, D. P. Woodruff, "Approximating the Top Eigenvector in Random Order Streams",
    NeurIPS 2024, arXiv:2412.11963.
    E. Price, Z. Xun, "Spectral Guarantees for Adversarial Streaming PCA", FOCS 2024, arXiv:2408.10332.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.datasets import planted_gap_stream
    >>> from lowrank.streaming import top_eigenvector_stream
    >>> stream = planted_gap_stream(20_000, 50, gap=10.0, n_heavy=1, rng=0)
    >>> v, eigenvalue = top_eigenvector_stream(stream.batches(2_000), rng=0)
    >>> A = stream.to_array()
    >>> v1 = np.linalg.eigh(A.T @ A)[1][:, -1]
    >>> bool(abs(v @ v1) > 0.99)
    True
    """
    options = check_options(method, options)
    batch_rows = check_int(batch_rows, "batch_rows", low=1)
    gen = as_generator(rng)
    state, n_features, dtype = None, None, None
    for index, batch in enumerate(iter_batches(source, batch_rows)):
        batch, dtype = check_batch(batch, index, n_features, dtype)
        if state is None:
            n_features = batch.shape[1]
            state = make_state(method, n_features, dtype, options, gen)
        feed(state, batch, index)
    if state is None:
        raise ValueError("`source` holds no rows: the stream is empty")
    V, eigenvalues = state.result(1)
    vector, eigenvalue = V[:, 0], float(eigenvalues[0])
    n_heavy = int(state.H.shape[0]) if hasattr(state, "H") else 0
    return TopEigenvectorResult(vector.astype(dtype), eigenvalue, state.n_rows, n_heavy, state.nbytes, method)


def is_stream_source(X):
    """True when ``X`` is streamed rather than validated as one array (path, dask, iterator, list of batches)."""
    if isinstance(X, (str, os.PathLike)) or type(X).__module__.split(".")[0] == "dask":
        return True
    if hasattr(X, "__next__"):
        return True
    if isinstance(X, (list, tuple)) and X and (sp.issparse(X[0]) or (isinstance(X[0], np.ndarray) and X[0].ndim == 2)):
        return True
    return isinstance(X, np.memmap) and X.ndim == 2 and bool(X.filename) and _is_whole_npy(X)


def state_to_arrays(state):
    """Split a state into ``(arrays, meta)`` for :func:`lowrank._utils.io.save_npz` (exact round trip)."""
    arrays, meta = {}, {}
    for key, value in state.__dict__.items():
        if key == "_ZT":
            continue  # derived from _Z
        if key == "last":
            meta["last_m"] = None if value is None else int(value[2])
            if value is not None:
                arrays["last_Z"], arrays["last_Y"] = value[0], value[1]
        elif key == "dtype":
            meta["dtype"] = np.dtype(value).name
        elif isinstance(value, np.ndarray):
            arrays[key] = value
        elif value is None or isinstance(value, (bool, int, float, np.integer, np.floating)):
            meta[key] = value.item() if isinstance(value, np.generic) else value
        else:  # pragma: no cover - a new attribute type must be added here
            raise TypeError(f"cannot save state attribute {key!r} of type {type(value).__name__}")
    return arrays, meta


def state_from_arrays(method, arrays, meta):
    """Inverse of :func:`state_to_arrays`."""
    state = object.__new__(_STATE_CLASSES[method])
    meta = dict(meta)
    last_m = meta.pop("last_m", None)
    state.__dict__["dtype"] = np.dtype(meta.pop("dtype"))
    state.__dict__.update(meta)
    for key, value in arrays.items():
        if key not in ("last_Z", "last_Y"):
            state.__dict__[key] = value
    if "_Z" in arrays:
        state.Z = arrays["_Z"]  # restores _ZT
    if method == "random_order":
        state.last = None if last_m is None else (arrays["last_Z"], arrays["last_Y"], last_m)
    return state
