"""Top-k selection per row, shared by every search/ranking entry point."""

import numpy as np


def top_k_rows(scores, k):
    """Indices and values of the ``k`` largest entries of each row, best first.

    Ties are broken by the smaller column index, also at the cut: among entries equal to the
    ``k``-th largest value, those with the smallest indices are kept (``argpartition`` alone would
    keep arbitrary ones). ``k`` larger than the number of columns returns every column. Vectorised:
    one ``argpartition`` and a few passes over the rows, no per-row Python loop.

    Parameters
    ----------
    scores : ndarray of shape (n_rows, n_columns)
        No NaN.
    k : int
        At least 1.

    Returns
    -------
    indices : ndarray of int, shape (n_rows, min(k, n_columns))
    values : ndarray, shape (n_rows, min(k, n_columns))

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank._utils.ranking import top_k_rows
    >>> idx, val = top_k_rows(np.array([[0.1, 0.5, 0.2, 0.5, 0.5]]), 2)
    >>> idx.tolist(), val.tolist()
    ([[1, 3]], [[0.5, 0.5]])
    """
    n = scores.shape[1]
    k = min(k, n)
    if k < n:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(scores, part, axis=1).min(axis=1, keepdims=True)
        above = scores > kth
        tied = scores == kth
        need = k - above.sum(axis=1, keepdims=True)  # how many of the tied entries make the cut
        keep = above | (tied & (np.cumsum(tied, axis=1, dtype=np.int32) <= need))
        part = np.nonzero(keep)[1].reshape(-1, k)  # exactly k per row, in index order
    else:
        part = np.broadcast_to(np.arange(n), scores.shape).copy()
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")  # index order in, so ties stay by index
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)
