"""Exhaustive exact search (the reference every approximate search is measured against) and recall."""

import numpy as np

from lowrank._utils.progress import progress
from lowrank._utils.ranking import top_k_rows
from lowrank._utils.validation import check_int
from lowrank.retrieval._items import ScorerCalls, check_collection, take


def exact_search(scorer, queries, items, k, *, batch_size=256, verbose=False):
    """Top-``k`` items of every query by scoring all pairs with the exact scorer.

    Parameters
    ----------
    scorer : callable
        ``scorer(queries, items)`` returning the ``(len(queries), len(items))`` score matrix.
    queries, items : list, tuple, ndarray or torch tensor
        Whatever the scorer accepts; indexed along the first axis.
    k : int
        Number of neighbours, ``1 <= k <= len(items)``.
    batch_size : int, default=256
        Items per scorer call.
    verbose : bool, default=False
        Show a progress bar.

    Returns
    -------
    indices : ndarray of int, shape (n_queries, k)
        Best items first (ties broken by the lower index).
    scores : ndarray of float64, shape (n_queries, k)

    Raises
    ------
    TypeError, ValueError
        On a bad container, ``k`` out of range, or a scorer returning the wrong shape or NaN/inf.

    References
    ----------
    N. Yadav et al., "Efficient Nearest Neighbor Search for Cross-Encoder Models using Matrix
    Factorization", EMNLP 2022, arXiv:2210.12579 (exhaustive search is their reference).

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.retrieval import exact_search
    >>> items = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> idx, s = exact_search(lambda q, x: q @ x.T, np.array([[1.0, 0.1]]), items, 2)
    >>> idx.tolist(), s.round(2).tolist()
    ([[2, 0]], [[1.1, 1.0]])
    """
    if not callable(scorer):
        raise TypeError(f"`scorer` must be callable, got {type(scorer).__name__}")
    n_queries = check_collection(queries, "queries")
    n_items = check_collection(items, "items")
    k = check_int(k, "k", low=1, high=n_items)
    batch_size = check_int(batch_size, "batch_size", low=1)
    calls = ScorerCalls(scorer)
    scores = np.empty((n_queries, n_items))
    bar = progress(total=n_items, desc="exact search", verbose=verbose, unit="item")
    for start in range(0, n_items, batch_size):
        stop = min(start + batch_size, n_items)
        scores[:, start:stop] = calls(queries, take(items, slice(start, stop)), n_queries, stop - start)
        bar.update(stop - start)
    bar.close()
    return top_k_rows(scores, k)


def recall_at_k(retrieved, reference, k=None):
    """Mean fraction of each query's reference top-``k`` found in its retrieved top-``k``.

    Parameters
    ----------
    retrieved : array_like of int, shape (n_queries, >= k)
        Retrieved item indices per query, best first.
    reference : array_like of int, shape (n_queries, >= k)
        The true neighbours (e.g. from :func:`exact_search`), best first.
    k : int, optional
        Cut-off; default the number of columns of ``reference``.

    Returns
    -------
    float
        In ``[0, 1]``.

    Raises
    ------
    ValueError
        On mismatched numbers of queries or ``k`` larger than either array's width.

    Examples
    --------
    >>> from lowrank.retrieval import recall_at_k
    >>> recall_at_k([[3, 1, 2], [0, 4, 5]], [[1, 3, 9], [5, 6, 7]], k=2)
    0.5
    """
    retrieved = np.asarray(retrieved)
    reference = np.asarray(reference)
    if retrieved.ndim != 2 or reference.ndim != 2 or retrieved.shape[0] != reference.shape[0]:
        raise ValueError(
            f"`retrieved` and `reference` must be 2-D with one row per query, got shapes {retrieved.shape} and {reference.shape}"
        )
    if retrieved.shape[0] == 0:
        raise ValueError("`retrieved` and `reference` hold no query: recall is undefined on an empty set")
    if retrieved.dtype.kind not in "iu" or reference.dtype.kind not in "iu":
        raise TypeError(f"`retrieved` and `reference` must hold integer item indices, got {retrieved.dtype} "
                        f"and {reference.dtype}")
    k = reference.shape[1] if k is None else check_int(k, "k", low=1)
    if k == 0:
        raise ValueError("`reference` has no column: give at least one reference neighbour per query")
    if k > reference.shape[1] or k > retrieved.shape[1]:
        raise ValueError(f"`k` must be at most the width of both arrays {retrieved.shape[1], reference.shape[1]}, got {k}")
    hits = [len(np.intersect1d(a[:k], b[:k])) for a, b in zip(retrieved, reference)]
    return float(np.mean(hits) / k)
