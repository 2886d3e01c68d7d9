"""Argument checks with exact, named error messages (one ``_iv`` per public entry point uses these)."""

import numbers

import numpy as np
import scipy.sparse as sp


def check_int(value, name, *, low=None, high=None, low_inclusive=True, high_inclusive=True):
    """Return ``value`` as a Python int, or raise naming ``name`` and the allowed range."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"`{name}` must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    _check_range(value, name, low, high, low_inclusive, high_inclusive)
    return value


def check_float(value, name, *, low=None, high=None, low_inclusive=True, high_inclusive=True):
    """Return ``value`` as a finite Python float inside the given bounds."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"`{name}` must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"`{name}` must be finite, got {value}")
    _check_range(value, name, low, high, low_inclusive, high_inclusive)
    return value


def _check_range(value, name, low, high, low_inclusive, high_inclusive):
    bad_low = low is not None and (value < low if low_inclusive else value <= low)
    bad_high = high is not None and (value > high if high_inclusive else value >= high)
    if bad_low or bad_high:
        lo = "" if low is None else f"{low} {'<=' if low_inclusive else '<'} "
        hi = "" if high is None else f" {'<=' if high_inclusive else '<'} {high}"
        raise ValueError(f"`{name}` must satisfy {lo}{name}{hi}, got {value}")


def check_choice(value, name, choices):
    """Raise unless ``value`` is one of ``choices``."""
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {options}; got {value!r}")
    return value


def check_rank(rank, shape, name="rank"):
    """Check ``0 < rank <= min(shape)``."""
    limit = min(shape)
    if isinstance(rank, bool) or not isinstance(rank, (numbers.Integral, np.integer)):
        raise TypeError(f"`{name}` must be an integer, got {type(rank).__name__} {rank!r}")
    rank = int(rank)
    if not 0 < rank <= limit:
        raise ValueError(f"`{name}` must be an integer satisfying `0 < {name} <= min(A.shape)` = {limit}, got {rank}")
    return rank


def check_matrix(A, name="A", *, accept_sparse=True, dtype_float=True, allow_empty=False, finite=True):
    """Validate a 2-D numpy array or scipy sparse matrix/array.

    Returns the array (sparse converted to CSR when not CSR/CSC) cast to a floating dtype
    (float32 is kept; integers and bools go to float64). Complex input is rejected.
    """
    if sp.issparse(A):
        if not accept_sparse:
            raise TypeError(f"`{name}` must be a dense array; sparse input is not supported here")
        if A.format not in ("csr", "csc"):
            A = A.tocsr()
        data = A.data
    else:
        if hasattr(A, "__array_namespace__") and type(A).__module__.startswith("torch"):
            raise TypeError(f"`{name}`: torch tensors are not supported by this function")
        A = np.asarray(A)
        data = A
    if A.ndim != 2:
        raise ValueError(f"`{name}` must be 2-dimensional, got {A.ndim} dimension(s)")
    if not allow_empty and (A.shape[0] == 0 or A.shape[1] == 0):
        raise ValueError(f"`{name}` must be non-empty, got shape {A.shape}")
    if np.iscomplexobj(data):
        raise TypeError(f"`{name}` must be real; complex input is not supported")
    if dtype_float and data.dtype not in (np.float32, np.float64):
        if data.dtype.kind not in "biuf":
            raise TypeError(f"`{name}` must hold real numbers, got dtype {data.dtype}")
        A = A.astype(np.float64)
        data = A.data if sp.issparse(A) else A
    if finite and not np.isfinite(data).all():
        raise ValueError(f"`{name}` must not contain NaN or infinity")
    return A


def result_dtype(*dtypes):
    """float32 when every input is float32, else float64 (avoids NumPy 2 scalar promotion surprises)."""
    return np.float32 if all(np.dtype(d) == np.float32 for d in dtypes) else np.float64


def _holds_strings(value):
    if isinstance(value, str) or value is None:
        return False
    dtype = getattr(value, "dtype", None)
    if dtype is None and isinstance(value, (list, tuple)):
        try:
            dtype = np.asarray(value).dtype
        except (ValueError, TypeError):  # ragged: sklearn reports it
            return False
    return isinstance(dtype, np.dtype) and dtype.kind in "USV"


def validate_data(estimator, X="no_validation", y="no_validation", **kwargs):
    """``sklearn.utils.validation.validate_data``, refusing string data first.

    sklearn's own ``dtype="numeric"`` rejects arrays of strings, but a list of dtypes (which our
    estimators pass to preserve float32) silently converts ``["1", "2.5"]`` to numbers. The
    estimators of lowrank validate through this one function so they all reject it.

    Raises
    ------
    TypeError
        If ``X`` or ``y`` holds strings or bytes.
    """
    from sklearn.utils.validation import validate_data as sklearn_validate_data

    for name, value in (("X", X), ("y", y)):
        if _holds_strings(value):
            raise TypeError(f"`{name}` holds strings ({np.asarray(value).dtype}); convert it to numbers explicitly")
    return sklearn_validate_data(estimator, X, y, **kwargs)
