"""Matrices for completion: planted low-rank matrices with a known truth, and a ratings-file loader."""

import csv
import io
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from lowrank._utils.rng import as_generator
from lowrank._utils.validation import check_float, check_int

__all__ = ["PlantedLowRank", "Ratings", "load_ratings", "planted_low_rank"]

_CHUNK = 1 << 20  # entries evaluated per block, so no (|Omega|, rank) temporary is ever formed


class PlantedLowRank:
    """A planted matrix ``M = left @ right.T`` and a noisy sample of its entries.

    Unpacks like a tuple: ``observed, left, right = planted``.

    Attributes
    ----------
    observed : scipy.sparse.csr_array, shape (m, n)
        The sampled entries ``M[i, j] + noise`` (explicit entries are the observed ones).
    left : ndarray, shape (m, rank)
    right : ndarray, shape (n, rank)
        The true factors; the truth is ``left @ right.T`` (never formed unless asked for).
    noise_std : float
        Standard deviation of the Gaussian noise added to each observed entry.
    coherence : float
        The coherence ``mu(U) = (m / rank) max_i ||U_i||^2`` of the true column space (1 is
        perfectly incoherent, ``m / rank`` the worst case); the larger of the row/column values.
    """

    def __init__(self, observed, left, right, noise_std, coherence):
        self.observed = observed
        self.left = left
        self.right = right
        self.noise_std = noise_std
        self.coherence = coherence

    def __iter__(self):
        return iter((self.observed, self.left, self.right))

    def __len__(self):
        return 3

    def __getitem__(self, index):
        return (self.observed, self.left, self.right)[index]

    def __repr__(self):
        m, n = self.observed.shape
        return (
            f"PlantedLowRank(shape=({m}, {n}), rank={self.left.shape[1]}, n_observed={self.observed.nnz}, "
            f"noise_std={self.noise_std:.3g}, coherence={self.coherence:.3g})"
        )

    @property
    def shape(self):
        return self.observed.shape

    def entries(self, rows, cols):
        """The true (noiseless) values ``M[rows, cols]`` for index arrays ``rows`` and ``cols``."""
        return _entries(self.left, self.right, np.asarray(rows), np.asarray(cols))

    def to_dense(self):
        """The full truth ``left @ right.T`` (use only for small shapes)."""
        return self.left @ self.right.T

    def relative_error(self, estimate):
        """``||X - M||_F / ||M||_F`` for an estimate ``X`` given in factored form, without forming it.

        ``estimate`` is a pair ``(U, V)`` with ``X = U @ V.T``, or an object with a
        ``full_factors()`` method returning such a pair (a completion result).
        """
        if hasattr(estimate, "full_factors"):
            estimate = estimate.full_factors()
        U, V = (np.asarray(f, dtype=np.float64) for f in estimate)
        return factored_relative_error(U, V, self.left, self.right)


def factored_relative_error(U, V, left, right):
    """``||U V^T - L R^T||_F / ||L R^T||_F`` without forming either matrix.

    With thin QRs ``[U, -L] = Q_x R_x`` and ``[V, R] = Q_y R_y``, the difference is
    ``Q_x (R_x R_y^T) Q_y^T``, whose norm is that of the small core: no cancellation, so
    errors far below ``sqrt(eps)`` are measured accurately.
    """
    return _factored_norm(np.hstack([U, -left]), np.hstack([V, right])) / _factored_norm(left, right)


def _factored_norm(X, Y):
    return float(np.linalg.norm(np.linalg.qr(X, mode="r") @ np.linalg.qr(Y, mode="r").T))


def _entries(left, right, rows, cols):
    out = np.empty(rows.shape[0], dtype=np.float64)
    for start in range(0, rows.shape[0], _CHUNK):
        stop = start + _CHUNK
        out[start:stop] = np.einsum("ij,ij->i", left[rows[start:stop]], right[cols[start:stop]])
    return out


def _coherence(F):
    Q, _ = np.linalg.qr(F)
    return float(F.shape[0] / F.shape[1] * np.max(np.sum(Q * Q, axis=1)))


def _factor(gen, size, rank, coherence):
    F = gen.standard_normal((size, rank))
    if coherence > 0:
        # Power-law row scales (the coherent model of Chen, Bhojanapalli, Sanghavi & Ward 2014),
        # placed in a random order so the heavy rows are not all at the top.
        scales = (1.0 + gen.permutation(size)) ** (-coherence)
        F *= (scales / np.sqrt(np.mean(scales**2)))[:, None]
    return F


def _bernoulli_positions(gen, total, p):
    """Sorted positions in ``[0, total)``, each present independently with probability ``p``."""
    if p >= 1.0:
        return np.arange(total, dtype=np.int64)
    expected = total * p
    chunks, last, budget = [], -1, int(expected + 6 * np.sqrt(expected) + 16)
    while True:
        gaps = gen.geometric(p, size=budget)  # gaps between successes, >= 1
        pos = last + np.cumsum(gaps, dtype=np.int64)
        inside = pos[pos < total]
        chunks.append(inside)
        if inside.shape[0] < pos.shape[0]:
            break
        last = int(pos[-1])
        budget = max(budget // 8, 1024)
    return np.concatenate(chunks)


def _iv_planted(m, n, rank, p_observed, noise, coherence):
    m = check_int(m, "m", low=1)
    n = check_int(n, "n", low=1)
    rank = check_int(rank, "rank", low=1, high=min(m, n))
    p_observed = check_float(p_observed, "p_observed", low=0.0, high=1.0, low_inclusive=False)
    noise = check_float(noise, "noise", low=0.0)
    coherence = check_float(coherence, "coherence", low=0.0)
    return m, n, rank, p_observed, noise, coherence


def planted_low_rank(m, n, rank, p_observed, *, noise=0.0, coherence=0.0, rng=None):
    """Sample entries of a random rank-``rank`` matrix, with the truth kept in factored form.

    ``M = L @ R.T`` with Gaussian factors ``L`` (m x rank) and ``R`` (n x rank) scaled so that the
    entries of ``M`` have unit root-mean-square. Each entry is observed independently with
    probability ``p_observed`` (the Bernoulli model of the completion literature) and, when
    ``noise > 0``, perturbed by independent Gaussian noise of standard deviation
    ``noise * rms(M)`` (so ``noise`` is a noise-to-signal ratio).

    Parameters
    ----------
    m, n : int
        Shape of the matrix.
    rank : int
        Rank of the truth, ``1 <= rank <= min(m, n)``.
    p_observed : float
        Probability that an entry is observed, ``0 < p_observed <= 1``.
    noise : float, default=0.0
        Noise-to-signal ratio of the observed entries.
    coherence : float, default=0.0
        0 gives incoherent Gaussian factors; ``c > 0`` scales row ``i`` of each factor by
        ``(1 + pi(i)) ** -c`` for a random permutation ``pi`` (power-law leverage), which makes
        the matrix increasingly coherent and harder to complete from uniform samples.
    rng : None, int or numpy.random.Generator, default=None
        Seed.

    Returns
    -------
    PlantedLowRank
        ``(observed, left, right)``: a CSR array of the observed entries and the true factors,
        with ``entries(rows, cols)``, ``to_dense()`` and ``relative_error(estimate)`` helpers.

    Raises
    ------
    ValueError
        A size, rank, probability or noise level out of range.
    TypeError
        A non-integer size or rank.

    References
    ----------
    E. J. Candes, B. Recht, "Exact matrix completion via convex optimization", Foundations of
    Computational Mathematics 9, 2009, arXiv:0805.4471 (the random model).
    Y. Chen, S. Bhojanapalli, S. Sanghavi, R. Ward, "Coherent matrix completion", ICML 2014,
    arXiv:1306.2979 (power-law coherent factors).

    Examples
    --------
    >>> from lowrank.datasets import planted_low_rank
    >>> observed, left, right = planted_low_rank(200, 100, 3, 0.3, rng=0)
    >>> observed.shape, left.shape, right.shape
    ((200, 100), (200, 3), (100, 3))
    >>> 0.25 < observed.nnz / (200 * 100) < 0.35
    True
    """
    m, n, rank, p_observed, noise, coherence = _iv_planted(m, n, rank, p_observed, noise, coherence)
    gen = as_generator(rng)
    left = _factor(gen, m, rank, coherence)
    right = _factor(gen, n, rank, coherence)
    # Scale so rms(M) = 1: ||L R^T||_F^2 = trace(L^T L R^T R).
    frob2 = float(np.sum((left.T @ left) * (right.T @ right)))
    scale = np.sqrt(np.sqrt(m * n / frob2))
    left *= scale
    right *= scale
    positions = _bernoulli_positions(gen, m * n, p_observed)
    rows, cols = np.divmod(positions, n)
    values = _entries(left, right, rows, cols)
    noise_std = noise  # rms(M) is 1 by construction
    if noise > 0:
        values += noise_std * gen.standard_normal(values.shape[0])
    indptr = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=m), out=indptr[1:])
    index_dtype = np.int32 if max(positions.shape[0], n) < 2**31 - 1 else np.int64
    observed = sp.csr_array(
        (values, cols.astype(index_dtype), indptr.astype(index_dtype)), shape=(m, n)
    )  # positions are sorted, so rows are grouped and columns sorted within rows
    return PlantedLowRank(observed, left, right, noise_std, max(_coherence(left), _coherence(right)))


class Ratings:
    """Ratings read from a file: a sparse users x items matrix and the original ids.

    Unpacks like a tuple: ``matrix, user_ids, item_ids = ratings``.

    Attributes
    ----------
    matrix : scipy.sparse.csr_array, shape (n_users, n_items)
        ``matrix[u, i]`` is the rating user ``user_ids[u]`` gave item ``item_ids[i]``.
    user_ids, item_ids : ndarray
        Original identifiers (ints when every id parses as an integer, else strings), sorted.
    timestamps : scipy.sparse.csr_array or None
        Timestamps in the same sparsity pattern as ``matrix``, when the file has a fourth column.
    """

    def __init__(self, matrix, user_ids, item_ids, timestamps):
        self.matrix = matrix
        self.user_ids = user_ids
        self.item_ids = item_ids
        self.timestamps = timestamps

    def __iter__(self):
        return iter((self.matrix, self.user_ids, self.item_ids))

    def __len__(self):
        return 3

    def __getitem__(self, index):
        return (self.matrix, self.user_ids, self.item_ids)[index]

    def __repr__(self):
        m, n = self.matrix.shape
        return f"Ratings(n_users={m}, n_items={n}, n_ratings={self.matrix.nnz})"


def _sniff_delimiter(lines):
    sample = "\n".join(lines)
    if "::" in sample:
        return "::"
    for delim in ("\t", ",", ";", "|"):
        if all(delim in line for line in lines):
            return delim
    return None  # whitespace


def _split(lines, delimiter):
    if delimiter == "::":
        return [line.split("::") for line in lines]
    if delimiter is None:
        return [line.split() for line in lines]
    return list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))


def _as_ids(column):
    try:
        return np.asarray([int(v) for v in column], dtype=np.int64)
    except ValueError:
        return np.asarray(column, dtype=str)


def load_ratings(path, *, delimiter="auto", header="auto"):
    """Read a ratings file with lines ``user item rating [timestamp]`` (MovieLens and similar).

    Users and items are renumbered ``0 .. n-1`` in sorted order of their ids. When a (user, item)
    pair appears more than once, the last line wins (the most recent one when timestamps are
    given). Nothing is downloaded: ``path`` must exist locally.

    Parameters
    ----------
    path : str or pathlib.Path
        A text/CSV file. Blank lines and lines starting with ``#`` are skipped.
    delimiter : {"auto", ",", "\\t", ";", "|", "::", None}, default="auto"
        Column separator; None means any whitespace. "auto" detects ``::`` (MovieLens 1M),
        tab, comma, semicolon or pipe, else whitespace.
    header : {"auto", True, False}, default="auto"
        Whether the first line names the columns; "auto" treats it as a header when its
        rating field is not a number (``userId,movieId,rating,timestamp``).

    Returns
    -------
    Ratings
        ``(matrix, user_ids, item_ids)`` plus ``timestamps``.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        A line without at least three fields, a rating or timestamp that is not a finite number,
        or a file without ratings.

    Examples
    --------
    >>> import tempfile, os
    >>> from lowrank.datasets import load_ratings
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "ratings.csv")
    ...     with open(path, "w") as f:
    ...         _ = f.write("userId,movieId,rating\\n1,10,4.0\\n1,20,3.5\\n7,10,5.0\\n")
    ...     matrix, users, items = load_ratings(path)
    >>> matrix.toarray()
    array([[4. , 3.5],
           [5. , 0. ]])
    >>> users.tolist(), items.tolist()
    ([1, 7], [10, 20])
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"`path`: no such ratings file: {path}")
    if delimiter not in ("auto", ",", "\t", ";", "|", "::", None):
        raise ValueError(f"`delimiter` must be 'auto', one of ',', '\\t', ';', '|', '::', or None; got {delimiter!r}")
    if header not in ("auto", True, False):
        raise ValueError(f"`header` must be 'auto', True or False; got {header!r}")
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f]
    lines = [line for line in lines if line and not line.startswith("#")]
    if not lines:
        raise ValueError(f"`path`: {path} holds no ratings")
    if delimiter == "auto":
        delimiter = _sniff_delimiter(lines[: min(len(lines), 50)])
    rows = _split(lines, delimiter)
    if header == "auto":
        header = len(rows[0]) >= 3 and not _is_number(rows[0][2])
    if header:
        rows = rows[1:]
    if not rows:
        raise ValueError(f"`path`: {path} holds no ratings")
    width = min(len(r) for r in rows)
    if width < 3:
        bad = next(i for i, r in enumerate(rows) if len(r) < 3)
        raise ValueError(f"`path`: line {bad + 1 + int(bool(header))} has fewer than 3 fields (user item rating)")
    users = _as_ids([r[0].strip() for r in rows])
    items = _as_ids([r[1].strip() for r in rows])
    ratings = _as_floats([r[2] for r in rows], "rating")
    stamps = _as_floats([r[3] for r in rows], "timestamp") if width >= 4 else None
    user_ids, u = np.unique(users, return_inverse=True)
    item_ids, i = np.unique(items, return_inverse=True)
    # Last occurrence wins: order by (user, item, timestamp or line number), keep each pair's last.
    order_key = stamps if stamps is not None else np.arange(len(rows), dtype=np.float64)
    order = np.lexsort((np.arange(len(rows)), order_key, i, u))
    u, i, ratings = u[order], i[order], ratings[order]
    last = np.ones(u.shape[0], dtype=bool)
    last[:-1] = (u[1:] != u[:-1]) | (i[1:] != i[:-1])
    shape = (user_ids.shape[0], item_ids.shape[0])
    matrix = sp.csr_array((ratings[last], (u[last], i[last])), shape=shape)
    timestamps = None
    if stamps is not None:
        timestamps = sp.csr_array((stamps[order][last], (u[last], i[last])), shape=shape)
    return Ratings(matrix, user_ids, item_ids, timestamps)


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _as_floats(column, what):
    try:
        values = np.asarray([float(v) for v in column], dtype=np.float64)
    except ValueError as exc:
        raise ValueError(f"`path`: a {what} field is not a number ({exc})") from None
    if not np.isfinite(values).all():
        raise ValueError(f"`path`: {what} values must be finite")
    return values
