"""Streaming top eigenvector of ``A^T A`` from one pass over the rows of ``A``.

* :class:`RandomOrderTopEigenvector` -- random-order streams, heavy rows kept exactly
  (Kacham & Woodruff, NeurIPS 2024);
* :class:`OjaTopEigenvector` -- any order, Oja's algorithm with Price & Xun's rate choice (FOCS 2024);
* :class:`ExactTopEigenvector` -- the ``d x d`` Gram baseline;
* :func:`top_eigenvector_stream` -- the function form over arrays, sparse matrices, ``.npy`` files,
  dask arrays and generators; :func:`iter_batches` -- the batch reader it uses.

This subpackage imports numba (its per-row kernels); ``import lowrank`` does not load it.
"""

from lowrank.streaming._api import TopEigenvectorResult, top_eigenvector_stream
from lowrank.streaming._estimators import ExactTopEigenvector, OjaTopEigenvector, RandomOrderTopEigenvector
from lowrank.streaming._input import iter_batches

__all__ = [
    "ExactTopEigenvector",
    "OjaTopEigenvector",
    "RandomOrderTopEigenvector",
    "TopEigenvectorResult",
    "iter_batches",
    "top_eigenvector_stream",
]
