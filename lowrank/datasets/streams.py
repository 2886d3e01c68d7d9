"""Row streams with a planted spectral gap, for streaming top-eigenvector methods (lowrank.streaming)."""

import os

import numpy as np

from lowrank._utils.rng import as_seed
from lowrank._utils.validation import check_choice, check_float, check_int

__all__ = ["PlantedGapStream", "planted_gap_stream"]

_CHUNK = 4096  # light rows are drawn in fixed chunks, so a row never depends on how the stream is batched
_LIGHT_TOP_SHARE = 0.5  # with heavy rows, the light rows' own variance along v1 (below the second eigenvalue 1)


class PlantedGapStream:
    """A lazily generated ``(n_rows, n_features)`` row stream with a planted top direction.

    Rows are produced on demand (:meth:`batches`, :meth:`rows`), so a stream far larger than
    memory can be iterated or written to a ``.npy`` file (:meth:`save_npy`) chunk by chunk.
    Light row ``i`` is ``(g_i * sqrt(mu)) @ V.T / sqrt(n_light)`` with ``g_i`` standard Gaussian
    and ``V`` a random orthogonal matrix, so the light part of ``A^T A`` is close to
    ``V diag(mu) V^T``; heavy rows are ``+-sqrt(w) v1`` plus one light-like row.

    Attributes
    ----------
    shape : tuple of int
        ``(n_rows, n_features)``.
    dtype : numpy.dtype
        float64 or float32.
    gap : float
        The planted ratio ``R = sigma_1^2 / sigma_2^2`` (the realised ratio of ``A^T A`` is close
        to it; compute it exactly with :meth:`to_array` for small streams).
    planted_vector : ndarray, shape (n_features,)
        The planted top direction ``v1`` (float64).
    variances : ndarray, shape (n_features,)
        ``mu``: the planted eigenvalues of the light part, in the basis ``V``.
    heavy_index : ndarray of int64
        Stream positions of the heavy rows (sorted).
    heavy_weight : float
        ``w``, the squared norm each heavy row carries along ``v1``.
    """

    def __init__(self, shape, dtype, gap, basis, variances, heavy_index, heavy_weight, seed):
        self.shape = shape
        self.dtype = np.dtype(dtype)
        self.gap = gap
        self._basis = basis
        self.planted_vector = basis[:, 0].copy()
        self.variances = variances
        self.heavy_index = heavy_index
        self.heavy_weight = heavy_weight
        self._seed = seed
        self._n_light = shape[0] - heavy_index.shape[0]
        self._scales = np.sqrt(variances / max(self._n_light, 1))
        self._cache = (-1, None)

    def __repr__(self):
        return (
            f"PlantedGapStream(shape={self.shape}, gap={self.gap:g}, n_heavy={self.heavy_index.shape[0]}, "
            f"dtype={self.dtype.name})"
        )

    @property
    def nbytes(self):
        """Size in bytes of the materialised stream."""
        return int(self.shape[0] * self.shape[1] * self.dtype.itemsize)

    def _light_chunk(self, c):
        """Light chunk ``c`` (float64), computed whole so that its rows never depend on the batching."""
        if self._cache[0] != c:
            size = min(_CHUNK, self._n_light - c * _CHUNK)
            G = np.random.default_rng([self._seed, 1, c]).standard_normal((size, self.shape[1]))
            self._cache = (c, (G * self._scales) @ self._basis.T)
        return self._cache[1]

    def _light_rows(self, start, stop):
        """Light rows ``start:stop`` (light numbering), float64."""
        out = np.empty((stop - start, self.shape[1]))
        pos = start
        while pos < stop:
            c = pos // _CHUNK
            hi = min(stop, (c + 1) * _CHUNK)
            out[pos - start : hi - start] = self._light_chunk(c)[pos - c * _CHUNK : hi - c * _CHUNK]
            pos = hi
        return out

    def _heavy_row(self, k):
        gen = np.random.default_rng([self._seed, 2, k])
        sign = 1.0 if gen.random() < 0.5 else -1.0
        row = (gen.standard_normal(self.shape[1]) * self._scales) @ self._basis.T
        return row + sign * np.sqrt(self.heavy_weight) * self.planted_vector

    def rows(self, start, stop):
        """Rows ``start:stop`` of the stream as an array of :attr:`dtype`."""
        n = self.shape[0]
        start, stop = max(0, int(start)), min(n, int(stop))
        if stop <= start:
            return np.empty((0, self.shape[1]), dtype=self.dtype)
        heavy = self.heavy_index
        k0, k1 = np.searchsorted(heavy, start), np.searchsorted(heavy, stop)
        light_start = start - k0
        out = np.empty((stop - start, self.shape[1]), dtype=self.dtype)
        is_heavy = np.zeros(stop - start, dtype=bool)
        is_heavy[heavy[k0:k1] - start] = True
        out[~is_heavy] = self._light_rows(light_start, light_start + int((~is_heavy).sum()))
        for k in range(k0, k1):
            out[heavy[k] - start] = self._heavy_row(k)
        return out

    def batches(self, batch_rows=10_000):
        """Yield the stream in order as arrays of at most ``batch_rows`` rows."""
        batch_rows = check_int(batch_rows, "batch_rows", low=1)
        for start in range(0, self.shape[0], batch_rows):
            yield self.rows(start, start + batch_rows)

    def __iter__(self):
        return self.batches()

    def to_array(self):
        """The whole stream as one ``(n_rows, n_features)`` array (small streams only)."""
        return self.rows(0, self.shape[0])

    def save_npy(self, path, batch_rows=65_536):
        """Write the stream to a ``.npy`` file chunk by chunk (peak memory: one chunk); returns ``path``.

        The file is written beside ``path`` and renamed into place, so a partial file never appears.
        """
        batch_rows = check_int(batch_rows, "batch_rows", low=1)
        path = os.fspath(path)
        tmp = f"{path}.partial.npy"
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=self.dtype, shape=self.shape)
        try:
            for start in range(0, self.shape[0], batch_rows):
                out[start : start + batch_rows] = self.rows(start, start + batch_rows)
            out.flush()
            del out
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path


def _iv(n_rows, n_features, gap, n_heavy, heavy_position, tail_decay, dtype):
    n_rows = check_int(n_rows, "n_rows", low=1)
    n_features = check_int(n_features, "n_features", low=2)
    gap = check_float(gap, "gap", low=1.0, low_inclusive=False)
    n_heavy = check_int(n_heavy, "n_heavy", low=0, high=n_rows - 1)
    check_choice(heavy_position, "heavy_position", ("start", "end", "random"))
    tail_decay = check_float(tail_decay, "tail_decay", low=0.0)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"`dtype` must be float32 or float64, got {dtype}")
    if n_heavy and gap <= _LIGHT_TOP_SHARE:
        raise ValueError(f"`gap` must exceed {_LIGHT_TOP_SHARE} when `n_heavy` > 0, got {gap}")
    return n_rows, n_features, gap, n_heavy, heavy_position, tail_decay, dtype


def planted_gap_stream(
    n_rows,
    n_features,
    *,
    gap=10.0,
    n_heavy=0,
    heavy_position="start",
    tail_decay=1.0,
    dtype=np.float64,
    rng=None,
):
    """A row stream whose ``A^T A`` has a planted top eigenvector and spectral gap ``R``.

    In a random orthogonal basis ``V = [v1, v2, ...]`` the light rows have variances
    ``mu = (R, 1, 2**-c, 3**-c, ...)`` (``c = tail_decay``), scaled so the light part of
    ``A^T A`` is close to ``V diag(mu) V^T``: ``sigma_1^2 / sigma_2^2 ~ R``.

    With ``n_heavy > 0`` the light rows keep only ``0.5`` of variance along ``v1`` (less than the
    second eigenvalue 1, so the light rows alone point to ``v2``) and ``n_heavy`` very heavy rows
    ``+-sqrt((R - 0.5) / n_heavy) v1`` carry the rest: each holds a constant fraction of
    ``||A||_F^2`` while a light row holds ``O(1 / n_rows)``. A method that under-weights or forgets
    the heavy rows returns ``v2``, almost orthogonal to the answer. Placing them at the
    ``"start"`` is adversarial for decaying-rate Oja and plain block power iteration (they are
    forgotten), at the ``"end"`` for small fixed rates (they arrive too late to matter).

    Parameters
    ----------
    n_rows, n_features : int
        Shape of the stream (``n_features >= 2``).
    gap : float, default=10.0
        The planted ratio ``R = sigma_1^2 / sigma_2^2 > 1``.
    n_heavy : int, default=0
        Number of heavy rows, ``0 <= n_heavy < n_rows``.
    heavy_position : {"start", "end", "random"}, default="start"
        Where the heavy rows sit in the stream.
    tail_decay : float, default=1.0
        ``c`` in the tail ``mu_j = (j - 1)**-c`` (``j >= 2``); 0 gives a flat tail (the hardest case).
    dtype : {numpy.float64, numpy.float32}, default=numpy.float64
        Dtype of the generated rows.
    rng : None, int or numpy.random.Generator, default=None
        Seed; the same seed gives the same rows however the stream is batched.

    Returns
    -------
    PlantedGapStream
        Lazy stream with ``batches(batch_rows)``, ``rows(start, stop)``, ``to_array()``,
        ``save_npy(path)``, ``planted_vector`` and ``heavy_index``.

    Raises
    ------
    ValueError
        A size, gap, count or position out of range.
    TypeError
        A non-integer size or a dtype other than float32/float64.

    References
    ----------
    P. Kacham, D. P. Woodruff, "Approximating the Top Eigenvector in Random Order Streams",
    NeurIPS 2024, arXiv:2412.11963 (heavy rows, gap ``R``).
    E. Price, Z. Xun, "Spectral Guarantees for Adversarial Streaming PCA", FOCS 2024,
    arXiv:2408.10332.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.datasets import planted_gap_stream
    >>> stream = planted_gap_stream(2000, 20, gap=10.0, n_heavy=1, rng=0)
    >>> A = stream.to_array()
    >>> w, V = np.linalg.eigh(A.T @ A)
    >>> bool(abs(V[:, -1] @ stream.planted_vector) > 0.99), bool(8 < w[-1] / w[-2] < 12)
    (True, True)
    >>> sum(b.shape[0] for b in stream.batches(512))
    2000
    """
    n_rows, n_features, gap, n_heavy, heavy_position, tail_decay, dtype = _iv(
        n_rows, n_features, gap, n_heavy, heavy_position, tail_decay, dtype
    )
    seed = as_seed(rng)
    basis, _ = np.linalg.qr(np.random.default_rng([seed, 0]).standard_normal((n_features, n_features)))
    variances = np.empty(n_features)
    variances[0] = _LIGHT_TOP_SHARE if n_heavy else gap
    variances[1:] = np.arange(1, n_features, dtype=np.float64) ** -tail_decay
    if heavy_position == "start":
        heavy_index = np.arange(n_heavy, dtype=np.int64)
    elif heavy_position == "end":
        heavy_index = np.arange(n_rows - n_heavy, n_rows, dtype=np.int64)
    else:
        pick = np.random.default_rng([seed, 3]).choice(n_rows, size=n_heavy, replace=False)
        heavy_index = np.sort(pick).astype(np.int64)
    heavy_weight = (gap - _LIGHT_TOP_SHARE) / n_heavy if n_heavy else 0.0
    return PlantedGapStream(
        (n_rows, n_features), dtype, gap, basis, variances, heavy_index, heavy_weight, seed
    )
