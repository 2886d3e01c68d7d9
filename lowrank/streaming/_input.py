"""Turning every supported source into an in-order stream of 2-D row batches, without loading it whole.

Sources: a numpy array (or ``np.memmap``), a scipy sparse matrix/array, a path to a ``.npy`` file
(read with plain file reads into one reused buffer, so the resident memory is one batch, not the
page cache of a memory map), a dask array (row chunks computed one at a time, in order), or any
iterable/generator of batches.
"""

import os

import numpy as np
import scipy.sparse as sp

from lowrank._utils.backend import is_torch
from lowrank._utils.validation import check_int

__all__ = ["iter_batches"]


def _is_dask(obj):
    return type(obj).__module__.split(".")[0] == "dask" and hasattr(obj, "blocks")


def _npy_batches(path, batch_rows):
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        if len(shape) != 2:
            raise ValueError(f"`source`: {path} holds a {len(shape)}-D array; a 2-D (rows, features) array is needed")
        if fortran:
            # column-major files cannot be read row by row; a memory map still streams them
            yield from _array_batches(np.load(path, mmap_mode="r"), batch_rows)
            return
        n, d = shape
        if dtype.hasobject:
            raise TypeError(f"`source`: {path} holds Python objects; a numeric array is needed")
        buffer = np.empty((min(batch_rows, n), d), dtype=dtype)
        for start in range(0, n, batch_rows):
            rows = min(batch_rows, n - start)
            view = buffer[:rows]
            got = f.readinto(memoryview(view.reshape(-1).view(np.uint8)))
            if got != view.nbytes:
                raise ValueError(f"`source`: {path} is truncated (row {start + got // max(d * dtype.itemsize, 1)})")
            yield view


def _array_batches(A, batch_rows):
    if A.ndim != 2:
        raise ValueError(f"`source` must be 2-dimensional, got {A.ndim} dimension(s)")
    for start in range(0, A.shape[0], batch_rows):
        yield A[start : start + batch_rows]


def _dask_batches(X, batch_rows):
    if X.ndim != 2:
        raise ValueError(f"`source` must be 2-dimensional, got {X.ndim} dimension(s)")
    if X.numblocks[1] != 1:
        X = X.rechunk({1: -1})
    for i in range(X.numblocks[0]):
        block = X.blocks[i, 0].compute()
        yield from _array_batches(block, batch_rows) if not sp.issparse(block) else _sparse_batches(block, batch_rows)


def _sparse_batches(A, batch_rows):
    A = A.tocsr() if A.format != "csr" else A
    for start in range(0, A.shape[0], batch_rows):
        yield A[start : start + batch_rows]


def iter_batches(source, batch_rows=10_000):
    """Yield ``source`` in order as 2-D row batches of at most ``batch_rows`` rows.

    Parameters
    ----------
    source : ndarray, np.memmap, sparse matrix/array, str or PathLike, dask array or iterable
        The rows. A path names a ``.npy`` file, read batch by batch into one reused buffer
        (each yielded batch is overwritten by the next: copy it to keep it). A dask array is
        computed one row chunk at a time. An iterable yields batches as they are; they are
        checked by the consumer (see :func:`lowrank.streaming.top_eigenvector_stream`).
    batch_rows : int, default=10000
        Rows per batch for arrays, files and dask chunks (ignored for iterables).

    Yields
    ------
    ndarray or scipy.sparse.csr_array/csr_matrix
        Consecutive batches.

    Raises
    ------
    ValueError
        A source that is not 2-D, a truncated ``.npy`` file.
    TypeError
        A source of an unsupported type.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.streaming import iter_batches
    >>> [b.shape for b in iter_batches(np.zeros((5, 3)), batch_rows=2)]
    [(2, 3), (2, 3), (1, 3)]
    """
    batch_rows = check_int(batch_rows, "batch_rows", low=1)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not path.endswith(".npy"):
            raise ValueError(f"`source`: a path must name a .npy file, got {path!r}")
        return _npy_batches(path, batch_rows)
    if isinstance(source, np.memmap) and source.filename and source.ndim == 2 and _is_whole_npy(source):
        # re-read with file reads: slicing the map would leave every touched page resident
        return _npy_batches(source.filename, batch_rows)
    if isinstance(source, np.ndarray):
        return _array_batches(source, batch_rows)
    if sp.issparse(source):
        if source.ndim != 2:
            raise ValueError(f"`source` must be 2-dimensional, got {source.ndim} dimension(s)")
        return _sparse_batches(source, batch_rows)
    if _is_dask(source):
        return _dask_batches(source, batch_rows)
    if is_torch(source):
        raise TypeError("`source`: torch tensors are not supported; pass tensor.numpy() or an iterable of batches")
    if hasattr(source, "__iter__") and not isinstance(source, (bytes, dict)):
        return iter(source)
    raise TypeError(
        "`source` must be an array, a sparse matrix, a .npy path, a dask array or an iterable of batches, "
        f"got {type(source).__name__}"
    )


def _is_whole_npy(mm):
    """True when ``mm`` maps a whole C-ordered ``.npy`` file (so it can be re-read with file reads)."""
    name = os.fspath(mm.filename)
    if not name.endswith(".npy"):
        return False
    try:
        header = np.load(name, mmap_mode="r")
    except (OSError, ValueError):
        return False
    same = header.shape == mm.shape and header.dtype == mm.dtype and header.offset == mm.offset
    return same and header.flags.c_contiguous and mm.flags.c_contiguous
