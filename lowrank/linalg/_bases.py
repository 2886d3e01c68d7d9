"""Fixed orthonormal bases."""

import numpy as np

from lowrank._utils.validation import check_int


def dct_basis(n, k=None):
    """The first ``k`` orthonormal DCT-II basis vectors of length ``n`` as columns.

    Column ``j`` is ``c_j cos(pi (i + 1/2) j / n)`` with ``c_0 = sqrt(1/n)`` and ``c_j = sqrt(2/n)``;
    ``D.T @ x`` equals ``scipy.fft.dct(x, norm="ortho")[:k]``.

    Parameters
    ----------
    n : int
        Length of each basis vector.
    k : int, optional
        Number of vectors, ``0 < k <= n`` (default ``n``).

    Returns
    -------
    ndarray, shape (n, k), orthonormal columns

    Examples
    --------
    >>> D = dct_basis(8, 3)
    >>> bool(np.allclose(D.T @ D, np.eye(3)))
    True
    """
    n = check_int(n, "n", low=1)
    k = n if k is None else check_int(k, "k", low=1, high=n)
    i = np.arange(n)[:, None]
    j = np.arange(k)[None, :]
    D = np.cos(np.pi * (i + 0.5) * j / n) * np.sqrt(2.0 / n)
    D[:, 0] = np.sqrt(1.0 / n)
    return D
